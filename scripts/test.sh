#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every suite, runs the unit
# suites again with OpenBLAS for every float product and the portable integer kernels (the
# paths of CPUs without AVX-512 or AVX2), then everything again under AddressSanitizer +
# UndefinedBehaviorSanitizer. Ends with the tests that were skipped (a suite whose subject
# this machine lacks) and why.
set -euo pipefail
cd "$(dirname "$0")/.."

skips=()
# The skipped tests of a JUnit report from ctest, one "name (reason)" a line; the reason is
# the test's own "...skipped[:,] REASON" line.
skipped_in() {
  awk '/<testcase / { name = $0; sub(/.*name="/, "", name); sub(/".*/, "", name)
                      skip = /status="notrun"/; reason = "" }
       skip && reason == "" && /skipped/ && !/<skipped / { reason = $0; sub(/.*skipped[:,]? */, "", reason) }
       /<\/testcase>/ && skip { print name " (" (reason == "" ? "no reason given" : reason) ")" }' "$1"
}
# ctest in build dir $2 with arguments $3...; its skipped tests join the summary under label $1.
run_ctest() {
  local label=$1 dir=$2; shift 2
  (cd "$dir" && ctest --output-on-failure -j2 --output-junit "$PWD/junit.xml" "$@")
  while IFS= read -r line; do skips+=("$label: $line"); done < <(skipped_in "$dir/junit.xml")
}

scripts/setup.sh build
run_ctest release build
TQ_GEMM=openblas TQ_QGEMM=portable run_ctest openblas build -R '^test_' -E '^test_cli$'

scripts/setup.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DTQ_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest asan build-asan

echo "test.sh: every test passed; ${#skips[@]} skipped"
for s in "${skips[@]}"; do echo "  skipped in $s"; done
