#!/usr/bin/env bash
# `make bench`: runs every benchmark binary in tests/benches (in-process, start-up/memory, and the
# broker, Kafka and inference benches when those files exist) and measures the installed binary's
# size (scripts/binary-size.sh), then writes
#   bench/results.md      the combined Markdown tables, with machine, commit and date;
#   bench/throughput.svg  a chart of the in-process throughput;
# and replaces the "Latest results" section of BENCHMARKS.md (between its marker comments).
#
# The contract every bench binary keeps (BENCHMARKS.md): Markdown tables on stdout, progress on
# stderr, `--quick` for a short run (`scripts/bench.sh --quick`, or BENCH_QUICK=1).
# BENCH_PREBUILT=1 runs the bench executables built last instead of `cargo bench` (no build).
set -euo pipefail
cd "$(dirname "$0")/.."

# What only the benches need (Node-RED, tansu): idempotent, seconds when present.
./scripts/setup.sh --bench
quick=""
if [[ "${1:-}" == "--quick" || "${BENCH_QUICK:-}" == "1" ]]; then quick="--quick"; fi
benches=(inprocess startup broker kafka inference python scaleout)
out=bench
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

failed=()
for b in "${benches[@]}"; do
  if [[ ! -f "tests/benches/$b.rs" ]]; then
    log "$b: tests/benches/$b.rs not present, skipped"
    continue
  fi
  extra=()
  # Absolute: cargo runs a bench binary in its package directory (host/cli/).
  [[ "$b" == inprocess ]] && extra=(--svg "$PWD/$out/throughput.svg")
  if [[ "${BENCH_PREBUILT:-}" == "1" ]]; then
    # Run the bench executable cargo built last (for when other builds hold cargo's lock for long).
    # Like `cargo bench`, from the package directory.
    exe=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/"$b"-* 2>/dev/null | grep -v '\.d$' | head -1)
    [[ -n "$exe" ]] || { log "$b: BENCH_PREBUILT=1 but no built $b bench in ${CARGO_TARGET_DIR:-target}/release/deps"; exit 1; }
    run=(env -C host/cli "$exe")
  else
    run=(cargo bench --quiet -p wasmflow-cli --bench "$b" --)
  fi
  log "$b: ${run[*]} $quick ${extra[*]}"
  start=$SECONDS
  if "${run[@]}" $quick "${extra[@]}" >"$tmp/$b.md"; then
    log "$b: done in $((SECONDS - start)) s"
  else
    log "$b: FAILED after $((SECONDS - start)) s (its stderr is above)"
    failed+=("$b")
    printf '\n**`%s` failed in this run** (see the log of `make bench`).\n' "$b" >>"$tmp/$b.md"
  fi
done

# The installed binary's size (issue 16, item 5): a `release` build of its own, not a bench binary.
log "size: scripts/binary-size.sh"
start=$SECONDS
if ./scripts/binary-size.sh >"$tmp/size.md"; then
  log "size: done in $((SECONDS - start)) s"
else
  log "size: FAILED after $((SECONDS - start)) s (its stderr is above)"
  failed+=(size)
  printf '\n**`size` failed in this run** (see the log of `make bench`).\n' >>"$tmp/size.md"
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD -- host compose components graphs 2>/dev/null; then commit="$commit (with uncommitted changes)"; fi
{
  echo "Run of \`make bench${quick:+ (quick)}\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$commit\`."
  echo "Machine: $(nproc) CPUs ($cpu), $mem RAM, $(uname -sr), $(rustc --version 2>/dev/null || echo rustc unknown)."
  [[ "${BENCH_PREBUILT:-}" == "1" ]] && echo "(BENCH_PREBUILT=1: the bench executables built last were run, not rebuilt for this commit.)"
  echo "Absolute numbers move with the load on the machine; ratios measured in the same run are the comparison."
  echo
  for b in "${benches[@]}" size; do
    [[ -f "$tmp/$b.md" ]] || continue
    echo "### \`$b\`"
    cat "$tmp/$b.md"
    echo
  done
} >"$out/results.md"
log "wrote $out/results.md"

begin='<!-- bench:latest:begin -->'
end='<!-- bench:latest:end -->'
if grep -qF "$begin" BENCHMARKS.md && grep -qF "$end" BENCHMARKS.md; then
  awk -v f="$out/results.md" -v b="$begin" -v e="$end" '
    index($0, b) == 1 { print; while ((getline l < f) > 0) print l; skip = 1; next }
    index($0, e) == 1 { skip = 0 }
    !skip { print }' BENCHMARKS.md >"$tmp/BENCHMARKS.md"
  cp "$tmp/BENCHMARKS.md" BENCHMARKS.md
  log "updated the Latest results section of BENCHMARKS.md"
else
  log "BENCHMARKS.md lacks the $begin / $end markers: not updated"
  failed+=(BENCHMARKS.md)
fi

if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
