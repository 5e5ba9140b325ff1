#!/usr/bin/env bash
# Installs the Debian 12 packages tinyqat needs (only those missing), the ONNX Runtime
# harness's npm packages (tests/ort), and configures and builds it.
# Usage: scripts/setup.sh [BUILD_DIR [extra cmake args...]]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config libopenblas-openmp-dev libpng-dev zlib1g-dev check
          dataset-fashion-mnist clang libclang-rt-14-dev valgrind libsimde-dev python3-numpy
          libprotobuf-c-dev protobuf-c-compiler libonnx-dev
          chromium libxml2-utils) # the report test: a headless browser and an XML parser
# Node for the ONNX Runtime harness: Debian's, unless a node and npm are already on PATH (a
# newer nodejs bundles npm, and Debian's npm package would conflict with it).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# onnxruntime-node as the lockfile pins it; --ignore-scripts because its install script
# downloads optional GPU binaries, while the CPU runtime ships inside the package.
ort=tests/ort
if [ ! -d "$ort/node_modules" ] || [ "$ort/package-lock.json" -nt "$ort/node_modules" ]; then
  echo "setup: npm ci in $ort"
  (cd "$ort" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
  touch "$ort/node_modules"
fi

build=${1:-build}
shift || true
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
