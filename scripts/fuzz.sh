#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer (clang, ASan + UBSan) for a while each, merging new
# interesting inputs into the seed corpus. Stops at the first crash, leak or timeout and
# leaves the input in build-fuzz/crashes/TARGET/.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]   e.g. scripts/fuzz.sh 300 png
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
if ! [[ $secs =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
  for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    targets+=("${name#fuzz_}")
  done
fi
command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/setup.sh installs it)" >&2; exit 1; }

build=build-fuzz
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTQ_FUZZ=ON -DTQ_SANITIZE=ON >/dev/null
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$t
  work=$build/fuzz-work/$t
  crashes=$build/crashes/$t
  rm -rf "$work" "$crashes"
  mkdir -p "$work/corpus" "$crashes" "$seeds"
  cp "$seeds"/. "$work/corpus/" -r
  # Inputs stay small so the merged corpus does too; a CIFAR record alone is 3073 bytes.
  max_len=4096
  [ "$t" = cifar ] && max_len=7000
  echo "fuzz: $t for ${secs}s (log: $work/log)"
  status=0
  UBSAN_OPTIONS=print_stacktrace=1 "$build/fuzz_$t" "$work/corpus" -max_total_time="$secs" \
    -max_len=$max_len -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -close_fd_mask=3 \
    -artifact_prefix="$crashes/" -print_final_stats=1 >"$work/log" 2>&1 || status=$?
  if ((status != 0)); then
    tail -n 40 "$work/log" >&2
    echo "fuzz: $t failed (status $status); input(s) kept in $crashes/:" >&2
    ls -l "$crashes" >&2
    echo "fuzz: reproduce with $build/fuzz_$t $crashes/FILE (or build/replay_$t FILE)" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$work/log" | sed "s/^/fuzz: $t: /"
  before=$(ls "$seeds" | wc -l)
  "$build/fuzz_$t" -merge=1 -max_len=$max_len -close_fd_mask=3 "$seeds" "$work/corpus" \
    >"$work/merge.log" 2>&1
  echo "fuzz: $t: corpus $before -> $(ls "$seeds" | wc -l) inputs"
  rmdir "$crashes" 2>/dev/null || true
done
echo "fuzz: corpus size $(du -sb tests/fuzz/corpus | cut -f1) bytes (keep under 2 MB)"
