#!/usr/bin/env bash
# Runs the fuzz targets of tests/fuzz (README, "Fuzzing") with cargo-fuzz and libFuzzer.
#
#   scripts/fuzz.sh                      every target for 15 s (what `make fuzz-ci` and CI run)
#   scripts/fuzz.sh --seconds 3600 ts    one target for an hour
#
# Each target starts from its seed corpus, kept in the repository: tests/fuzz/corpus/<target>/
# and, for the formats the repository has real files of, those files where they are (the
# shipped and published graphs, the bad-graph cases, the golden tests). What a run adds to the
# corpus goes to tests/fuzz/work/<target>/ (not kept in git; a longer run starts where the last
# one stopped), crashes to tests/fuzz/work/artifacts/<target>/. A crash fails the run; fix it,
# then add its input to tests/fuzz/corpus/<target>/ and a unit test of the crate that reproduces
# it.
#
# The sanitizer flags need a nightly compiler; RUSTC_BOOTSTRAP=1 lets the stable one take them.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(graph_yaml ts envelope_line golden_descriptor oci_reference oci_manifest)
seconds=15
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# The repository's own files of a target's format, as further (read-only) seed directories.
seeds() {
  case "$1" in
    graph_yaml) echo graphs compose/tests/azure-compat compose/tests/graphs ;;
    golden_descriptor) echo tests/golden ;;
  esac
}

log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*" >&2; }
export RUSTC_BOOTSTRAP=1
work=tests/fuzz/work
# -a: debug assertions and overflow checks (an overflow is a crash, not a wrapped number).
log "building the fuzz targets"
cargo fuzz build --fuzz-dir tests/fuzz -a
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$work/artifacts/$t"
  # shellcheck disable=SC2046
  if cargo fuzz run --fuzz-dir tests/fuzz -a "$t" "$work/$t" "tests/fuzz/corpus/$t" $(seeds "$t") -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 >"$work/$t.log" 2>&1; then
    log "$t: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$') runs in ${seconds} s, no crash"
  else
    log "$t: FAILED; the end of its log ($work/$t.log):"
    tail -40 "$work/$t.log" >&2
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  log "crashes in: ${failed[*]} (inputs in $work/artifacts/)"
  exit 1
fi
