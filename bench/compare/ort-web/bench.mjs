// ONNX Runtime Web, wasm backend, 1 thread, in Node: median latency of each exported ONNX model.
//
// Usage: node bench.mjs JOBS.json RUNS
//
// JOBS.json is written by ../run.py: a list of {model, precision, onnx, input: {name, dtype, shape, bin},
// expect_top1}. For each job this prints one JSON line (the format run.py prints for every runtime).
// Peak memory is the size of the wasm linear memory after the runs: linear memory only grows, so its
// final size is its high-water mark (it counts what the ORT allocator reserved, not what it still holds).
// All sessions of one process share one wasm instance: run.py starts one node process per model, so the
// figure is that model's (plus the runtime's own baseline).

import fs, { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// Record every WebAssembly.Memory that the ORT runtime creates (its emscripten glue makes the shared linear
// memory itself, with `new WebAssembly.Memory`), so we can read its size. Installed before ORT is loaded.
const memories = [];
const NativeMemory = WebAssembly.Memory;
WebAssembly.Memory = new Proxy(NativeMemory, {
  construct(target, args) {
    const m = Reflect.construct(target, args);
    memories.push(m);
    return m;
  },
});

const ort = await import('onnxruntime-web');
const ORT_DIR = fileURLToPath(new URL('./node_modules/onnxruntime-web/', import.meta.url));
const ortVersion = JSON.parse(readFileSync(path.join(ORT_DIR, 'package.json'), 'utf8')).version;
const RUNTIME = `onnxruntime-web ${ortVersion} wasm simd 1 thread (node ${process.versions.node.split('.')[0]})`;

const [jobsPath, runsArg] = process.argv.slice(2);
if (!jobsPath) {
  console.error('usage: node bench.mjs JOBS.json RUNS');
  process.exit(2);
}
const runs = Number(runsArg ?? 5);
const jobs = JSON.parse(readFileSync(jobsPath, 'utf8'));

ort.env.wasm.numThreads = 1;
// `true` (the default) makes ORT check that fixed-width SIMD is available and fail otherwise; the package
// ships only SIMD builds of the runtime (dist/ort-wasm-simd-threaded*.wasm), so SIMD is what runs.
ort.env.wasm.simd = true;
ort.env.wasm.proxy = false;
ort.env.logLevel = 'error';

// A module using one v128 instruction: proves this Node really has wasm SIMD enabled.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
]);
const simdOk = WebAssembly.validate(SIMD_PROBE);
const wasmFile = path.join(ORT_DIR, 'dist', 'ort-wasm-simd-threaded.wasm');

const TYPED = {
  float32: Float32Array,
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
};

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function argmax(data) {
  let best = 0;
  for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
  return best;
}

function linearMemoryBytes() {
  if (memories.length === 0) return null;
  return Math.max(...memories.map((m) => m.buffer.byteLength));
}

const round = (x) => Math.round(x * 1000) / 1000;

// Which kernels ORT Web really ran: one extra profiled run in a separate session, after the timed ones.
// ORT Web prints its profile (one JSON event per node, with "op_name") on stdout at endProfiling();
// it is captured so it does not mix with our JSON lines.
async function kernelsRun(bytes, feeds) {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], enableProfiling: true });
  await s.run(feeds);
  const captured = [];
  // ORT's emscripten glue prints with fs.writeSync(1, ...) on the `fs` module object (Node, threaded build).
  const writeSync = fs.writeSync;
  fs.writeSync = (fd, data, ...rest) => {
    if (fd === 1) {
      captured.push(String(data));
      return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    }
    return writeSync.call(fs, fd, data, ...rest);
  };
  try {
    await s.endProfiling();
  } finally {
    fs.writeSync = writeSync;
  }
  await s.release();
  const counts = {};
  for (const m of captured.join('').matchAll(/"op_name"\s*:\s*"([^"]+)"/g)) counts[m[1]] = (counts[m[1]] ?? 0) + 1;
  return counts;
}

// The first session initializes the runtime (fetches and compiles the ORT wasm). Time that once, apart, so
// the first model's load_ms is a model load like the others.
let initMs = null;
if (jobs.length > 0 && simdOk) {
  try {
    const t = performance.now();
    const s = await ort.InferenceSession.create(readFileSync(jobs[0].onnx), { executionProviders: ['wasm'] });
    initMs = round(performance.now() - t);
    await s.release();
  } catch (e) {
    // reported by that job below
  }
}

for (const job of jobs) {
  const line = {
    runtime: RUNTIME,
    model: job.model,
    precision: job.precision,
    load_ms: null,
    median_ms: null,
    runs,
    peak_mem_bytes: null,
    top1_matches: null,
    error: null,
    onnx: path.basename(job.onnx),
    note: null,
    runtime_init_ms: initMs,
  };
  try {
    if (!simdOk) throw new Error('this Node has no wasm SIMD');
    const bytes = readFileSync(job.onnx);
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    line.load_ms = round(performance.now() - t0);
    const Typed = TYPED[job.input.dtype];
    if (!Typed) throw new Error(`input dtype ${job.input.dtype} not handled`);
    const raw = readFileSync(job.input.bin);
    const data = new Typed(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const feeds = { [job.input.name]: new ort.Tensor(job.input.dtype, data, job.input.shape) };
    const outName = session.outputNames[0];
    const first = await session.run(feeds); // warm-up
    const top1 = argmax(first[outName].data);
    line.top1_matches = job.expect_top1 == null ? null : top1 === job.expect_top1;
    if (job.output && job.output.reference_bin) {
      const rb = readFileSync(job.output.reference_bin);
      const ref = new Float64Array(rb.buffer.slice(rb.byteOffset, rb.byteOffset + rb.byteLength));
      const got = first[outName].data;
      const { scale, zero_point: zp } = job.output;
      const integer = !(got instanceof Float32Array || got instanceof Float64Array);
      let diff = 0;
      for (let i = 0; i < ref.length; i++) {
        const v = integer && scale != null ? scale * (Number(got[i]) - zp) : Number(got[i]);
        diff = Math.max(diff, Math.abs(v - ref[i]));
      }
      line.max_abs_diff = got.length === ref.length ? diff : null;
    }
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    line.median_ms = round(median(times));
    line.peak_mem_bytes = linearMemoryBytes();
    line.note =
      `peak_mem_bytes: wasm linear memory size after this model's warm-up and runs (linear memory only ` +
      `grows, so this is its peak; it spans every session of this node process: run.py starts one per ` +
      `model); top-1 ${top1}; runtime binary ${path.basename(wasmFile)}, SIMD validated` +
      (job.output && job.output.reference ? `; max_abs_diff vs ${job.output.reference}` : '');
    await session.release();
    try {
      const kernels = await kernelsRun(bytes, feeds);
      const names = Object.keys(kernels).sort();
      if (names.length > 0) {
        line.note += `; ORT Web kernels (profiled run): ${names.map((k) => `${k} ${kernels[k]}`).join(', ')}`;
        const integer = names.some((k) => k.startsWith('QLinear') || k.endsWith('Integer'));
        if (line.precision !== 'fp32' && !integer) {
          line.precision = 'fp32';
          line.note += '; no integer kernels: this QDQ graph ran in float between Q/DQ';
        } else if (line.precision !== 'fp32') {
          const floats = ['Conv', 'FusedConv', 'NhwcFusedConv', 'Gemm', 'MatMul'].reduce((a, k) => a + (kernels[k] ?? 0), 0);
          if (floats > 0) line.note += `; mixed: ${floats} Conv/Gemm ran in float between DequantizeLinear/QuantizeLinear`;
        }
      } else {
        line.note += '; ORT Web kernels: the profile printed no node events';
      }
    } catch (e) {
      line.note += `; ORT Web kernels: profiling failed (${String(e && e.message ? e.message : e).slice(0, 200)})`;
    }
  } catch (e) {
    line.load_ms = null;
    line.median_ms = null;
    line.error = String(e && e.message ? e.message : e).split('\n')[0].slice(0, 500);
    line.peak_mem_bytes = linearMemoryBytes();
  }
  console.log(JSON.stringify(line));
}
