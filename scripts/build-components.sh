#!/usr/bin/env bash
# Builds every component of the components/ workspace for wasm32-wasip2 and copies them to
# target/modules/<name>.wasm, where the compiler and the host look for modules by name.
#
# Idempotent and cheap when nothing changed: cargo's own freshness check decides what to
# rebuild, and a module is copied only when its bytes changed (so its mtime stays put and
# whatever caches compiled modules keeps its cache).
#
# Toolchain (shared/TOOLCHAIN.md): where `rustup target list --installed` has wasm32-wasip2 the
# plain `cargo build --target wasm32-wasip2` is used. Elsewhere (these machines: rustup cannot
# download the target) Debian's rustc builds std for the target itself (-Zbuild-std), linking
# with wasm-component-ld; RUSTC_BOOTSTRAP=1 is set for that cargo process only.
#
# Environment:
#   COMPONENTS_TARGET_DIR  cargo target directory (default: components/target), so CI can cache
#                          it outside the clone
#   COMPONENTS_CARGO       cargo to drive the -Zbuild-std build (default: cargo on PATH, else
#                          /usr/bin/cargo)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
COMPONENTS="$REPO/components"
OUT="$REPO/target/modules"
TARGET=wasm32-wasip2

TARGET_DIR="${COMPONENTS_TARGET_DIR:-$COMPONENTS/target}"
mkdir -p "$TARGET_DIR" "$OUT"
TARGET_DIR="$(cd "$TARGET_DIR" && pwd)"

log() { printf '\033[1m[build-components]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[build-components]\033[0m %s\n' "$*" >&2; exit 1; }

locked=()
[ -f "$COMPONENTS/Cargo.lock" ] && locked=(--locked)

start=$(date +%s)
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  log "toolchain: rustup's $TARGET target"
  cargo build --release --target "$TARGET" "${locked[@]}" \
    --manifest-path "$COMPONENTS/Cargo.toml" --target-dir "$TARGET_DIR"
else
  rustc=/usr/bin/rustc
  std_src=/usr/lib/rustlib/src/rust/library
  wasm_ld=/usr/lib/llvm-19/bin/wasm-ld
  wasi_libc=/usr/lib/wasm32-wasi
  component_ld="$(command -v wasm-component-ld || true)"
  [ -n "$component_ld" ] || component_ld="$HOME/.cargo/bin/wasm-component-ld"
  missing=()
  [ -x "$rustc" ] || missing+=("$rustc (apt: rustc-web)")
  [ -d "$std_src" ] || missing+=("$std_src (apt: rust-web-src)")
  [ -x "$wasm_ld" ] || missing+=("$wasm_ld (apt: lld-19)")
  [ -d "$wasi_libc" ] || missing+=("$wasi_libc (apt: wasi-libc)")
  [ -x "$component_ld" ] || missing+=("wasm-component-ld (cargo install wasm-component-ld)")
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing for the $TARGET build: ${missing[*]}; run scripts/setup.sh"
  fi
  cargo_bin="${COMPONENTS_CARGO:-$(command -v cargo || echo /usr/bin/cargo)}"
  log "toolchain: $("$rustc" --version) with -Zbuild-std, driven by $("$cargo_bin" --version)"
  RUSTC="$rustc" RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_WASIP2_LINKER="$component_ld" \
  CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-C link-arg=--wasm-ld-path=$wasm_ld -C link-self-contained=no -L $wasi_libc" \
    "$cargo_bin" build --release --target "$TARGET" "${locked[@]}" -Zbuild-std=std,panic_abort \
      --manifest-path "$COMPONENTS/Cargo.toml" --target-dir "$TARGET_DIR"
fi
log "cargo finished in $(( $(date +%s) - start )) s"

# Crate (library) name → module name: `opc_ua` → `opc-ua.wasm`, `wasmflow_source` →
# `wasmflow-source.wasm`. The list is explicit so a missing component fails the build.
# `faulty` is no sample: it is the runtime's fault-test operator (components/testing/faulty).
modules=(temperature humidity window collection enrichment opc_ua format
         wasmflow_source wasmflow_sink wasmflow_concatenate faulty)
validate=""
command -v wasm-tools >/dev/null 2>&1 && validate=1
for crate in "${modules[@]}"; do
  src="$TARGET_DIR/$TARGET/release/$crate.wasm"
  name="${crate//_/-}.wasm"
  dst="$OUT/$name"
  [ -f "$src" ] || die "cargo produced no $src"
  if ! cmp -s "$src" "$dst"; then
    cp "$src" "$dst.tmp" && mv "$dst.tmp" "$dst"
  fi
  if [ -n "$validate" ]; then
    wasm-tools validate "$dst" || die "$name does not validate"
  fi
  printf '%-28s %9d bytes%s\n' "$name" "$(stat -c %s "$dst")" "${validate:+  (validated)}"
done
[ -n "$validate" ] || log "wasm-tools not on PATH: modules not validated"
log "modules in $OUT"
