#!/usr/bin/env bash
# Installs what a fresh machine of this kind lacks to build and test wasmflow. Idempotent: every
# step checks first, so a second run costs seconds. See ../shared/TOOLCHAIN.md for why each piece.
set -euo pipefail

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Component toolchain (offline wasm32-wasip2 recipe) only where rustup cannot give the target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  for p in rustc-web cargo-web rust-web-src lld-19 wasi-libc; do have_pkg "$p" || need_apt+=("$p"); done
fi
# Test peers and native build deps (rdkafka builds librdkafka; tests run a real broker).
for p in mosquitto mosquitto-clients pkg-config zlib1g-dev make perl; do have_pkg "$p" || need_apt+=("$p"); done
# Kafka: rdkafka builds librdkafka from source (gcc, make, perl, zlib above) with TLS/SASL SCRAM
# against the system OpenSSL. Its tests and bench use librdkafka's own mock cluster: no broker.
for p in gcc libssl-dev; do have_pkg "$p" || need_apt+=("$p"); done

if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The packaged mosquitto service is not wanted: tests start their own on a free port.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi

cargo_tool() { # name version
  if ! command -v "$1" >/dev/null 2>&1 || ! "$1" --version 2>/dev/null | grep -q "$2"; then
    log "cargo install $1@$2"
    cargo install --quiet --locked "$1" --version "$2"
  fi
}
cargo_tool wasm-component-ld 0.5.31
cargo_tool wasm-tools 1.263.0

# Python operators (components/python): componentize-py bundles CPython and everything else it
# needs; pinned, as the operator ABI notes were verified with this version.
COMPONENTIZE_PY_VERSION=0.25.1
if ! componentize-py --version 2>/dev/null | grep -qx "componentize-py $COMPONENTIZE_PY_VERSION"; then
  log "pip install componentize-py==$COMPONENTIZE_PY_VERSION"
  python3 -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
  command -v componentize-py >/dev/null 2>&1 \
    || log "warning: pip installed componentize-py outside PATH; add its scripts directory to PATH"
fi
log "toolchain ready"
