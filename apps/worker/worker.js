// The Cloudflare Worker: classify-http's HTTP API around the classifier component, transpiled by jco
// (`cargo xtask worker` writes it, this file, and the rest of dist/worker/). The component imports
// nothing, so no WASI shim: its core modules are imported statically (Workers refuse to compile wasm
// bytes at run time) and instantiated once per isolate.
//
// The contract is classify-http's Rust (apps/http/src/contract.rs), not this file: `contract.js`,
// written by `cargo xtask worker` from it, holds the routes and their methods, the query keys and
// values, the messages, the error map, the body limit and the JSON shapes, and this file only looks
// them up and does the I/O. The host-tests `worker` suite runs classify-http's HTTP cases against both.
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
import {
  MAX_BODY_BYTES,
  HEADERS,
  MODEL_NAMES,
  DECLARED,
  ROUTES,
  QUERY,
  PROBLEMS,
  ERRORS,
  INFO_SHAPE,
  CLASSIFY_SHAPE,
  PREDICTION_SHAPE,
  ERROR_SHAPE,
} from "./contract.js";

const cores = { "classifier.core.wasm": core, "classifier.core2.wasm": core2, "classifier.core3.wasm": core3 };
const memories = [];
const { classifier } = instantiate((name) => cores[name], {}, (module, imports) => {
  const instance = new WebAssembly.Instance(module, imports);
  for (const e of Object.values(instance.exports)) if (e instanceof WebAssembly.Memory) memories.push(e);
  return instance;
});
const memoryBytes = () => memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);

// name -> how to create it at a precision (undefined: the model's own), with the labels the
// contract declares for it (DECLARED: the person detector's; its name, `info` below gives).
const labels = (name) => DECLARED[name]?.labels.join("\n");
const MODELS = {
  imagenet: (precision) => classifier.embedded({ precision, labels: labels("imagenet") }),
  person: (precision) => classifier.Model.load(new Uint8Array(person), { precision, labels: labels("person") }),
};
if (JSON.stringify(Object.keys(MODELS)) !== JSON.stringify(MODEL_NAMES)) {
  throw new Error(`worker.js serves ${Object.keys(MODELS)}, classify-http ${MODEL_NAMES}`);
}

// A model's info as the answers give it: named as the contract declares it, if it does.
function info(name, model) {
  const declared = DECLARED[name];
  return declared ? { ...model.info(), name: declared.name } : model.info();
}

// The model cache: one instance per (model, precision), created by the first request that needs it.
const cache = new Map();

function load(name, precision) {
  const key = `${name}/${precision ?? ""}`;
  if (!cache.has(key)) cache.set(key, MODELS[name](precision ?? undefined));
  return cache.get(key);
}

const own = (table, key) => (Object.hasOwn(table, key) ? table[key] : undefined);

// A contract shape with its "$a.b" placeholders replaced by values.a.b (jco's u64 BigInts and typed
// arrays as JSON numbers and arrays, an absent option as null).
function fill(shape, values) {
  if (typeof shape === "string" && shape.startsWith("$")) {
    const v = shape.slice(1).split(".").reduce((at, key) => at?.[key], values);
    if (typeof v === "bigint") return Number(v);
    if (ArrayBuffer.isView(v)) return Array.from(v);
    return v ?? null;
  }
  if (Array.isArray(shape)) return shape.map((s) => fill(s, values));
  if (shape !== null && typeof shape === "object") {
    return Object.fromEntries(Object.entries(shape).map(([k, s]) => [k, fill(s, values)]));
  }
  return shape;
}

class Answer {
  constructor(status, body) {
    this.status = status;
    this.body = body;
  }
  static error(status, kind, message) {
    return new Answer(status, fill(ERROR_SHAPE, { status, kind, message }));
  }
  // One of the contract's PROBLEMS, its message template's {name}s filled from args.
  static problem({ status, kind, message }, args = {}) {
    return Answer.error(status, kind, message.replace(/\{(\w+)\}/g, (m, name) => args[name] ?? m));
  }
}

// A classifier error (jco throws the WIT error variant as `payload`) as the contract answers it.
function classifierError(e) {
  const payload = e?.payload;
  const known = payload && own(ERRORS, payload.tag);
  if (!known) throw e;
  return Answer.error(known.status, known.kind, String(payload.val));
}

// As the contract's `parse_query`: QUERY's keys only, each value one of its `values` or, without
// them, a positive whole number (u32); anything else is the key's problem, thrown.
function parseQuery(search) {
  const q = Object.fromEntries(Object.entries(QUERY).map(([key, p]) => [key, p.default]));
  for (const pair of search.replace(/^\?/, "").split("&").filter((p) => p !== "")) {
    const i = pair.indexOf("=");
    const [key, value] = i < 0 ? [pair, ""] : [pair.slice(0, i), pair.slice(i + 1)];
    const param = own(QUERY, key);
    if (!param) throw Answer.problem(PROBLEMS.unknownParam, { key: JSON.stringify(key) });
    const n = /^\+?[0-9]+$/.test(value) ? Number(value) : NaN;
    const ok = param.values ? param.values.includes(value) : n > 0 && n <= 0xffffffff;
    if (!ok) throw Answer.problem(param.problem, { value: JSON.stringify(value) });
    q[key] = param.values ? value : n;
  }
  return q;
}

// The body, up to MAX_BODY_BYTES: a declared length over it is refused before reading; an
// undeclared one is read until it passes the limit (the contract's `read_body`).
async function readBody(request) {
  const tooLarge = () => Answer.problem(PROBLEMS.bodyTooLarge);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
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
        throw tooLarge();
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

// The answers, by the name ROUTES gives them.
const ANSWERS = {
  info() {
    const name = QUERY.model.default;
    const shown = info(name, load(name, QUERY.precision.default));
    const modelNames = Object.fromEntries(
      MODEL_NAMES.map((m) => [m, DECLARED[m]?.name ?? (m === name ? shown.name : null)]),
    );
    return new Answer(200, fill(INFO_SHAPE, { info: shown, modelNames }));
  },
  async classify(request, url) {
    const q = parseQuery(url.search);
    const image = await readBody(request);
    const model = load(q.model, q.precision);
    const predictions = model.classify(image, q.top).map((p) => fill(PREDICTION_SHAPE, p));
    return new Answer(200, fill(CLASSIFY_SHAPE, { info: info(q.model, model), predictions, inferenceMs: null }));
  },
};

async function handle(request) {
  const url = new URL(request.url);
  const path = url.pathname;
  const route = own(ROUTES, path);
  if (!route) throw Answer.problem(PROBLEMS.notFound, { path });
  if (!route.methods.includes(request.method)) {
    throw Answer.problem(PROBLEMS.methodNotAllowed, { path, allowed: route.allowed });
  }
  return ANSWERS[route.answer](request, url);
}

export default {
  async fetch(request) {
    let answer;
    try {
      answer = await handle(request);
    } catch (e) {
      // The contract's problems are thrown as answers; anything else unexpected is a 500.
      if (e instanceof Answer) answer = e;
      else answer = e?.payload ? classifierError(e) : Answer.error(500, "internal", String(e));
    }
    return new Response(JSON.stringify(answer.body), {
      status: answer.status,
      headers: { ...HEADERS, "x-wasm-memory-bytes": String(memoryBytes()) },
    });
  },
};
