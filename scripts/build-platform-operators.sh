#!/usr/bin/env bash
# Builds the platform's published Rust operators (Azure IoT Operations samples, written against
# the platform's `wasm_graph_sdk` 1.1.3) against this repository's open SDK (components/sdk),
# unmodified, for wasm32-wasip2, and copies the components to target/platform-modules/<name>.wasm.
#
#   scripts/build-platform-operators.sh [ROOT] [OUT]
#
# ROOT (default: ../shared/azure-samples beside the repository) is searched for operator crates:
# every directory with a Cargo.toml under ROOT/operators/ and ROOT/*-scenario/operators/.
# OUT defaults to target/platform-modules. Each module is named after its package
# (`otel-enrich` → otel-enrich.wasm), as the graphs name them.
#
# Nothing is written into ROOT or into the repository's sources: each operator is copied into a
# temporary directory, and the copy gets the ONE step that points `wasm_graph_sdk` at the open
# SDK, a `.cargo/config.toml` (see components/sdk/README.md):
#
#   [registries.aio-wg]            # the registry the operators name (as in the samples' own
#   index = "<the platform's URL>" # .cargo/config.toml, which the copy leaves behind)
#   [source.aio-wg]                # never contacted: replaced by an empty directory source, so
#   registry = "<same URL>"        # cargo resolves offline whether or not the operator ships a
#   replace-with = "aio-wg-offline"  # Cargo.lock ...
#   [source.aio-wg-offline]
#   directory = "<empty dir>"
#   [patch.aio-wg]                 # ... and the patch supplies wasm_graph_sdk from components/sdk
#   wasm_graph_sdk = { path = "<repo>/components/sdk" }
#
# The operators' sources, Cargo.toml and Cargo.lock stay as published. cargo updates the copied
# Cargo.lock for the patched SDK (whose own dependencies differ from the platform's); if a pin
# in it cannot be kept, the copy's Cargo.lock is deleted and the build retried (logged).
# Other dependencies (serde, wit-bindgen 0.22, jsonschema, …) come from crates.io.
#
# Toolchain: scripts/wasm-toolchain.sh (the same recipe as build-components.sh).
# Each module must validate (`wasm-tools validate`) and export a wasm-graph:processor operator
# interface. The script builds every operator, then fails if any failed.
#
# Environment:
#   PLATFORM_TARGET_DIR  cargo target directory shared by the operators (default:
#                        ~/.cache/wasmflow/platform-target), so std and the SDK build once and CI
#                        can cache it
#   PLATFORM_OPERATORS   space-separated package names to build only those (default: all found)
#   COMPONENTS_CARGO     see scripts/wasm-toolchain.sh
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
SDK="$REPO/components/sdk"
ROOT="${1:-$REPO/../shared/azure-samples}"
OUT="${2:-$REPO/target/platform-modules}"
TARGET_DIR="${PLATFORM_TARGET_DIR:-$HOME/.cache/wasmflow/platform-target}"
# The index the operators' `registry = "aio-wg"` dependency refers to (the samples'
# .cargo/config.toml). Only its identity matters: the source is replaced, so it is never fetched.
AIO_WG_INDEX="sparse+https://pkgs.dev.azure.com/azure-iot-sdks/iot-operations/_packaging/preview/Cargo/index/"

# shellcheck source=scripts/wasm-toolchain.sh
source "$SCRIPT_DIR/wasm-toolchain.sh"

log() { printf '\033[1m[platform-operators]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[platform-operators]\033[0m %s\n' "$*" >&2; exit 1; }

[ -d "$ROOT" ] || die "no operator root $ROOT"
ROOT="$(cd "$ROOT" && pwd)"
[ -f "$SDK/Cargo.toml" ] || die "no SDK at $SDK"
command -v wasm-tools >/dev/null 2>&1 || die "wasm-tools is missing (cargo install wasm-tools --locked)"
mkdir -p "$TARGET_DIR" "$OUT"
TARGET_DIR="$(cd "$TARGET_DIR" && pwd)"
OUT="$(cd "$OUT" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/platform-operators.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/aio-wg-offline"

# `[package] name` and the library's file name (`[lib] name`, else the package name with `_`).
manifest_value() { # FILE SECTION KEY
  awk -v section="[$2]" -v key="$3" '
    /^\[/ { in_section = ($0 == section) }
    in_section && $1 == key { sub(/^[^=]*=[ \t]*"/, ""); sub(/".*$/, ""); print; exit }
  ' "$1"
}

shopt -s nullglob
operators=()
for manifest in "$ROOT"/operators/*/Cargo.toml "$ROOT"/*-scenario/operators/*/Cargo.toml; do
  operators+=("$(dirname "$manifest")")
done
[ ${#operators[@]} -gt 0 ] || die "no operator crates under $ROOT/operators or $ROOT/*-scenario/operators"

log "toolchain: $(wasm_toolchain_describe)"
if wasm_toolchain_pthread_standins; then
  log "the WASI libc has no pthread functions: the SDK's single-threaded stand-ins are linked"
fi
log "SDK: $SDK; target dir: $TARGET_DIR"
built=()
failed=()
# Package name → the first operator directory of that name. The platform builds each app folder
# on its own (`.` and every `*-scenario`), so its samples hold one operator twice
# (`operators/otel-enrich` and `statestore-scenario/operators/otel-enrich`, the same code under
# different package metadata); here all share one output folder, so a name is built once when
# the code is the same, and refused when it is not.
declare -A first_of=()
for src in "${operators[@]}"; do
  name="$(manifest_value "$src/Cargo.toml" package name)"
  [ -n "$name" ] || { failed+=("${src#"$ROOT"/} (no [package] name)"); continue; }
  if [ -n "${PLATFORM_OPERATORS:-}" ] && [[ " $PLATFORM_OPERATORS " != *" $name "* ]]; then
    continue
  fi
  lib="$(manifest_value "$src/Cargo.toml" lib name)"
  lib="${lib:-${name//-/_}}"
  copy="$work/$name"
  if [ -n "${first_of[$name]:-}" ]; then
    first="${first_of[$name]}"
    if diff -rq -x target -x bin -x Cargo.toml -x Cargo.lock -x '*.md' -x Dockerfile "$first" "$src" >/dev/null; then
      log "$name: ${src#"$ROOT"/} has the same code as ${first#"$ROOT"/}, built once"
    else
      failed+=("$name (two different operators named $name: ${first#"$ROOT"/} and ${src#"$ROOT"/})")
    fi
    continue
  fi
  first_of[$name]="$src"

  # The copy: everything but build output.
  mkdir -p "$copy"
  (cd "$src" && find . -mindepth 1 -maxdepth 1 ! -name target ! -name bin -exec cp -a {} "$copy/" \;)

  # The one step: point wasm_graph_sdk at the open SDK.
  mkdir -p "$copy/.cargo"
  cat >"$copy/.cargo/config.toml" <<EOF
# Added by wasmflow's scripts/build-platform-operators.sh: wasm_graph_sdk from components/sdk.
[registries.aio-wg]
index = "$AIO_WG_INDEX"

[source.aio-wg]
registry = "$AIO_WG_INDEX"
replace-with = "aio-wg-offline"

[source.aio-wg-offline]
directory = "$work/aio-wg-offline"

[patch.aio-wg]
wasm_graph_sdk = { path = "$SDK" }
EOF

  log "building $name (${src#"$ROOT"/}$([ -f "$copy/Cargo.lock" ] || echo ', no Cargo.lock'))"
  start=$(date +%s)
  # cargo reads .cargo/config.toml from the working directory upwards, hence the cd.
  if ! (cd "$copy" && wasm_cargo_build --target-dir "$TARGET_DIR" 2>"$work/$name.log"); then
    if [ -f "$copy/Cargo.lock" ] && grep -qE "failed to select a version|lock file .* needs to be updated|could not find .* in registry" "$work/$name.log"; then
      log "$name: its Cargo.lock pins versions that no longer resolve; deleting the copy's Cargo.lock and retrying"
      rm -f "$copy/Cargo.lock"
      if ! (cd "$copy" && wasm_cargo_build --target-dir "$TARGET_DIR" 2>"$work/$name.log"); then
        grep -v '^\s*\(Compiling\|Downloaded\|Downloading\|Updating\|Locking\|Adding\)' "$work/$name.log" | tail -40 >&2
        failed+=("$name (cargo build)")
        continue
      fi
    else
      grep -v '^\s*\(Compiling\|Downloaded\|Downloading\|Updating\|Locking\|Adding\)' "$work/$name.log" | tail -40 >&2
      failed+=("$name (cargo build)")
      continue
    fi
  fi
  log "$name: cargo finished in $(( $(date +%s) - start )) s"

  wasm="$TARGET_DIR/$WASM_TARGET/release/$lib.wasm"
  dst="$OUT/$name.wasm"
  [ -f "$wasm" ] || { failed+=("$name (cargo produced no $wasm)"); continue; }
  if ! wasm-tools validate "$wasm"; then
    failed+=("$name (does not validate)")
    continue
  fi
  exports="$(wasm-tools component wit "$wasm" | sed -n 's/^  export \(wasm-graph:processor\/[^;]*\);$/\1/p' | tr '\n' ' ')"
  if [ -z "$exports" ]; then
    failed+=("$name (exports no wasm-graph:processor operator interface)")
    continue
  fi
  if ! cmp -s "$wasm" "$dst"; then
    cp "$wasm" "$dst.tmp" && mv "$dst.tmp" "$dst"
  fi
  printf '%-20s %9d bytes  exports %s\n' "$name.wasm" "$(stat -c %s "$dst")" "${exports% }"
  built+=("$name")
done

log "built ${#built[@]} module(s) into $OUT${built[*]:+: ${built[*]}}"
if [ ${#failed[@]} -gt 0 ]; then
  die "failed: ${failed[*]}"
fi
