#!/usr/bin/env node
// ONNX Runtime's inference speed for bench/int_speed.sh: images/s of an exported model at
// batch 256 (random pixels in [0, 1]), graph optimizations at `all` (QDQ pairs fused into
// ORT's int8 kernels), T intra-op threads, one inter-op thread, after two warm-up runs.
// Usage: node bench/ort_speed.js MODEL.onnx THREADS [SECONDS]
//        prints: ort THREADS images_per_s
// onnxruntime-node comes from the test harness's folder (npm ci there first).
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '..', 'tests', 'ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [file, threadsArg, secondsArg] = process.argv.slice(2);
  if (!file || !threadsArg) {
    console.error('usage: node bench/ort_speed.js MODEL.onnx THREADS [SECONDS]');
    process.exit(2);
  }
  const threads = Number(threadsArg), seconds = Number(secondsArg || 3), batch = 256;
  const session = await ort.InferenceSession.create(file, {
    graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const dims = meta && meta.shape ? meta.shape.slice(1).map(Number) : null;
  if (!dims || dims.some((d) => !(d > 0))) throw new Error(`${file}: cannot read the input shape`);
  const per = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(batch * per);
  let s = 1;
  for (let i = 0; i < data.length; i++) { s = (s * 1103515245 + 12345) >>> 0; data[i] = (s >>> 8) / 16777216; }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, ...dims]) };
  await session.run(feeds);
  await session.run(feeds);
  let n = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    await session.run(feeds);
    n += batch;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  console.log(`ort ${threads} ${(n / elapsed).toFixed(0)}`);
}

main().catch((e) => { console.error(`ort_speed: ${e.message}`); process.exit(1); });
