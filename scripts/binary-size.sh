#!/usr/bin/env bash
# `make size` (and a section of `make bench`): builds the binary `cargo install --path host/cli`
# installs (the `release` profile, the default features) and prints its size as a Markdown table:
# on disk, the largest sections, whether it keeps a symbol table, and issue 16's target (≤ 30 MiB).
#
# The build has a target directory of its own (`$CARGO_TARGET_DIR/installed`): the `release` and
# `bench` profiles both put their binary at `release/wasmflow`, and the benches run the `bench`
# one. Fails when the binary keeps its symbols: what users install is stripped (root Cargo.toml,
# `[profile.release]`), and a per-package override of the binary's own crate was seen to lose
# that (BENCHMARKS.md, "Binary size").
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${CARGO_TARGET_DIR:-$PWD/target}/installed"
printf '\033[1m[size]\033[0m cargo build --release -p wasmflow-cli --locked (target dir %s)\n' "$dir" >&2
cargo build --quiet --release -p wasmflow-cli --locked --target-dir "$dir" >&2
bin="$dir/release/wasmflow"

bytes=$(stat -c %s "$bin")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
section() { size -A "$bin" | awk -v s="$1" '$1 == s { print $2 }'; }
eh=$(($(section .eh_frame) + $(section .eh_frame_hdr)))
if readelf -S -W "$bin" | grep -q '\.symtab'; then symbols="kept"; else symbols="stripped"; fi
limit=$((30 * 1048576))
if ((bytes <= limit)); then status="met"; else status="**missed**"; fi

echo "What \`cargo install --locked --path host/cli\` installs (default features), built at \`$(git rev-parse --short HEAD)\`:"
echo
echo '| `wasmflow` on disk | `.text` | `.eh_frame` + `_hdr` | `.rodata` | `.gcc_except_table` | symbols | ≤ 30 MiB |'
echo '|---:|---:|---:|---:|---:|---|---|'
echo "| $(mib "$bytes") ($bytes bytes) | $(mib "$(section .text)") | $(mib "$eh") | $(mib "$(section .rodata)") | $(mib "$(section .gcc_except_table)") | $symbols | $status |"

if [[ "$symbols" != stripped ]]; then
  echo "binary-size: $bin keeps its symbol table; the release profile must strip it" >&2
  exit 1
fi
