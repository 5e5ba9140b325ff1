#!/usr/bin/env bash
# Runs every command of docs/tutorial.md and checks its output, so the tutorial cannot go stale.
#   tests/e2e_tutorial.sh TINYQAT [MAKE_BARS]     (ctest passes both; MAKE_BARS is unused)
#
# What is run: the ```console blocks, in order, in one scratch directory, with TINYQAT's
# directory (which also holds outlier_demo) first on PATH. In them a line "$ CMD" is a
# command, each following "> MORE" line continues it, and the lines after it up to the next
# command or the end of the block are its expected output (stdout and stderr together).
# A command must exit 0 (write `CMD || echo "exit status $?"` to show a failure). Other
# blocks (```sh, ```text...) are shown, never run.
#
# How the output is checked: an HTML comment (invisible on the rendered page) on the line
# just before the opening fence sets the block's mode,
#   <!-- check: MODE -->  or  <!-- check: MODE; quick: MODE -->
#   exact  (the default) line by line, equal (trailing blanks aside): outputs that depend
#          on nothing but the program, such as `grid` and `fq`;
#   shape  the same lines with the same words, but any number matches any number, any
#          kernel name (openblas, avx512, avx2, vnni, portable) any other, and blanks are
#          ignored: outputs of trained models, whose figures depend on the machine's
#          kernels, the thread count and, here in quick mode, the data;
#   none   only the exit status: outputs whose words depend on the figures too (which
#          epoch QAT keeps, which layer ranks first).
# `quick:` gives the mode for quick runs when it differs.
#
# Quick (the default, for the test suite): the tutorial's Fashion-MNIST is replaced by its
# first 5,000 training and 1,000 test images, so that the whole tutorial runs in a few
# minutes; the commands are otherwise the tutorial's own (the one rewrite: `fashion-mnist`
# -> `fashion-mnist:DIR-OF-THE-SUBSET`). Environment:
#   TQ_TUTORIAL=full           the tutorial's real commands on the whole data set
#   TQ_TUTORIAL_EXACT=1        shape blocks checked exactly too, except lines with a speed
#                              (img/s): the outputs quoted are this machine's, with these
#                              kernels and thread count (run on the machine that wrote them)
#   TQ_TUTORIAL_RECORD=FILE    also write the tutorial with each command's actual output in
#                              place of the quoted one (full unless TQ_TUTORIAL=quick), to
#                              update it after a deliberate change of output
#   TQ_TUTORIAL_DIR=DIR        run in DIR (created, kept) instead of a removed temporary one
# Skips (exit 77) without the Fashion-MNIST package (dataset-fashion-mnist) and in sanitizer
# builds (the commands' code paths are covered there by the other end-to-end tests).
set -euo pipefail
tq=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
bin=$(dirname "$tq")
src=${TQ_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
doc=$src/docs/tutorial.md
fmnist=/usr/share/datasets/fashion-mnist
record=${TQ_TUTORIAL_RECORD:-}
mode=${TQ_TUTORIAL:-$([ -n "$record" ] && echo full || echo quick)}
case $mode in quick|full) ;; *) echo "e2e_tutorial: TQ_TUTORIAL=$mode (expected quick or full)"; exit 2 ;; esac
[ -f "$fmnist/train-images-idx3-ubyte.gz" ] ||
  { echo "e2e_tutorial: skipped, Fashion-MNIST not installed (dataset-fashion-mnist)"; exit 77; }
if nm "$tq" 2>/dev/null | grep __asan_init >/dev/null; then
  echo "e2e_tutorial: skipped for a sanitizer build"; exit 77
fi
[ -x "$bin/outlier_demo" ] || { echo "e2e_tutorial: $bin/outlier_demo not built"; exit 1; }

if [ -n "${TQ_TUTORIAL_DIR:-}" ]; then
  work=$TQ_TUTORIAL_DIR; mkdir -p "$work"; work=$(cd "$work" && pwd)
else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fi
meta=$work/.tutorial; rm -rf "$meta"; mkdir -p "$meta"
export OMP_WAIT_POLICY=passive LC_ALL=C PATH="$bin:$PATH"

# IDX file PREFIX-KIND of the package cut to its first N items (header count rewritten).
idx_head() { # PREFIX KIND(images|labels) N OUTDIR
  local prefix=$1 kind=$2 n=$3 out=$4 magic head item dims
  if [ "$kind" = images ]; then magic='\0\0\10\3' head=16 item=784 dims=3
  else magic='\0\0\10\1' head=8 item=1 dims=1; fi
  local file=$prefix-$kind-idx$dims-ubyte
  gzip -dc "$fmnist/$file.gz" > "$meta/raw"
  { printf "$magic"
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))"
    [ "$kind" = images ] && printf '\0\0\0\34\0\0\0\34'
    dd if="$meta/raw" iflag=skip_bytes,count_bytes skip=$head count=$((n * item)) status=none
  } > "$out/$file"
  rm -f "$meta/raw"
}
if [ "$mode" = quick ]; then
  small=$meta/fashion-mnist-5k; mkdir -p "$small"
  for kind in images labels; do idx_head train $kind 5000 "$small"; idx_head t10k $kind 1000 "$small"; done
fi

# The steps: "S LINE MODE" (the command's line in the tutorial, its block's mode), then
# "C TEXT" per command line and "E TEXT" per expected output line.
awk -v quick="$([ "$mode" = quick ] && echo 1 || echo 0)" '
  function fail(msg) { printf "e2e_tutorial: %s:%d: %s\n", FILENAME, NR, msg > "/dev/stderr"; bad = 1; exit 1 }
  skipping && /^```/ { skipping = 0; next }
  skipping { next }
  !inblock && /^<!-- check: .* -->$/ {
    s = $0; sub(/^<!-- check: */, "", s); sub(/ *-->$/, "", s); q = ""
    if (index(s, ";")) { q = substr(s, index(s, ";") + 1); s = substr(s, 1, index(s, ";") - 1)
      sub(/^ *quick: */, "", q); sub(/ *$/, "", q) }
    sub(/ *$/, "", s)
    if (s !~ /^(exact|shape|none)$/ || (q != "" && q !~ /^(exact|shape|none)$/))
      fail("bad check comment: " $0)
    pmode = (quick && q != "") ? q : s; pline = NR; next
  }
  !inblock && /^```console *$/ { inblock = 1; bmode = pline == NR - 1 ? pmode : "exact"; cont = 0; next }
  !inblock && /^```/ { skipping = 1; next }
  !inblock { next }
  /^```/ { inblock = 0; next }
  /^\$ / { print "S " NR " " bmode; print "C " substr($0, 3); cont = 1; n++; next }
  cont && /^> / { print "C " substr($0, 3); next }
  { if (!n) fail("output before any command in a console block"); cont = 0; print "E " $0 }
  END { if (!bad && inblock) fail("unclosed console block") }
' "$doc" > "$meta/steps"
[ -s "$meta/steps" ] || { echo "e2e_tutorial: no commands found in $doc"; exit 1; }

# Compares actual output $2 with expected $1 in mode $3; prints the differences.
compare() {
  awk -v mode="$3" -v exact_all="${TQ_TUTORIAL_EXACT:-0}" '
    function canon(s,   out, m) {
      out = ""
      while (length(s)) {
        # a number: not glued to a word before it (fc1, int8 and lenet5 are words)
        if (match(s, /^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?/) && !(prev ~ /[A-Za-z0-9_.]/)) {
          out = out "#"; prev = "#"; s = substr(s, RLENGTH + 1); continue
        }
        if (match(s, /^(openblas|avx512|avx2|vnni|portable)/) && !(prev ~ /[A-Za-z0-9_]/) &&
            !(substr(s, RLENGTH + 1, 1) ~ /[A-Za-z0-9_]/)) {
          out = out "@"; prev = "@"; s = substr(s, RLENGTH + 1); continue
        }
        c = substr(s, 1, 1); s = substr(s, 2); prev = c
        if (c != " " && c != "\t") out = out c
      }
      return out
    }
    function same(e, a,   m) {
      sub(/[ \t]+$/, "", e); sub(/[ \t]+$/, "", a)
      m = mode
      if (m == "shape" && exact_all == "1" && e !~ /img\/s/) m = "exact"
      if (m == "exact") return e == a
      prev = ""; ce = canon(e); prev = ""; return ce == canon(a)
    }
    BEGIN {
      while ((getline l < ARGV[1]) > 0) want[++ne] = l
      while ((getline l < ARGV[2]) > 0) got[++na] = l
      if (mode == "none") exit 0
      bad = 0
      for (i = 1; i <= (ne > na ? ne : na); i++) {
        if (i > ne) { printf "    unexpected line %d: %s\n", i, got[i]; bad = 1; continue }
        if (i > na) { printf "    missing line %d:    %s\n", i, want[i]; bad = 1; continue }
        if (!same(want[i], got[i])) { printf "    line %d, expected: %s\n", i, want[i]; printf "    line %d, got:      %s\n", i, got[i]; bad = 1 }
      }
      exit bad
    }' "$1" "$2"
}

step=0 failures=0 rewritten=0
run_step() { # runs step $step ($cmd, expected in $meta/exp) from tutorial line $line
  local run_cmd=$cmd
  if [ "$mode" = quick ]; then
    run_cmd=$(printf '%s' "$cmd" | sed -E "s#(^|[ =])fashion-mnist([^:A-Za-z0-9_-]|\$)#\\1fashion-mnist:$small\\2#g")
    [ "$run_cmd" = "$cmd" ] || rewritten=$((rewritten + 1))
  fi
  local out=$meta/out.$step status=0
  (cd "$work" && bash -c "$run_cmd") < /dev/null > "$out" 2>&1 || status=$?
  if [ $status -ne 0 ]; then
    echo "e2e_tutorial: docs/tutorial.md:$line: exited $status: $cmd"
    sed 's/^/    /' "$out"
    exit 1
  fi
  # the output names the data set as the tutorial does
  [ "$mode" = quick ] && sed -i "s#fashion-mnist:$small#fashion-mnist#g" "$out"
  if ! compare "$meta/exp" "$out" "$bmode" > "$meta/diff"; then
    echo "e2e_tutorial: docs/tutorial.md:$line: output differs ($bmode): $cmd"
    cat "$meta/diff"
    failures=$((failures + 1))
  fi
}

cmd="" line=0 bmode=exact
: > "$meta/exp"
t0=$SECONDS
while IFS= read -r rec; do
  case ${rec:0:2} in
    "S ")
      [ -n "$cmd" ] && run_step
      step=$((step + 1)); read -r _ line bmode <<< "$rec"; cmd=""; : > "$meta/exp" ;;
    "C ") cmd=${cmd:+$cmd$'\n'}${rec:2} ;;
    "E ") printf '%s\n' "${rec:2}" >> "$meta/exp" ;;
  esac
done < "$meta/steps"
[ -n "$cmd" ] && run_step

if [ "$mode" = quick ] && [ $rewritten -eq 0 ]; then
  echo "e2e_tutorial: no command names fashion-mnist: the quick run would train on the whole data set"
  exit 1
fi

if [ -n "$record" ]; then
  # The tutorial again, each command followed by its actual output instead of the quoted one.
  awk -v meta="$meta" '
    function emit(   f, l) { if (pending) { f = meta "/out." pending; while ((getline l < f) > 0) print l; close(f); pending = 0 } }
    /^```console *$/ && !inblock { inblock = 1; print; next }
    inblock && /^```/ { emit(); inblock = 0; print; next }
    inblock && /^\$ / { emit(); n++; print; cont = 1; pending = n; next }
    inblock && cont && /^> / { print; next }
    inblock { cont = 0; next }
    { print }
  ' "$doc" > "$record"
  echo "e2e_tutorial: wrote $record"
fi

if [ $failures -gt 0 ]; then
  echo "e2e_tutorial: $failures of $step commands gave other output than the tutorial quotes ($mode run)"
  exit 1
fi
echo "e2e_tutorial: $step commands of docs/tutorial.md ran as quoted ($mode run, $((SECONDS - t0)) s)"
