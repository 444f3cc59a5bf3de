// Drives the jco-transpiled classifier in Node (V8) for host-tests' `JcoRuntime`.
//
// Usage: node driver.mjs <dir with classifier.js from `jco transpile`>
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout, in order.
// Bytes travel as base64 (tensors as their raw little-endian element bytes), so the Rust side sees
// exactly the bits the component returned.
//   {"op":"load","tflite":b64,"options":{...}}      -> {"ok":handle}
//   {"op":"embedded","options":{...}}               -> {"ok":handle}
//   {"op":"info","model":h}                          -> {"ok":modelInfo}
//   {"op":"classify","model":h,"image":b64,"topK":n} -> {"ok":[{index,label,score}]}
//   {"op":"infer","model":h,"input":tensor}          -> {"ok":tensor}   tensor = {shape,tag,data:b64}
//   {"op":"drop","model":h}                          -> {"ok":null}
//   {"op":"quantize","tflite":b64,"target":p,"calibration":{images:[b64],mean,std}} -> {"ok":b64}
// A WIT `error` comes back as {"err":{"tag":..,"val":..}}; anything else the engine throws (a trap,
// a bug here) as {"fatal":message}.

import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node driver.mjs <transpiled dir>\n');
  process.exit(2);
}
const { classifier, quantizer } = await import(pathToFileURL(join(dir, 'classifier.js')).href);

const ARRAYS = { float32: Float32Array, uint8: Uint8Array, int8: Int8Array, int16: Int16Array };
const models = new Map();
let nextHandle = 1;

function bytes(b64) {
  const buf = Buffer.from(b64, 'base64');
  // A fresh, aligned ArrayBuffer: typed views need element alignment.
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
}

function toTensor(t) {
  const raw = bytes(t.data);
  const Array = ARRAYS[t.tag];
  if (!Array) throw new Error(`unknown element type ${t.tag}`);
  return { shape: Uint32Array.from(t.shape), data: { tag: t.tag, val: new Array(raw.buffer) } };
}

function fromTensor(t) {
  const v = t.data.val;
  return {
    shape: Array.from(t.shape),
    tag: t.data.tag,
    data: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'),
  };
}

function options(o) {
  const out = {};
  for (const k of ['precision', 'labels', 'mean', 'std']) if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
  return out;
}

function info(i) {
  const tensorInfo = (t) => ({
    shape: Array.from(t.shape),
    element: t.element,
    quantization: t.quantization ? { scale: t.quantization.scale, zeroPoint: t.quantization.zeroPoint } : null,
  });
  return {
    name: i.name,
    description: i.description ?? null,
    version: i.version ?? null,
    precision: i.precision,
    input: tensorInfo(i.input),
    output: tensorInfo(i.output),
    classes: i.classes,
    operators: i.operators,
    macs: i.macs.toString(),
    parameterBytes: i.parameterBytes.toString(),
  };
}

function model(h) {
  const m = models.get(h);
  if (!m) throw new Error(`no model ${h}`);
  return m;
}

function keep(m) {
  const h = nextHandle++;
  models.set(h, m);
  return h;
}

function handle(req) {
  switch (req.op) {
    case 'load':
      return keep(classifier.Model.load(bytes(req.tflite), options(req.options)));
    case 'embedded':
      return keep(classifier.embedded(options(req.options)));
    case 'info':
      return info(model(req.model).info());
    case 'classify':
      return model(req.model)
        .classify(bytes(req.image), req.topK)
        .map((p) => ({ index: p.index, label: p.label ?? null, score: p.score }));
    case 'infer':
      return fromTensor(model(req.model).infer(toTensor(req.input)));
    case 'quantize': {
      const c = req.calibration;
      const calibration = { images: c.images.map(bytes), mean: c.mean ?? undefined, std: c.std ?? undefined };
      const out = quantizer.quantize(bytes(req.tflite), req.target, calibration);
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('base64');
    }
    case 'drop': {
      const m = models.get(req.model);
      models.delete(req.model);
      if (m) m[Symbol.dispose]();
      return null;
    }
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let response;
  try {
    response = { ok: handle(JSON.parse(line)) };
  } catch (e) {
    // jco throws a ComponentError whose payload is the WIT `error` variant.
    if (e && e.payload && typeof e.payload.tag === 'string') response = { err: { tag: e.payload.tag, val: e.payload.val } };
    else response = { fatal: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(response) + '\n');
}
