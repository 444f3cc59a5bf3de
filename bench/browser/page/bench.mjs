// The page side of bench/browser/run.mjs: three TFLite runtimes behind one small adapter each, all
// on the page's main thread (one thread, no workers), driven call by call from Node through
// `window.bench`. Every adapter's `run()` does the same work: copy the input typed array into the
// runtime, invoke, copy the output tensor out into a fresh JS typed array (and free what the call
// allocated). That is what is timed, with performance.now() around each call.

import * as litert from '/nm/@litertjs/core/dist/index.js';

const TYPED = { uint8: Uint8Array, int8: Int8Array, int16: Int16Array, float32: Float32Array };

/** tfjs-tflite 0.0.1-alpha.10: TFLite + XNNPACK (emscripten), through its TFLiteWebModelRunner. */
const tfjsTflite = {
  name: 'tfjs-tflite',
  async init(urls) {
    window.tflite.setWasmPath(urls.tfliteWasm);
    const features = await window.tflite.getWasmFeatures();
    return { features };
  },
  async create(bytes) {
    // `loadTFLiteModel` wraps TFLiteWebModelRunner; `predict` would also convert the input through
    // a tfjs int32/float32 tensor and build output tensors. The runner is the interpreter itself:
    // its input buffer is a view into the wasm heap (fetched per call: the heap may grow).
    const model = await window.tflite.loadTFLiteModel(bytes.slice().buffer, { numThreads: 1 });
    const runner = model.modelRunner;
    if (!runner) throw new Error('TFLiteModel.modelRunner not found (bundle changed?)');
    return {
      run(input) {
        runner.getInputs()[0].data().set(input);
        if (!runner.infer()) throw new Error('TFLiteWebModelRunner.infer() failed');
        return runner.getOutputs()[0].data().slice();
      },
      dispose() {
        runner.cleanUp();
      },
    };
  },
  /** One profiled inference on a separate instance: which nodes ran (XNNPACK's delegate or not). */
  async profile(bytes, input) {
    const model = await window.tflite.loadTFLiteModel(bytes.slice().buffer, { numThreads: 1, enableProfiling: true });
    const runner = model.modelRunner;
    try {
      runner.getInputs()[0].data().set(input);
      runner.infer();
      const ops = {};
      for (const item of runner.getProfilingResults()) ops[item.nodeType] = (ops[item.nodeType] ?? 0) + 1;
      return ops;
    } finally {
      runner.cleanUp();
    }
  },
};

/** LiteRT.js 2.5.3: LiteRT's CompiledModel on its 'wasm' (CPU, XNNPACK) accelerator. */
const liteRt = {
  name: 'litert.js',
  async init(urls) {
    const relaxedSimd = await litert.supportsFeature('relaxedSimd');
    // No `threads` and no `jspi`: the single-threaded build, relaxed-SIMD when the browser has it.
    await litert.loadLiteRt(urls.litertWasm);
    return { features: { relaxedSimd, threads: await litert.supportsFeature('threads') } };
  },
  async create(bytes, spec) {
    const model = await litert.loadAndCompile(bytes.slice(), { accelerator: 'wasm', cpuOptions: { numThreads: 1 } });
    // The golden input's shape (the file may declare a dynamic batch, -1, which a Tensor cannot take).
    const shape = Array.from(spec.shape);
    return {
      async run(input) {
        const tensor = new litert.Tensor(input, shape);
        let outputs;
        try {
          outputs = await model.run(tensor);
          return outputs[0].toTypedArray();
        } finally {
          tensor.delete();
          if (outputs) for (const o of outputs) o.delete();
        }
      },
      dispose() {
        model.delete();
      },
    };
  },
};

/** Ours: dist/classifier-simd.wasm transpiled by jco (V8 runs the core module; no WASI imports). */
let classifier;
const ours = {
  name: 'ours',
  async init(urls) {
    ({ classifier } = await import(urls.jco + 'classifier.js'));
    return {};
  },
  async create(bytes, spec) {
    const model = classifier.Model.load(bytes.slice(), { precision: spec.precision });
    const shape = Uint32Array.from(spec.shape);
    return {
      run(input) {
        return model.infer({ shape, data: { tag: spec.dtype, val: input } }).data.val;
      },
      dispose() {
        model[Symbol.dispose]();
      },
    };
  },
};

const RUNTIMES = { 'tfjs-tflite': tfjsTflite, 'litert.js': liteRt, ours };

function message(e) {
  // jco throws a ComponentError whose payload is the WIT `error` variant.
  if (e && e.payload && typeof e.payload.tag === 'string') return `${e.payload.tag}: ${e.payload.val}`;
  return String(e && e.message ? e.message : e);
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

const state = { model: null, input: null, spec: null, handles: {} };

window.bench = {
  /** Instantiates every runtime's wasm once (not part of any model's load time). */
  async init(urls) {
    await window.tf.setBackend('cpu');
    const out = { crossOriginIsolated: self.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency };
    for (const [name, rt] of Object.entries(RUNTIMES)) {
      const t0 = performance.now();
      try {
        out[name] = { ...(await rt.init(urls)), init_ms: performance.now() - t0 };
      } catch (e) {
        out[name] = { error: message(e) };
      }
    }
    return out;
  },

  /** Fetches the model and input, then creates the model in every runtime (timed: load_ms). */
  async load(spec, names) {
    for (const h of Object.values(state.handles)) h.dispose();
    state.handles = {};
    state.spec = spec;
    state.model = await fetchBytes(spec.modelUrl);
    const raw = await fetchBytes(spec.inputUrl);
    state.input = new TYPED[spec.dtype](raw.buffer, raw.byteOffset, raw.byteLength / TYPED[spec.dtype].BYTES_PER_ELEMENT);
    const out = {};
    for (const name of names) {
      const t0 = performance.now();
      let handle;
      try {
        handle = await RUNTIMES[name].create(state.model, spec);
        out[name] = { load_ms: performance.now() - t0 };
        // One untimed call: a runtime that loads a model but cannot run it is refused here.
        await handle.run(state.input);
        state.handles[name] = handle;
      } catch (e) {
        out[name] = { error: message(e) };
        try {
          handle?.dispose();
        } catch {}
      }
    }
    if (state.handles['tfjs-tflite']) {
      try {
        out['tfjs-tflite'].ops = await tfjsTflite.profile(state.model, state.input);
      } catch (e) {
        out['tfjs-tflite'].ops = { error: message(e) };
      }
    }
    return out;
  },

  /** `warmup` untimed then `runs` timed calls; returns the times and the first and last outputs. */
  async time(name, warmup, runs) {
    const handle = state.handles[name];
    const input = state.input;
    let first = null;
    for (let i = 0; i < warmup; i++) {
      const out = await handle.run(input);
      if (first === null) first = out;
    }
    const times = new Array(runs);
    let out = null;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      out = await handle.run(input);
      times[i] = performance.now() - t0;
    }
    const same = (a, b) => a === null || b === null || (a.length === b.length && a.every((v, i) => Object.is(v, b[i])));
    return { times, stable: same(first, out), output: out === null ? null : Array.from(out), outputType: out?.constructor.name };
  },

  dispose() {
    for (const h of Object.values(state.handles)) h.dispose();
    state.handles = {};
  },
};
window.benchReady = true;
