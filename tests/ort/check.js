// Runs a model exported by `tinyqat export` in ONNX Runtime and compares it with tinyqat's
// own results from `tinyqat eval --dump` (layout in cli/dump.c). Prints one verdict line and
// exits 0 (pass), 1 (disagreement) or 2 (usage or unreadable input).
//
//   node check.js --dump D.bin --model M.onnx [--codes-model Mc.onnx] [--name NAME]
//                 [--float] [--allow-refusal LEVEL] [--allow-deviation LEVEL] [--json FILE]
//
// --model is run at graph optimization levels `basic` and `all`; --codes-model (the same model
// exported with --codes; default --model) at `disabled`. What is checked:
// - float models (--float), at every level: every logit |a - b| <= 1e-5 * max(1, |b|), a
//   ORT's, b tinyqat's.
// - quantized models at `disabled` (ORT then runs QuantizeLinear/DequantizeLinear as written):
//   * codes: ORT's QuantizeLinear outputs, clamped to the format's grid (the graph's Clip
//     does that after dequantizing, for grids narrower than their container), are the
//     format's rounding of ORT's own inputs, and equal tinyqat's codes except after a
//     rounding tie (see compareCodes);
//   * argmax equal on >= 99.9% of the images;
//   * every logit |a - b| <= step + 1e-5 * max(1, |b|), step = g * s_x * max_o sum_j |wq_oj|
//     for the last layer (the dump's logit_step: one quantization step, of the grid's widest
//     spacing g (1 for integers, 32 for E4M3, 8192 for E5M2), on all its inputs at once).
// - quantized models at `basic` and `all` (where ORT fuses QDQ into integer kernels):
//   accuracy within 0.1 point of tinyqat's.
// A level at which ORT refuses the model fails the check unless --allow-refusal names it, and
// a level whose results disagree fails unless --allow-deviation names it: for differences
// that are ORT's own, known and explained (the test script says which and why). The
// refusal or the deviation is printed either way, as a FINDING.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

const FLOAT_REL = 1e-5;
const MIN_ARGMAX = 0.999;
const MAX_ACC_POINTS = 0.1;
const BATCH = 100;

function usage(msg) {
  console.error(`check.js: ${msg}`);
  console.error('usage: node check.js --dump D.bin --model M.onnx [--codes-model Mc.onnx] ' +
                '[--name NAME] [--float] [--allow-refusal LEVEL] [--allow-deviation LEVEL] [--json FILE]');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { allow: new Set(), deviate: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${k} needs a value`));
    if (k === '--dump') a.dump = val();
    else if (k === '--model') a.model = val();
    else if (k === '--codes-model') a.codesModel = val();
    else if (k === '--name') a.name = val();
    else if (k === '--float') a.float = true;
    else if (k === '--allow-refusal') a.allow.add(val());
    else if (k === '--allow-deviation') a.deviate.add(val());
    else if (k === '--json') a.json = val();
    else usage(`unknown option '${k}'`);
  }
  if (!a.dump || !a.model) usage('--dump and --model are required');
  a.codesModel = a.codesModel || a.model;
  a.name = a.name || path.basename(a.model, '.onnx');
  return a;
}

// The dump, as cli/dump.c writes it.
function readDump(file) {
  const b = fs.readFileSync(file);
  const fail = (m) => { throw new Error(`${file}: ${m}`); };
  if (b.length < 36 || b.toString('latin1', 0, 7) !== 'TQDUMP1' || b[7] !== 0)
    fail('not a tinyqat dump (bad magic)');
  let off = 8;
  const u32 = () => { if (off + 4 > b.length) fail('truncated'); const v = b.readUInt32LE(off); off += 4; return v; };
  const f32 = () => { if (off + 4 > b.length) fail('truncated'); const v = b.readFloatLE(off); off += 4; return v; };
  const [n, c, h, w, classes, nq, coded] = [u32(), u32(), u32(), u32(), u32(), u32(), u32()];
  if (coded > n) fail(`${coded} coded images of ${n}`);
  const logitStep = f32();
  const quant = [];
  for (let k = 0; k < nq; k++) {
    const len = u32();
    if (off + len > b.length) fail('truncated');
    const name = b.toString('utf8', off, off + len);
    off += len;
    quant.push({ name, qmin: f32(), qmax: f32(), scale: f32(), perSample: u32() });
  }
  const pix = c * h * w;
  const record = 4 * (pix + 1 + classes), codesRecord = 4 * quant.reduce((s, q) => s + q.perSample, 0);
  const size = off + n * record + coded * codesRecord;
  if (b.length !== size) fail(`size ${b.length}, expected ${size}`);
  const d = { n, c, h, w, classes, logitStep, quant, coded,
              images: new Float32Array(n * pix), labels: new Int32Array(n),
              logits: new Float32Array(n * classes) };
  for (const q of quant) q.codes = new Float32Array(coded * q.perSample);
  // a byte copy into the Float32Array: the dump is little-endian, as every host ORT runs on
  const floats = (dst, at, count) => {
    b.copy(new Uint8Array(dst.buffer, dst.byteOffset + 4 * at, 4 * count), 0, off, off + 4 * count);
    off += 4 * count;
  };
  for (let i = 0; i < n; i++) {
    floats(d.images, i * pix, pix);
    d.labels[i] = b.readInt32LE(off); off += 4;
    floats(d.logits, i * classes, classes);
    if (i < coded) for (const q of quant) floats(q.codes, i * q.perSample, q.perSample);
  }
  return d;
}

// Runs every image through a session: {name: Float32Array}, `logits` for every image, the
// other outputs for the first `coded` images only (the ones the dump has codes for).
async function runAll(session, d, names, coded = d.n) {
  const pix = d.c * d.h * d.w;
  const out = {};
  for (let s = 0; s < d.n; s += BATCH) {
    const m = Math.min(BATCH, d.n - s);
    const x = new ort.Tensor('float32', d.images.subarray(s * pix, (s + m) * pix), [m, d.c, d.h, d.w]);
    const want = s < coded ? names : names.filter((k) => k === 'logits');
    const r = await session.run({ input: x }, want);
    for (const k of want) {
      const per = r[k].data.length / m, rows = k === 'logits' ? d.n : coded;
      const keep = k === 'logits' ? m : Math.min(m, coded - s);
      if (!out[k]) out[k] = new Float32Array(per * rows);
      out[k].set(r[k].data.subarray(0, keep * per), per * s);
    }
  }
  return out;
}

async function open(file, level) {
  try {
    return { session: await ort.InferenceSession.create(file, { graphOptimizationLevel: level }) };
  } catch (e) {
    return { refused: String(e.message || e).split('\n')[0] };
  }
}

function argmax(v, at, k) {
  let best = 0;
  for (let j = 1; j < k; j++) if (v[at + j] > v[at + best]) best = j;
  return best;
}

function compareLogits(d, ort, slack) {
  let worst = 0, worstRatio = 0, same = 0, correct = 0;
  for (let i = 0; i < d.n; i++) {
    for (let j = 0; j < d.classes; j++) {
      const a = ort[i * d.classes + j], b = d.logits[i * d.classes + j];
      const diff = Number.isFinite(a) ? Math.abs(a - b) : Infinity;
      worst = Math.max(worst, diff);
      worstRatio = Math.max(worstRatio, diff / (slack + FLOAT_REL * Math.max(1, Math.abs(b))));
    }
    const k = argmax(ort, i * d.classes, d.classes);
    if (k === argmax(d.logits, i * d.classes, d.classes)) same++;
    if (k === d.labels[i]) correct++;
  }
  return { worst, within: worstRatio <= 1, agree: same / d.n, acc: correct / d.n };
}

function tinyqatAccuracy(d) {
  let correct = 0;
  for (let i = 0; i < d.n; i++) if (argmax(d.logits, i * d.classes, d.classes) === d.labels[i]) correct++;
  return correct / d.n;
}

// Half to even, as QuantizeLinear and tinyqat round.
function rintEven(v) {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// The format's rounding of v (a value already divided by the scale): half to even onto the
// integer grid [qmin, qmax], or onto FP8's (E4M3: 3 mantissa bits, normal exponents from -6,
// max 448; E5M2: 2 bits, from -14, max 57344), saturating, as QuantizeLinear (saturate=1)
// and tinyqat both specify.
function formatRound(q, v) {
  const fp = q.qmax === 448 ? [3, -6] : q.qmax === 57344 ? [2, -14] : null;
  if (!fp) return Math.min(q.qmax, Math.max(q.qmin, rintEven(v)));
  const a = Math.abs(v);
  if (a === 0 || !Number.isFinite(a)) return v;
  let e = Math.max(Math.floor(Math.log2(a)), fp[1]);
  if (e > fp[1] && 2 ** e > a) e--;
  const step = 2 ** (e - fp[0]);
  return Math.sign(v) * Math.min(q.qmax, rintEven(a / step) * step);
}

// Two checks per quantizer, for per-tensor scales:
// 1. ORT's code is the format's rounding of ORT's own QuantizeLinear input divided by the
//    scale (in float32, as QuantizeLinear divides): QuantizeLinear computes what fake quant
//    computes, on every code.
// 2. Against tinyqat: ORT and tinyqat sum a layer's products in different orders, so an input
//    can differ in its last bits, and where it sits on a rounding tie (half-way between two
//    codes) the two land on either side; that flip moves later inputs of the same image by a
//    step or more, and later codes with them. So, image by image, the first differing code
//    (in layer order) must be at a tie: ORT's input within TIE_TOL * max(1, |midpoint|) of
//    the midpoint between the two codes (in units of the scale); the codes after it in that
//    image may differ (counted). Ties must stay rare: at most MAX_TIE_RATE of the codes.
const TIE_TOL = 1e-3;
const MAX_TIE_RATE = 1e-4;

function compareCodes(d, got) {
  let total = 0, equal = 0, ties = 0, downstream = 0, worstTie = 0, imagesDiffer = 0;
  const wrongRounding = new Map(), notTie = new Map();
  const bump = (m, k) => m.set(k, (m.get(k) || 0) + 1);
  for (let i = 0; i < d.coded; i++) {
    let differed = false;
    for (const q of d.quant) {
      const o = got[`codes.${q.name}`], qin = got[`qin.${q.name}`];
      let here = false;
      for (let j = i * q.perSample; j < (i + 1) * q.perSample; j++) {
        total++;
        const a = Math.min(q.qmax, Math.max(q.qmin, o[j])), b = q.codes[j];
        const v = q.scale > 0 ? Math.fround(qin[j] / q.scale) : NaN;
        if (q.scale > 0 && formatRound(q, v) !== a) bump(wrongRounding, q.name);
        if (a === b) { equal++; continue; }
        here = true;
        if (differed) { downstream++; continue; }
        const mid = (a + b) / 2, dist = Math.abs(v - mid) / Math.max(1, Math.abs(mid));
        if (dist <= TIE_TOL) { ties++; worstTie = Math.max(worstTie, dist); } else bump(notTie, q.name);
      }
      differed = differed || here;
    }
    if (differed) imagesDiffer++;
  }
  const fails = [
    ...[...wrongRounding].map(([k, v]) => `${k}: ${v} ORT codes are not the rounding of ORT's own input`),
    ...[...notTie].map(([k, v]) => `${k}: ${v} codes differ first in their image, not at a tie`),
  ];
  if (ties > MAX_TIE_RATE * total) fails.push(`${ties} ties in ${total} codes (at most ${MAX_TIE_RATE} of them)`);
  return { ok: fails.length === 0, frac: total ? equal / total : 1, ties, downstream, worstTie,
           imagesDiffer, fails };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  let d;
  try { d = readDump(a.dump); } catch (e) { usage(e.message); }
  const fails = [], notes = [];
  // A failure at a level the caller allowed becomes a FINDING note instead.
  const fail = (level, msg, allowed) => (allowed.has(level) ? notes.push(`FINDING ${msg}`) : fails.push(msg));
  const tqAcc = tinyqatAccuracy(d);
  // the figures, for --json
  const fig = { name: a.name, images: d.n, tinyqat_accuracy: tqAcc, levels: {} };
  const pct = (x) => (100 * x).toFixed(2) + '%';

  // disabled: QDQ as written
  const codeNames = d.quant.flatMap((q) => [`codes.${q.name}`, `qin.${q.name}`]);
  const dis = await open(a.codesModel, 'disabled');
  if (dis.refused) {
    fail('disabled', `disabled: ORT refused the model: ${dis.refused}`, a.allow);
  } else {
    const missing = codeNames.filter((k) => !dis.session.outputNames.includes(k));
    if (missing.length) usage(`${a.codesModel} lacks outputs ${missing.join(', ')} (export it with --codes)`);
    const got = await runAll(dis.session, d, ['logits', ...codeNames], d.coded);
    const l = compareLogits(d, got.logits, a.float ? 0 : d.logitStep);
    let msg = `disabled: accuracy ${pct(l.acc)}, max|dlogit| ${l.worst.toExponential(2)}`;
    fig.levels.disabled = { accuracy: l.acc, argmax_equal: l.agree, max_dlogit: l.worst };
    if (a.float) {
      if (!l.within) fail('disabled', `disabled: logits differ by more than ${FLOAT_REL} relative (max ${l.worst.toExponential(2)})`, a.deviate);
    } else {
      const c = compareCodes(d, got);
      Object.assign(fig.levels.disabled, { codes_equal: c.frac, coded_images: d.coded,
        images_differing: c.imagesDiffer, ties: c.ties, logit_step: d.logitStep });
      msg += ` (bound ${d.logitStep.toPrecision(3)} + 1e-5 rel), argmax equal ${pct(l.agree)}, ` +
             `codes equal ${(100 * c.frac).toFixed(4)}% at ${d.quant.length} quantizers on ${d.coded} images ` +
             `(${c.imagesDiffer} images differ: first at ${c.ties} rounding ties, worst ` +
             `${c.worstTie.toExponential(1)} from the midpoint, then ${c.downstream} codes after them)`;
      if (!c.ok) fail('disabled', `disabled: codes differ: ${c.fails.join('; ')}`, a.deviate);
      if (l.agree < MIN_ARGMAX) fail('disabled', `disabled: argmax equal on ${pct(l.agree)} of images (need ${pct(MIN_ARGMAX)})`, a.deviate);
      if (!l.within) fail('disabled', `disabled: a logit differs by ${l.worst.toExponential(3)}, beyond one step ${d.logitStep.toExponential(3)}`, a.deviate);
    }
    notes.push(msg);
  }

  // basic (constant folding, redundant-node removal) and all (QDQ fused into integer
  // kernels, layout changes): ORT's own optimisations
  for (const level of ['basic', 'all']) {
    const opt = await open(a.model, level);
    if (opt.refused) {
      fail(level, `${level}: ORT refused the model: ${opt.refused}`, a.allow);
      fig.levels[level] = { refused: opt.refused };
      continue;
    }
    const got = await runAll(opt.session, d, ['logits']);
    const l = compareLogits(d, got.logits, 0);
    const dAcc = 100 * Math.abs(l.acc - tqAcc);
    fig.levels[level] = { accuracy: l.acc, argmax_equal: l.agree, max_dlogit: l.worst };
    notes.push(`${level}: accuracy ${pct(l.acc)}, argmax equal ${pct(l.agree)}, max|dlogit| ${l.worst.toExponential(2)}`);
    if (a.float && !l.within) fail(level, `${level}: logits differ by more than ${FLOAT_REL} relative (max ${l.worst.toExponential(2)})`, a.deviate);
    if (dAcc > MAX_ACC_POINTS + 1e-9) fail(level, `${level}: accuracy differs by ${dAcc.toFixed(2)} points (at most ${MAX_ACC_POINTS})`, a.deviate);
  }
  const verdict = fails.length ? 'FAIL' : 'PASS';
  if (a.json) {
    Object.assign(fig, { verdict, findings: notes.filter((n) => n.startsWith('FINDING')), failures: fails });
    fs.writeFileSync(`${a.json}.tmp`, JSON.stringify(fig, null, 1) + '\n');
    fs.renameSync(`${a.json}.tmp`, a.json);
  }
  console.log(`ort-check ${a.name}: ${verdict} (${d.n} images, tinyqat accuracy ${pct(tqAcc)}); ${notes.join('; ')}` +
              (fails.length ? `; FAILED: ${fails.join('; ')}` : ''));
  process.exit(fails.length ? 1 : 0);
}

if (require.main === module)
  main().catch((e) => { console.error(`check.js: ${e.stack || e}`); process.exit(2); });
else
  module.exports = { ort, readDump, runAll };
