#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every suite, runs the unit
# suites again with OpenBLAS for every float product and the portable integer kernels (the
# paths of CPUs without AVX-512 or AVX2), then everything again under AddressSanitizer +
# UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh build
(cd build && ctest --output-on-failure -j2)
(cd build && TQ_GEMM=openblas TQ_QGEMM=portable ctest --output-on-failure -j2 -R '^test_' -E '^test_cli$')

scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DTQ_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j2)
