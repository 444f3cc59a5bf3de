// The Cloudflare Worker: classify-http's HTTP API (apps/http/src/app.rs) around the classifier
// component, transpiled by jco (`cargo xtask worker` writes it, this file, and the rest of
// dist/worker/). The component imports nothing, so no WASI shim: its core modules are imported
// statically (Workers refuse to compile wasm bytes at run time) and instantiated once per isolate.
//
// Same routes, query, JSON shapes, error kinds, statuses and body limit as classify-http; the
// host-tests `worker` suite runs classify-http's HTTP cases against both, and the limits, endpoints
// and model names come from classify-http's Rust (`contract.js`, written by `cargo xtask worker`).
// Two differences, both forced by the platform: `inference_ms` is null, because `Date.now()` and
// `performance.now()` do not advance during a Worker request (time it from the client); and models
// are created once per isolate and reused by every request, where classify-http (an instance per
// request under `wasmtime serve`) sets one up each time. One addition: every answer carries
// `x-wasm-memory-bytes`, the classifier's linear memory after the request, the part of the
// isolate's 128 MB that grows with models and images (wasm memory never shrinks).

import core from "./classifier.core.wasm";
import core2 from "./classifier.core2.wasm";
import core3 from "./classifier.core3.wasm";
import person from "./person.bin";
import { instantiate } from "./classifier.js";
import { MAX_BODY_BYTES, DEFAULT_TOP, ENDPOINTS, MODEL_NAMES } from "./contract.js";

const cores = { "classifier.core.wasm": core, "classifier.core2.wasm": core2, "classifier.core3.wasm": core3 };
const memories = [];
const { classifier } = instantiate((name) => cores[name], {}, (module, imports) => {
  const instance = new WebAssembly.Instance(module, imports);
  for (const e of Object.values(instance.exports)) if (e instanceof WebAssembly.Memory) memories.push(e);
  return instance;
});
const memoryBytes = () => memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);

const PRECISIONS = ["fp32", "int16", "int8"];
// name -> how to create it at a precision (undefined: the model's own)
const MODELS = {
  imagenet: (precision) => classifier.embedded({ precision }),
  person: (precision) => classifier.Model.load(new Uint8Array(person), { precision }),
};
if (JSON.stringify(Object.keys(MODELS)) !== JSON.stringify(MODEL_NAMES)) {
  throw new Error(`worker.js serves ${Object.keys(MODELS)}, classify-http ${MODEL_NAMES}`);
}

// The model cache: one instance per (model, precision), created by the first request that needs it.
const cache = new Map();

class Answer {
  constructor(status, body) {
    this.status = status;
    this.body = body;
  }
  static error(status, kind, message) {
    return new Answer(status, { error: { status, kind, message } });
  }
}

// The classifier's typed errors, as classify-http maps them: the caller's fault is 4xx, a broken
// embedded model 500.
const ERRORS = {
  "invalid-image": [400, "invalid-image"],
  "invalid-input": [400, "invalid-input"],
  "unsupported-model": [400, "unsupported"],
  "too-large": [413, "too-large"],
  "malformed-model": [500, "malformed-model"],
};

function classifierError(e) {
  const payload = e?.payload;
  const known = payload && ERRORS[payload.tag];
  if (!known) throw e;
  return Answer.error(known[0], known[1], String(payload.val));
}

function load(name, precision) {
  const key = `${name}/${precision ?? ""}`;
  if (!cache.has(key)) cache.set(key, MODELS[name](precision));
  return cache.get(key);
}

// As `route::parse_query`: anything unknown is refused, so a typo is not silently ignored.
function parseQuery(search) {
  const q = { top: DEFAULT_TOP, precision: undefined, model: "imagenet" };
  for (const pair of search.replace(/^\?/, "").split("&").filter((p) => p !== "")) {
    const i = pair.indexOf("=");
    const [key, value] = i < 0 ? [pair, ""] : [pair.slice(0, i), pair.slice(i + 1)];
    if (key === "top") {
      const n = /^\+?[0-9]+$/.test(value) ? Number(value) : NaN;
      if (!(n > 0 && n <= 0xffffffff)) throw `top must be a positive whole number, not ${JSON.stringify(value)}`;
      q.top = n;
    } else if (key === "precision") {
      if (!PRECISIONS.includes(value)) throw `precision must be fp32, int16 or int8, not ${JSON.stringify(value)}`;
      q.precision = value;
    } else if (key === "model") {
      if (!MODEL_NAMES.includes(value)) throw `model must be one of ${MODEL_NAMES.join(", ")}, not ${JSON.stringify(value)}`;
      q.model = value;
    } else {
      throw `unknown query parameter ${JSON.stringify(key)} (known: top, precision, model)`;
    }
  }
  return q;
}

// The body, up to MAX_BODY_BYTES: a declared length over it is refused before reading; an
// undeclared one is read until it passes the limit.
async function readBody(request) {
  const tooLarge = () => Answer.error(413, "too-large", `the image must be at most ${MAX_BODY_BYTES} bytes`);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) return tooLarge();
  const chunks = [];
  let seen = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      seen += value.length;
      if (seen > MAX_BODY_BYTES) {
        await reader.cancel();
        return tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(seen);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

function info() {
  const i = load("imagenet", undefined).info();
  return new Answer(200, {
    model: i.name,
    precision: i.precision,
    input_shape: Array.from(i.input.shape),
    classes: i.classes,
    operators: i.operators,
    macs: Number(i.macs),
    parameter_bytes: Number(i.parameterBytes),
    max_body_bytes: MAX_BODY_BYTES,
    endpoints: ENDPOINTS,
    models: MODEL_NAMES,
  });
}

function classify(image, q) {
  const model = load(q.model, q.precision);
  const predictions = model.classify(image, q.top);
  const i = model.info();
  return new Answer(200, {
    model: i.name,
    precision: i.precision,
    predictions: predictions.map((p) => ({ index: p.index, label: p.label ?? null, score: p.score })),
    inference_ms: null,
  });
}

async function handle(request) {
  const url = new URL(request.url);
  const path = url.pathname;
  const method = request.method;
  if (path === "/") {
    return method === "GET" || method === "HEAD" ? info() : Answer.error(405, "method-not-allowed", `${path} answers GET only`);
  }
  if (path !== "/classify") return Answer.error(404, "not-found", `no such path ${path}; try GET / or POST /classify`);
  if (method !== "POST") return Answer.error(405, "method-not-allowed", `${path} answers POST only`);
  let q;
  try {
    q = parseQuery(url.search);
  } catch (message) {
    return Answer.error(400, "bad-query", String(message));
  }
  const body = await readBody(request);
  if (body instanceof Answer) return body;
  return classify(body, q);
}

export default {
  async fetch(request) {
    let answer;
    try {
      answer = await handle(request);
    } catch (e) {
      answer = e?.payload ? classifierError(e) : Answer.error(500, "internal", String(e));
    }
    return new Response(JSON.stringify(answer.body), {
      status: answer.status,
      headers: { "content-type": "application/json", "x-wasm-memory-bytes": String(memoryBytes()) },
    });
  },
};
