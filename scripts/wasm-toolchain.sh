# shellcheck shell=bash
# Sourced by build scripts: the offline wasm32-wasip2 toolchain recipe as one
# function, so every script that builds components builds them the same way.
#
#   source scripts/wasm-toolchain.sh
#   wasm_cargo_build --manifest-path path/to/Cargo.toml --target-dir "$dir" [cargo args...]
#
# runs `cargo build --release --target wasm32-wasip2 ARGS...`: with rustup's wasm32-wasip2
# target where `rustup target list --installed` shows it, elsewhere (these machines: rustup
# cannot download the target) with Debian's rustc building std for the target itself
# (-Zbuild-std), linking with wasm-component-ld; RUSTC_BOOTSTRAP=1 is set for that cargo process
# only. `wasm_toolchain_describe` prints which of the two it is.
#
# Environment:
#   COMPONENTS_CARGO      cargo to drive the -Zbuild-std build (default: cargo on PATH, else
#                         /usr/bin/cargo)
#   WASM_EXTRA_RUSTFLAGS  appended to the target's rustflags (both paths)

WASM_TARGET=wasm32-wasip2

# True when rustup has the official target installed.
wasm_toolchain_has_rustup_target() {
  command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"
}

# The pieces of the -Zbuild-std recipe; prints what is missing (with its package) and fails.
wasm_toolchain_check() {
  local missing=()
  [ -x /usr/bin/rustc ] || missing+=("/usr/bin/rustc (apt: rustc-web)")
  [ -d /usr/lib/rustlib/src/rust/library ] || missing+=("/usr/lib/rustlib/src/rust/library (apt: rust-web-src)")
  [ -x /usr/lib/llvm-19/bin/wasm-ld ] || missing+=("/usr/lib/llvm-19/bin/wasm-ld (apt: lld-19)")
  [ -d /usr/lib/wasm32-wasi ] || missing+=("/usr/lib/wasm32-wasi (apt: wasi-libc)")
  [ -x "$(wasm_toolchain_component_ld)" ] || missing+=("wasm-component-ld (cargo install wasm-component-ld)")
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing for the $WASM_TARGET build: ${missing[*]}; run scripts/setup.sh" >&2
    return 1
  fi
}

wasm_toolchain_component_ld() {
  command -v wasm-component-ld 2>/dev/null || echo "$HOME/.cargo/bin/wasm-component-ld"
}

wasm_toolchain_cargo() {
  echo "${COMPONENTS_CARGO:-$(command -v cargo || echo /usr/bin/cargo)}"
}

# When the libc the build links has no pthread functions (Rust's own wasi-libc, which the
# rustup target links, has single-threaded stubs; Debian's wasi-libc of 2022 has none), adds the
# flag that links the SDK's stand-ins (components/sdk/src/wasi_pthread.rs) to
# WASM_EXTRA_RUSTFLAGS and succeeds; otherwise changes nothing and fails. `std` itself calls
# them on WASI (thread creation), and crates such as parking_lot_core 0.10 do too.
wasm_toolchain_pthread_standins() {
  if wasm_toolchain_has_rustup_target || grep -qa pthread_mutex_lock /usr/lib/wasm32-wasi/libc.a; then
    return 1
  fi
  export WASM_EXTRA_RUSTFLAGS="${WASM_EXTRA_RUSTFLAGS:+$WASM_EXTRA_RUSTFLAGS }--cfg wasm_graph_sdk_pthread_stubs"
}

wasm_toolchain_describe() {
  if wasm_toolchain_has_rustup_target; then
    echo "rustup's $WASM_TARGET target"
  else
    echo "$(/usr/bin/rustc --version) with -Zbuild-std, driven by $("$(wasm_toolchain_cargo)" --version)"
  fi
}

wasm_cargo_build() {
  if wasm_toolchain_has_rustup_target; then
    if [ -n "${WASM_EXTRA_RUSTFLAGS:-}" ]; then
      CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="$WASM_EXTRA_RUSTFLAGS" cargo build --release --target "$WASM_TARGET" "$@"
    else
      cargo build --release --target "$WASM_TARGET" "$@"
    fi
  else
    wasm_toolchain_check || return 1
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_WASIP2_LINKER="$(wasm_toolchain_component_ld)" \
    CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-C link-arg=--wasm-ld-path=/usr/lib/llvm-19/bin/wasm-ld -C link-self-contained=no -L /usr/lib/wasm32-wasi${WASM_EXTRA_RUSTFLAGS:+ $WASM_EXTRA_RUSTFLAGS}" \
      "$(wasm_toolchain_cargo)" build --release --target "$WASM_TARGET" -Zbuild-std=std,panic_abort "$@"
  fi
}
