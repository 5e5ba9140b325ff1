#!/usr/bin/env bash
# The main demonstration: builds tinyqat, then runs the best end-to-end example there is.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
echo "demo: the autograd engine's test suite (the training command is not built yet)"
build/test_autograd
