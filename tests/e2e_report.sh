#!/usr/bin/env bash
# The --report of compare, ptq, qat and sensitivity, and `tinyqat report` redrawing one, on a
# small generated data set, each checked as a reader would get it: every SVG and the page
# parse as XML (xmllint), each expected figure is there with something drawn in it, the page
# fetches nothing, and headless Chromium renders it (a screenshot) with no console message,
# every figure non-empty on screen and every inline PNG decoding. Skipped (77) without
# xmllint or chromium (scripts/setup.sh installs both). TQ_REPORT_SHOTS=DIR keeps the
# screenshots.
#   tests/e2e_report.sh TINYQAT MAKE_BARS
set -euo pipefail
tq=$1; make_bars=$2
command -v xmllint >/dev/null || { echo "e2e_report: skipped, xmllint not installed (libxml2-utils; scripts/setup.sh)"; exit 77; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "e2e_report: skipped, chromium not installed (scripts/setup.sh)"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$make_bars" "$dir" 40 2 600 300 >/dev/null
cd "$dir"
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
q() { "$tq" "$@" --threads 2 >/dev/null; }

q train --model lenet5 --data mnist:. --epochs 2 --val 0.2 --quiet --out float.tqc
q compare --model-file float.tqc --recipes int8,w2a2 --qat-epochs 2 --qat-lr 0.001 \
  --calib-batches 4 --out cmp --quiet --report compare
q ptq --model-file float.tqc --recipe int8-sq --calib-batches 4 --out ptq.tqc --quiet --report ptq
q qat --model-file ptq.tqc --epochs 2 --out qat.tqc --quiet --report qat
q sensitivity --model-file float.tqc --recipe w4a4 --calib-batches 2 --report sensitivity
"$tq" report compare/report.json --out redrawn >/dev/null

failed=0
fail() { echo "e2e_report: $*"; failed=$((failed + 1)); }

# The check the browser runs, added to a copy of the page (the report itself has no script):
# each figure's SVG must have a non-empty box, each inline PNG must decode; problems go to
# console.error, which fails the test like any other console message.
check_script='<script>
window.addEventListener("load", async () => {
  const bad = [];
  for (const s of document.querySelectorAll("section")) {
    const svg = s.querySelector("svg");
    const box = svg && svg.getBBox();
    if (!svg || !(box.width > 0 && box.height > 0)) bad.push(s.id + ": empty figure");
  }
  for (const im of document.querySelectorAll("image")) {
    const img = new Image();
    img.src = im.getAttribute("href");
    try { await img.decode(); } catch (e) { bad.push("a PNG does not decode"); }
  }
  for (const b of bad) console.error(b);
  document.body.setAttribute("data-check", "checked " + document.querySelectorAll("section").length);
});
</script>'

check_report() { # NAME FIGURE-ID...
  local name=$1; shift
  local page=$name/index.html
  [ -f "$page" ] || { fail "$name: no index.html"; return; }
  xmllint --noout "$page" 2>/dev/null || fail "$name: index.html is not well-formed"
  # nothing fetched: the only URL is the SVG namespace
  # (no grep -q at a pipe's end: its early exit would fail the pipe under pipefail)
  if grep -o 'http[s]*://[^"]*' "$page" | grep -v '^http://www.w3.org/2000/svg$' >/dev/null; then
    fail "$name: the page refers to an outside URL"
  fi
  for id in "$@"; do
    local svg=$name/$id.svg
    if [ ! -f "$svg" ]; then fail "$name: figure $id missing"; continue; fi
    xmllint --noout "$svg" 2>/dev/null || fail "$name: $id.svg is not well-formed"
    # a series group holding a mark (not only the frame, the ticks and the legend)
    grep -A1 '<g class="series">' "$svg" | grep -E '^<(path|polyline|circle|rect|line|image) ' >/dev/null ||
      fail "$name: $id.svg draws no data"
    grep -q "<section id=\"$id\">" "$page" || fail "$name: index.html lacks figure $id"
  done
  local sections
  sections=$(grep -c '<section id=' "$page" || true)
  [ "$sections" = "$#" ] || fail "$name: $sections figures, expected $# ($*)"
  sed "s#</body>#$(printf '%s' "$check_script" | tr '\n' ' ' | sed 's/[&#]/\\&/g')</body>#" "$page" > "$name/check.html"
  # a profile of its own: no dependence on HOME, no clash with another browser running
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$dir/profile-$name" \
    --enable-logging=stderr --v=0 --virtual-time-budget=5000 --window-size=860,2400 \
    --screenshot="$dir/$name.png" --dump-dom "file://$dir/$name/check.html" \
    > "$name.dom" 2> "$name.log" || fail "$name: chromium failed"
  grep -q "data-check=\"checked $#\"" "$name.dom" || fail "$name: the page's check did not run to the end"
  if grep -q 'CONSOLE' "$name.log"; then
    fail "$name: console messages:"
    grep 'CONSOLE' "$name.log" | sed 's/^/    /'
  fi
  [ -s "$dir/$name.png" ] && [ "$(stat -c %s "$dir/$name.png")" -gt 20000 ] ||
    fail "$name: no screenshot, or a blank one"
  if [ -n "${TQ_REPORT_SHOTS:-}" ]; then cp "$dir/$name.png" "$TQ_REPORT_SHOTS/"; fi
}

all=(training accuracy weights activations clipping layers ste formats confusion ranges)
check_report compare "${all[@]}"
check_report redrawn "${all[@]}"
check_report ptq accuracy weights activations clipping layers ste formats confusion ranges
check_report qat training weights layers ste formats confusion ranges
check_report sensitivity weights activations clipping layers ste formats ranges
cmp -s compare/report.json redrawn/report.json || fail "redrawn: report.json differs from the one it was drawn from"
cmp -s compare/index.html redrawn/index.html || fail "redrawn: index.html differs from the run's"

if [ "$failed" -gt 0 ]; then echo "e2e_report: $failed failure(s)"; exit 1; fi
echo "e2e_report: 5 reports rendered in $("$browser" --version 2>/dev/null | head -1), every figure there"
