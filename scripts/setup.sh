#!/usr/bin/env bash
# Installs what a fresh machine of this kind lacks to build and test wasmflow. Idempotent: every
# step checks first, so a second run costs seconds. See ../shared/TOOLCHAIN.md for why each piece.
set -euo pipefail

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_apt=()
need_bench=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Component toolchain (offline wasm32-wasip2 recipe) only where rustup cannot give the target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  for p in rustc-web cargo-web rust-web-src lld-19 wasi-libc; do have_pkg "$p" || need_apt+=("$p"); done
fi
# Test peers and native build deps (rdkafka builds librdkafka; tests run a real broker).
for p in mosquitto mosquitto-clients pkg-config zlib1g-dev make perl; do have_pkg "$p" || need_apt+=("$p"); done
# OCI registry tests: the registry:2 server, htpasswd (bcrypt entries for basic auth), curl (the independent client).
for p in docker-registry apache2-utils curl; do have_pkg "$p" || need_apt+=("$p"); done
# The shared state store's tests (`run --state redis://…`): a real redis-server, redis-cli (the
# independent client), openssl (the TLS test's certificates).
for p in redis-server redis-tools openssl; do have_pkg "$p" || need_apt+=("$p"); done
# Kafka: rdkafka builds librdkafka from source (gcc, make, perl, zlib above) with TLS/SASL SCRAM
# against the system OpenSSL. Its tests and bench use librdkafka's own mock cluster: no broker.
for p in gcc libssl-dev; do have_pkg "$p" || need_apt+=("$p"); done
# Fuzzing (scripts/fuzz.sh): the libfuzzer-sys crate builds libFuzzer from source in C++.
have_pkg g++ || need_apt+=(g++)

if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The packaged mosquitto service is not wanted: tests start their own on a free port.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi
# Same for the packaged redis-server (:6379): tests start their own on a free port.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
# Same for the packaged registry (htpasswd auth on :5000): tests start their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi

cargo_tool() { # name version [extra cargo-install arguments]
  local name=$1 version=$2
  shift 2
  if ! command -v "$name" >/dev/null 2>&1 || ! "$name" --version 2>/dev/null | grep -q "$version"; then
    log "cargo install $name@$version $*"
    cargo install --locked "$name" --version "$version" "$@"
  fi
}
cargo_tool wasm-component-ld 0.5.31
# Only what the build and tests use (validate; print and `component wit` by hand): a third of
# the default build's compile time on a new machine.
cargo_tool wasm-tools 1.263.0 --no-default-features --features validate,print,component
# The fuzz targets (tests/fuzz, `make fuzz-ci`): cargo-fuzz builds them with the sanitizer and
# coverage flags libFuzzer needs.
cargo_tool cargo-fuzz 0.13.2

# Python operators (components/python): componentize-py bundles CPython and everything else it
# needs; pinned, as the operator ABI notes were verified with this version.
COMPONENTIZE_PY_VERSION=0.25.1
if ! componentize-py --version 2>/dev/null | grep -qx "componentize-py $COMPONENTIZE_PY_VERSION"; then
  log "pip install componentize-py==$COMPONENTIZE_PY_VERSION"
  python3 -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
  command -v componentize-py >/dev/null 2>&1 \
    || log "warning: pip installed componentize-py outside PATH; add its scripts directory to PATH"
fi
# wasi-nn (host/runtime/src/services/wasi_nn): ONNX Runtime as a shared library, taken from the PyPI wheel
# (ort's load-dynamic; nothing is downloaded at build time), and the Python packages that train
# and export the digits model (scripts/build-model.py) and check it in tests. Pinned: versions
# verified together here; ort rc.10 refuses ONNX Runtime older than 1.22.
ORT_VERSION=1.22.1
ORT_DIR="${WASMFLOW_ONNXRUNTIME_DIR:-$HOME/.cache/wasmflow/onnxruntime}"
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
nn_pip=("onnxruntime==$ORT_VERSION" "scikit-learn==1.9.1" "skl2onnx==1.20.0" "onnx==1.23.2")
if ! python3 -c 'import onnxruntime, sklearn, skl2onnx, onnx, sys
sys.exit(0 if (onnxruntime.__version__, sklearn.__version__, skl2onnx.__version__, onnx.__version__) == tuple(sys.argv[1:]) else 1)' \
    "$ORT_VERSION" 1.9.1 1.20.0 1.23.2 2>/dev/null; then
  log "pip install ${nn_pip[*]}"
  python3 -m pip install --quiet "${nn_pip[@]}"
fi
if [ ! -f "$ORT_LIB" ]; then
  log "ONNX Runtime $ORT_VERSION shared library → $ORT_LIB"
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p "$ORT_DIR"
  python3 - "$tmp" "$ORT_LIB" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so."))
    with z.open(name) as src, open(sys.argv[2] + ".tmp", "wb") as dst:
        dst.write(src.read())
PY
  mv "$ORT_LIB.tmp" "$ORT_LIB"
  rm -rf "$tmp"
fi

# Benchmarks only (`scripts/setup.sh --bench`, which `make bench` runs; `make test` needs neither):
# Node-RED, the tool an edge user would otherwise pick, in the broker bench; tansu, a
# Kafka-compatible broker (Apache-2.0), in the Kafka bench. Both cached under ~/.cache/wasmflow.
if [ "${1:-}" = "--bench" ]; then
  NODE_RED_VERSION=4.1.8   # the newest release that runs on Debian's Node.js 20
  NODE_RED_DIR="$HOME/.cache/wasmflow/node-red"
  { command -v node && command -v npm; } >/dev/null 2>&1 || need_bench+=(nodejs npm)
  if [ ${#need_bench[@]} -gt 0 ]; then
    log "apt: ${need_bench[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_bench[@]}" >/dev/null
  fi
  if ! grep -qs "\"version\": \"$NODE_RED_VERSION\"" "$NODE_RED_DIR/node_modules/node-red/package.json"; then
    log "npm install node-red@$NODE_RED_VERSION → $NODE_RED_DIR"
    mkdir -p "$NODE_RED_DIR"
    (cd "$NODE_RED_DIR" && npm install --silent --no-audit --no-fund --omit=dev "node-red@$NODE_RED_VERSION")
  fi
  # Its memory storage needs the `dynostore` feature; the default features are a third larger.
  TANSU_VERSION=0.6.0
  TANSU_ROOT="$HOME/.cache/wasmflow/tansu"
  if ! "$TANSU_ROOT/bin/tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    log "cargo install tansu@$TANSU_VERSION --features dynostore → $TANSU_ROOT (≈ 30 min on 2 cores, once)"
    cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore --root "$TANSU_ROOT"
  fi
fi
log "toolchain ready"
