// Issue 16's browser benchmark: tfjs-tflite, LiteRT.js and our jco-transpiled classifier in one
// headless Chromium page (Debian's `chromium`, driven by playwright-core), one thread, the same model
// bytes and the same input tensor, interleaved rounds. See README.md.
//
// Usage: node run.mjs --jco DIR [--rounds 3] [--runs 50] [--warmup 5] [--json FILE]
//                     [--models DIR] [--golden DIR] [--only ID[,ID...]] [--chromium PATH]
//   --jco     the output of `jco transpile --name classifier dist/classifier-simd.wasm`
//   --models  the .tflite files (default: $EDGE_CLASSIFY_MODELS, else ../shared/models beside the checkout)
//   --golden  golden/ (manifest.json and the reference inputs and outputs)
// Prints a table on stdout, one JSON line per (model, runtime) into --json; progress on stderr.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');

// The models of issue 16, by golden id, at the precision ours runs them.
const MODELS = [
  { id: 'mobilenet_v2_1.0_224_quant', precision: 'int8' },
  { id: 'mobilenet_v2_1.0_224_ptq_int8', precision: 'int8' },
  { id: 'dog_breeds_mobilenet_v2_160_float', precision: 'fp32' },
  { id: 'person_detect', precision: 'int8' },
];
const RUNTIMES = ['tfjs-tflite', 'litert.js', 'ours'];
const BASELINE = 'tfjs-tflite';
// What the page serves from node_modules (nothing else is reachable there).
const PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-tflite',
  '@litertjs/core',
  '@litertjs/wasm-utils',
];
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Nothing but loopback resolves, so nothing but loopback is reached.
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];

function parseArgs(argv) {
  const o = {
    rounds: 3,
    runs: 50,
    warmup: 5,
    json: null,
    jco: null,
    models: process.env.EDGE_CLASSIFY_MODELS ?? resolve(REPO, '..', 'shared', 'models'),
    golden: join(REPO, 'golden'),
    only: null,
    chromium: '/usr/bin/chromium',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o) || !argv[i].startsWith('--') || i + 1 >= argv.length) usage(`bad argument ${argv[i]}`);
    const value = argv[++i];
    o[key] = ['rounds', 'runs', 'warmup'].includes(key) ? Number(value) : value;
  }
  if (!o.jco) usage('--jco DIR is required');
  for (const k of ['rounds', 'runs']) if (!(Number.isInteger(o[k]) && o[k] >= 1)) usage(`--${k} must be >= 1`);
  if (!(Number.isInteger(o.warmup) && o.warmup >= 0)) usage('--warmup must be >= 0');
  o.only = o.only ? o.only.split(',') : null;
  return o;
}

function usage(why) {
  process.stderr.write(`run.mjs: ${why}\nusage: node run.mjs --jco DIR [--rounds N] [--runs N] [--warmup N] [--json FILE] [--models DIR] [--golden DIR] [--only ID,..] [--chromium PATH]\n`);
  process.exit(2);
}

const log = (s) => process.stderr.write(`browser-bench: ${s}\n`);

/** Debian's chromium, installed through apt when missing (we may be root on a fresh machine). */
function ensureChromium(path) {
  if (existsSync(path)) return;
  if (path !== '/usr/bin/chromium') throw new Error(`${path} does not exist`);
  if (process.getuid?.() !== 0) throw new Error('/usr/bin/chromium is missing: install Debian\'s `chromium` (apt-get install chromium) or pass --chromium PATH');
  const apt = (...args) => {
    log(`/usr/bin/chromium is missing: running apt-get ${args.join(' ')}`);
    return spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  };
  if (!apt('install', '-y', 'chromium')) {
    // A fresh machine may have no package lists yet.
    if (!apt('update') || !apt('install', '-y', 'chromium')) throw new Error('apt-get install -y chromium failed');
  }
  if (!existsSync(path)) throw new Error(`apt-get installed chromium but ${path} is still missing`);
}

/** NumPy .npy v1/v2, little-endian, C order: { descr, shape, data: Uint8Array }. */
function readNpy(path) {
  const buf = readFileSync(path);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path}: Fortran order`);
  const data = new Uint8Array(buf.buffer.slice(buf.byteOffset + start + headerLen, buf.byteOffset + buf.length));
  return { descr, shape, data };
}

const NPY = { '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array], '<i2': ['int16', Int16Array], '<f4': ['float32', Float32Array] };

function typed(npy) {
  const [dtype, T] = NPY[npy.descr] ?? [];
  if (!T) throw new Error(`unsupported .npy dtype ${npy.descr}`);
  return { dtype, values: new T(npy.data.buffer, npy.data.byteOffset, npy.data.byteLength / T.BYTES_PER_ELEMENT) };
}

/** Each model's first golden case: the file TFLite's reference ran, its input and expected output. */
function cases(o) {
  const manifest = JSON.parse(readFileSync(join(o.golden, 'manifest.json'), 'utf8'));
  const out = [];
  for (const m of MODELS) {
    if (o.only && !o.only.includes(m.id)) continue;
    const entry = manifest.models.find((x) => x.id === m.id);
    if (!entry) throw new Error(`golden/manifest.json has no model ${m.id}`);
    const c = entry.cases[0];
    const input = readNpy(join(o.golden, c.input));
    const expected = typed(readNpy(join(o.golden, c.output)));
    // person_detect as shipped is rejected by full TFLite; every runtime gets the file the
    // reference ran (`reference_file`, the same model with the bias quantized_dimension fixed).
    const file = entry.reference_file ?? entry.file;
    out.push({
      ...m,
      file,
      modelPath: join(o.models, file),
      image: c.image,
      inputDtype: typed(input).dtype,
      inputShape: input.shape,
      input: input.data,
      expected,
      outputQuantized: entry.output.scale != null,
    });
  }
  if (out.length === 0) throw new Error(`--only ${o.only} matches none of ${MODELS.map((m) => m.id).join(', ')}`);
  return out;
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.map': 'application/json' };

/** Loopback-only static server: the page, the allowed packages, jco's output, models and inputs. */
function serve(o, list) {
  const roots = { page: join(HERE, 'page'), jco: resolve(o.jco) };
  for (const p of PACKAGES) roots[`nm/${p}`] = join(HERE, 'node_modules', p);
  const blobs = new Map();
  for (const c of list) {
    blobs.set(`/model/${c.id}`, () => readFileSync(c.modelPath));
    blobs.set(`/input/${c.id}`, () => c.input);
  }
  const served = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    served.push(path);
    if (process.env.BROWSER_BENCH_DEBUG) log(`GET ${path}`);
    const send = (status, body, type = 'text/plain') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      if (blobs.has(path)) return send(200, blobs.get(path)(), 'application/octet-stream');
      for (const [prefix, root] of Object.entries(roots)) {
        if (!path.startsWith(`/${prefix}/`)) continue;
        const file = normalize(join(root, path.slice(prefix.length + 2)));
        if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) break;
        return send(200, readFileSync(file), TYPES[extname(file)] ?? 'application/octet-stream');
      }
      if (path !== '/favicon.ico') log(`404 ${path}`);
      send(404, `not found: ${path}`);
    } catch (e) {
      send(500, String(e));
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, served, port: server.address().port })));
}

/** Jiffies from /proc/stat's `cpu` line (Linux), to tell how busy the machine was meanwhile. */
function cpuTicks() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

/** Cores busy on average between two cpuTicks(): ~1 is the page alone, more is something else running. */
function busyCores(a, b) {
  if (!a || !b || b.total === a.total) return null;
  return (1 - (b.idle - a.idle) / (b.total - a.total)) * cpus().length;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? null : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

function maxDiff(output, expected) {
  if (!output) return null;
  if (output.length !== expected.values.length) return `length ${output.length} != ${expected.values.length}`;
  let max = 0;
  for (let i = 0; i < output.length; i++) {
    const d = Math.abs(output[i] - expected.values[i]);
    if (!(d <= max)) max = d; // NaN sticks
  }
  return max;
}

function variants(features, served) {
  const pick = (re) => [...new Set(served.filter((p) => re.test(p)).map((p) => p.split('/').pop()))].join(', ') || '?';
  const tf = pick(/tflite_web_api_cc[a-z_]*\.wasm$/);
  const lrt = pick(/litert_wasm[a-z_]*\.wasm$/);
  const f = features['tfjs-tflite']?.features ?? {};
  const g = features['litert.js']?.features ?? {};
  return {
    'tfjs-tflite': `${tf} (simd ${f.simd}, multiThreading ${f.multiThreading})`,
    'litert.js': `${lrt} (relaxed SIMD ${g.relaxedSimd}, threads ${g.threads})`,
    ours: 'classifier-simd.wasm via jco (simd128)',
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  if (!existsSync(join(o.jco, 'classifier.js'))) throw new Error(`${o.jco}/classifier.js missing: run jco transpile first`);
  ensureChromium(o.chromium);
  const list = cases(o);
  const version = (p) => JSON.parse(readFileSync(join(HERE, 'node_modules', p, 'package.json'), 'utf8')).version;
  const { chromium } = await import('playwright-core');
  const { server, served, port } = await serve(o, list);
  const base = `http://127.0.0.1:${port}`;
  const profile = mkdtempSync(join(tmpdir(), 'edge-classify-chromium-'));
  let context;
  const rows = [];
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: o.chromium, headless: true, args: CHROMIUM_ARGS });
    const browserVersion = context.browser()?.version() ?? spawnSync(o.chromium, ['--version']).stdout.toString().trim();
    const blocked = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${base}/`)) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    const page = context.pages()[0] ?? (await context.newPage());
    // The peers log through console.error/warn (LiteRT's INFO lines too): each message once.
    const seen = new Set();
    page.on('console', (m) => {
      const text = `${m.type()}: ${m.text().split('\n')[0]}`;
      if ((m.type() === 'error' || m.type() === 'warning') && !seen.has(text)) {
        seen.add(text);
        log(`page ${text}`);
      }
    });
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    await page.goto(`${base}/page/index.html`);
    await page.waitForFunction(() => window.benchReady === true);
    const features = await page.evaluate(
      (urls) => window.bench.init(urls),
      { tfliteWasm: `${base}/nm/@tensorflow/tfjs-tflite/wasm/`, litertWasm: `${base}/nm/@litertjs/core/wasm/`, jco: `${base}/jco/` },
    );
    log(`${browserVersion}; crossOriginIsolated ${features.crossOriginIsolated}; ${JSON.stringify(features)}`);
    // Every runtime creates the smallest model once first, so no model's load_ms pays for a lazy
    // first-use path (tfjs-tflite fetches and compiles its wasm at the first model).
    const warm = [...list].sort((a, b) => statSync(a.modelPath).size - statSync(b.modelPath).size)[0];
    if (warm) {
      await page.evaluate(
        ([spec, names]) => window.bench.load(spec, names).then(() => window.bench.dispose()),
        [{ modelUrl: `/model/${warm.id}`, inputUrl: `/input/${warm.id}`, dtype: warm.inputDtype, shape: warm.inputShape, precision: warm.precision }, RUNTIMES],
      );
    }
    const variant = variants(features, served);
    const versions = {
      'tfjs-tflite': `tfjs-tflite ${version('@tensorflow/tfjs-tflite')} (chromium)`,
      'litert.js': `LiteRT.js ${version('@litertjs/core')} (chromium)`,
      ours: 'edge-classify simd128 (jco, chromium)',
    };

    for (const c of list) {
      const spec = { modelUrl: `/model/${c.id}`, inputUrl: `/input/${c.id}`, dtype: c.inputDtype, shape: c.inputShape, precision: c.precision };
      const loaded = await page.evaluate(([s, names]) => window.bench.load(s, names), [spec, RUNTIMES]);
      const live = RUNTIMES.filter((r) => !loaded[r].error);
      for (const r of RUNTIMES) if (loaded[r].error) log(`${c.id}: ${r} refused: ${loaded[r].error}`);
      const ticks = cpuTicks();
      const perRound = Object.fromEntries(RUNTIMES.map((r) => [r, []]));
      const all = Object.fromEntries(RUNTIMES.map((r) => [r, []]));
      const last = {};
      for (let round = 0; round < o.rounds; round++) {
        // Rotate the order every round, so no runtime always runs first (or right after another).
        const order = live.map((_, i) => live[(i + round) % live.length]);
        for (const r of order) {
          const t = await page.evaluate(([name, w, n]) => window.bench.time(name, w, n), [r, o.warmup, o.runs]);
          perRound[r].push(median(t.times));
          all[r].push(...t.times);
          last[r] = t;
        }
        log(`${c.id} round ${round + 1}/${o.rounds}: ${order.map((r) => `${r} ${perRound[r].at(-1).toFixed(2)} ms`).join(', ')}`);
      }
      const busy = busyCores(ticks, cpuTicks());
      if (busy != null) log(`${c.id}: ${busy.toFixed(2)} of ${cpus().length} cores busy on average while timing (the page alone: ~1)`);
      await page.evaluate(() => window.bench.dispose());
      for (const r of RUNTIMES) {
        const row = {
          model: c.id,
          precision: c.precision,
          runtime: versions[r],
          runtime_id: r,
          file: c.file,
          case: c.image,
          input_dtype: c.inputDtype,
          variant: variant[r],
          rounds: o.rounds,
          runs: o.runs,
          warmup: o.warmup,
          busy_cores: busy,
        };
        if (loaded[r].error) {
          rows.push({ ...row, error: loaded[r].error });
          continue;
        }
        const baseline = perRound[BASELINE];
        const ratios = baseline.length === perRound[r].length ? perRound[r].map((m, i) => m / baseline[i]) : [];
        const diff = maxDiff(last[r].output, c.expected);
        Object.assign(row, {
          median_ms: median(perRound[r]),
          min_ms: Math.min(...all[r]),
          load_ms: loaded[r].load_ms,
          ratio_vs_tfjs_tflite: ratios.length ? median(ratios) : null,
          round_medians_ms: perRound[r],
          round_ratios: ratios,
          max_diff: diff,
          diff_unit: c.outputQuantized ? 'LSB' : 'abs',
          identical: diff === 0,
          stable: last[r].stable,
        });
        if (loaded[r].ops) row.tflite_nodes = loaded[r].ops;
        rows.push(row);
      }
    }
    if (blocked.length) log(`blocked ${blocked.length} non-loopback request(s): ${[...new Set(blocked)].join(' ')}`);
    const report = table(rows, { browserVersion, o, seconds: (Date.now() - started) / 1000 });
    process.stdout.write(report);
    if (o.json) writeFileSync(o.json, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  } finally {
    await context?.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

function table(rows, { browserVersion, o, seconds }) {
  const lines = [];
  lines.push(`browser: ${browserVersion}, one thread; ${o.rounds} rounds x (${o.warmup} warm-up + ${o.runs} timed) calls per runtime, order rotated per round; ${seconds.toFixed(0)} s`);
  lines.push(`${'model / precision / runtime'.padEnd(52)} ${'median'.padStart(9)} ${'min'.padStart(8)} ${'load'.padStart(9)} ${'vs tfjs'.padStart(7)}  vs TFLite reference`);
  let model = null;
  for (const r of rows) {
    if (r.model !== model) {
      model = r.model;
      const busy = r.busy_cores == null ? '' : `; ${r.busy_cores.toFixed(2)} cores busy`;
      lines.push(`${r.model} ${r.precision} (${r.file}, ${r.input_dtype} input${busy})`);
    }
    const name = `    ${r.runtime}`.padEnd(52);
    if (r.error) {
      lines.push(`${name} refused: ${r.error.split('\n')[0].slice(0, 110)}`);
      continue;
    }
    const ms = (v) => (v == null ? '' : `${v.toFixed(2)} ms`);
    const diff = r.identical ? 'identical' : typeof r.max_diff === 'number' ? `max |diff| ${r.diff_unit === 'LSB' ? r.max_diff : r.max_diff.toExponential(2)} ${r.diff_unit}` : String(r.max_diff);
    lines.push(`${name} ${ms(r.median_ms).padStart(9)} ${ms(r.min_ms).padStart(8)} ${ms(r.load_ms).padStart(9)} ${(r.ratio_vs_tfjs_tflite?.toFixed(2) ?? '').padStart(7)}  ${diff}${r.stable ? '' : ' (output changed between calls)'}`);
  }
  lines.push('variants:');
  for (const r of rows.filter((r, i) => rows.findIndex((x) => x.runtime_id === r.runtime_id) === i)) lines.push(`    ${r.runtime_id}: ${r.variant}`);
  lines.push('median: of the round medians; vs tfjs: median over rounds of (round median / tfjs-tflite\'s round median), < 1 is faster than tfjs-tflite; load: model creation from bytes in memory; cores busy: the machine\'s average while timing that model (the page alone keeps ~1 busy; more means something else ran and the times are suspect).');
  return lines.join('\n') + '\n';
}

main().catch((e) => {
  process.stderr.write(`browser-bench: error: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
