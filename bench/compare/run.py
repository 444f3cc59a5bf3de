#!/usr/bin/env python3
"""Side-by-side baselines for `cargo xtask bench native` (issue 6): TFLite native, ONNX Runtime native and
ONNX Runtime Web (wasm, in Node) on the golden models, 1 thread each.

    python3 bench/compare/run.py --work DIR --runs N [--models ID ...] [--no-web] [--reexport]

Makes (or reuses) a venv at DIR/venv with bench/compare/requirements.txt and re-runs itself inside it
(like golden/generate.sh does for its venv). Then, per model of golden/manifest.json:

  * exports ONNX with tf2onnx: DIR/onnx/<id>.fp32.onnx (float network; quantized models dequantized with
    --dequantize) and DIR/onnx/<id>.qdq.onnx (the quantized graph as QuantizeLinear/DequantizeLinear), and
    checks each against TFLite on the golden input (max abs diff, top-1);
  * times TFLite (ai-edge-litert) with XNNPACK, the builtin optimized kernels and the reference kernels;
  * times ONNX Runtime (CPU EP) on each export;
  * runs ort-web/bench.mjs (onnxruntime-web, wasm backend) on the same exports and passes its lines on.

Every measurement is 1 warm-up + N runs, median, on the model's first golden photo case (the input
bench/'s `bench` uses), 1 thread, each in a fresh child process (so its peak RSS is its own).
stdout: one JSON object per line; progress: stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GOLDEN = REPO / "golden"
SHARED = Path(os.environ.get("EDGE_CLASSIFY_SHARED", REPO.parent / "shared")).resolve()
MODELS = SHARED / "models"
REQUIREMENTS = HERE / "requirements.txt"
ORT_WEB = HERE / "ort-web"
VENV_MARK = "EDGE_CLASSIFY_COMPARE_VENV"

TFLITE_RUNTIMES = [
    # (runtime label, OpResolverType name)
    ("tflite xnnpack (native)", "AUTO"),
    ("tflite builtin (native)", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"),
    ("tflite reference (native)", "BUILTIN_REF"),
]


def log(*a) -> None:
    print("[compare]", *a, file=sys.stderr, flush=True)


KEYS = ["runtime", "model", "precision", "load_ms", "median_ms", "runs", "peak_mem_bytes", "top1_matches", "error"]


def emit(line: dict) -> None:
    """One result line: the common keys first, in the documented order, then the extras."""
    ordered = {k: line.get(k) for k in KEYS}
    ordered.update((k, v) for k, v in line.items() if k not in ordered)
    print(json.dumps(ordered), flush=True)


# ---------------------------------------------------------------- venv


def ensure_venv(work: Path) -> None:
    """Re-exec inside DIR/venv, creating it and installing the pinned requirements when needed."""
    vdir = (work / "venv").resolve()
    py = vdir / "bin" / "python"
    if os.environ.get(VENV_MARK) == str(vdir) and Path(sys.prefix).resolve() == vdir:
        return
    stamp = vdir / ".requirements.sha256"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not py.exists():
        log(f"creating venv {vdir}")
        venv.EnvBuilder(with_pip=True).create(vdir)
    if not stamp.exists() or stamp.read_text().strip() != want:
        log(f"installing {REQUIREMENTS.name} into {vdir} (first run: a few minutes, ~1.7 GB: tensorflow-cpu)")
        t = time.monotonic()
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            check=True,
            stdout=sys.stderr,
        )
        stamp.write_text(want + "\n")
        log(f"venv ready in {time.monotonic() - t:.0f} s")
    env = dict(os.environ, **{VENV_MARK: str(vdir)})
    os.execve(str(py), [str(py), str(Path(__file__).resolve())] + sys.argv[1:], env)


# ---------------------------------------------------------------- golden data


def precision_of(dtype: str) -> str:
    return {"uint8": "int8", "int8": "int8", "int16": "int16", "float32": "fp32"}[dtype]


def load_models(selected: list[str] | None) -> list[dict]:
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    models = manifest["models"]
    if selected:
        known = {m["id"] for m in models}
        unknown = [s for s in selected if s not in known]
        if unknown:
            raise SystemExit(f"unknown model id(s) {unknown}; known: {sorted(known)}")
        models = [m for m in models if m["id"] in selected]
    for m in models:
        # The first photo case, as bench/'s `bench` (Golden::photo_cases().next()).
        m["case"] = next(c for c in m["cases"] if c["kind"] == "photo")
    return models


def golden_arrays(model: dict):
    import numpy as np

    case = model["case"]
    x = np.load(GOLDEN / case["input"])
    out = model["output"]
    y = np.load(GOLDEN / case["output"]).astype(np.float64).reshape(-1)
    if out["scale"] is not None:
        y = out["scale"] * (y - out["zero_point"])
    fp32 = np.load(GOLDEN / case["fp32_output"]).astype(np.float64).reshape(-1) if case.get("fp32_output") else y
    return x, y, fp32


def onnx_feed(model: dict, x, elem: str, shape: list):
    """The golden input as the ONNX graph wants it: same tensor if the dtype matches, dequantized
    (float32(q - zp) * float32(scale), as the golden fp32 references do) if the graph takes floats;
    NCHW if the graph's input is laid out that way."""
    import numpy as np

    inp = model["input"]
    want = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
            "tensor(int16)": np.int16}.get(elem)
    if want is None:
        raise ValueError(f"ONNX input type {elem} not handled")
    if x.dtype != want:
        if want != np.float32 or inp["scale"] is None:
            raise ValueError(f"golden input is {x.dtype}, ONNX wants {elem}")
        x = (x.astype(np.float32) - np.float32(inp["zero_point"])) * np.float32(inp["scale"])
    dims = [d if isinstance(d, int) else -1 for d in shape]
    if len(dims) == 4 and list(x.shape) != dims and dims[1] == x.shape[3] and dims[2:] == list(x.shape[1:3]):
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


# ---------------------------------------------------------------- child measurements


def rss_note() -> tuple[int | None, str]:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None, "no /proc"
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    return int(fields["VmHWM"].split()[0]) * 1024, "peak_mem_bytes: peak RSS (VmHWM) of the child process, Python included"


def median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2]


def time_runs(fn, runs: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return median(ts) * 1e3


def child_tflite(job: dict) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model = job["model"]
    x, y, _ = golden_arrays(model)
    t = time.perf_counter()
    interp = Interpreter(
        model_path=str(MODELS / model["reference_file"]),
        num_threads=1,
        experimental_op_resolver_type=getattr(OpResolverType, job["resolver"]),
    )
    interp.allocate_tensors()
    load_ms = (time.perf_counter() - t) * 1e3
    i = interp.get_input_details()[0]["index"]
    o = interp.get_output_details()[0]["index"]

    def infer():
        interp.set_tensor(i, x)
        interp.invoke()

    med = time_runs(infer, job["runs"])
    got = interp.get_tensor(o).astype(np.float64).reshape(-1)
    out = model["output"]
    if out["scale"] is not None:
        got = out["scale"] * (got - out["zero_point"])
    mem, note = rss_note()
    return {
        "load_ms": round(load_ms, 3),
        "median_ms": round(med, 3),
        "peak_mem_bytes": mem,
        "top1_matches": bool(int(np.argmax(got)) == int(np.argmax(y))),
        "max_abs_diff": float(np.abs(got - y).max()),
        "note": note + "; max_abs_diff vs the golden BUILTIN_REF output (dequantized)",
    }


def child_ort(job: dict) -> dict:
    import numpy as np
    import onnxruntime as ort

    model = job["model"]
    x, y, fp32 = golden_arrays(model)
    ref = fp32 if job["variant"] == "fp32" else y
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t = time.perf_counter()
    sess = ort.InferenceSession(job["onnx"], opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t) * 1e3
    inp = sess.get_inputs()[0]
    feed = {inp.name: onnx_feed(model, x, inp.type, inp.shape)}
    med = time_runs(lambda: sess.run(None, feed), job["runs"])
    raw = np.asarray(sess.run(None, feed)[0])
    got = raw.astype(np.float64).reshape(-1)
    out = model["output"]
    if raw.dtype.kind in "iu":
        # tf2onnx keeps the TFLite output's integer type (a final QuantizeLinear), even with --dequantize.
        if out["scale"] is None:
            raise ValueError(f"ONNX output is {raw.dtype} but the TFLite output is float")
        got = out["scale"] * (got - out["zero_point"])
    mem, note = rss_note()
    if job.get("optimized_path"):
        # The graph ORT optimized to (which kernels run), from a second, untimed session made after the
        # memory reading: writing it out would otherwise count in load_ms.
        opts.optimized_model_filepath = job["optimized_path"]
        ort.InferenceSession(job["onnx"], opts, providers=["CPUExecutionProvider"])
    return {
        "load_ms": round(load_ms, 3),
        "median_ms": round(med, 3),
        "peak_mem_bytes": mem,
        "top1_matches": bool(int(np.argmax(got)) == int(np.argmax(ref))),
        "max_abs_diff": float(np.abs(got - ref).max()),
        "note": note + "; max_abs_diff vs TFLite "
        + ("fp32 reference of the dequantized network" if job["variant"] == "fp32" else "BUILTIN_REF output"),
    }


def run_child(job: dict) -> dict:
    """Run one measurement in a fresh process; returns its result or {'error': ...}."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = [l for l in proc.stderr.strip().splitlines() if l.strip()][-1:] or [f"exit {proc.returncode}"]
        return {"error": tail[0][:500]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main() -> None:
    job = json.loads(sys.stdin.read())
    result = child_tflite(job) if job["kind"] == "tflite" else child_ort(job)
    print(json.dumps(result))


# ---------------------------------------------------------------- export


def export(model: dict, variant: str, out: Path, reexport: bool) -> str | None:
    """tf2onnx on the TFLite file the reference runs. Returns an error string or None."""
    if out.exists() and not reexport:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(MODELS / model["reference_file"]),
           "--output", str(tmp), "--opset", "17"]
    if variant == "fp32" and model["input"]["dtype"] != "float32":
        cmd.append("--dequantize")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not tmp.exists():
        errs = [l for l in proc.stderr.splitlines() if "Error" in l or "ERROR" in l] or proc.stderr.splitlines()[-1:]
        return f"tf2onnx failed: {(errs[-1] if errs else 'exit ' + str(proc.returncode))[:400]}"
    if model["input"]["dtype"] == "int16":
        try:
            note = retarget_int16(tmp)
        except Exception as e:  # noqa: BLE001  (reported as the row's error)
            return f"16x8 export fix-up failed: {e}"
        log(f"{out.name}: {note}")
    tmp.replace(out)
    log(f"exported {out.name} in {time.monotonic() - t:.0f} s")
    return None


def retarget_int16(path: Path) -> str:
    """Make tf2onnx's 16x8 export loadable. tf2onnx (max opset 18) writes int16 QuantizeLinear /
    DequantizeLinear, which standard ONNX allows only from opset 21, and int64 conv biases under
    DequantizeLinear, which no opset allows. ONNX Runtime's com.microsoft QuantizeLinear/DequantizeLinear
    take int16, so the int16 ones move to that domain; the int64 bias DequantizeLinear nodes are folded into
    float32 constants (scale * (b - zero_point), per output channel), which is what they compute."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    init = {i.name: i for i in g.initializer}
    moved = folded = 0
    keep = []
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.domain in ("", "ai.onnx"):
            zp = init.get(n.input[2]) if len(n.input) > 2 else None
            x = init.get(n.input[0])
            if n.op_type == "DequantizeLinear" and x is not None and x.data_type == onnx.TensorProto.INT64:
                q = numpy_helper.to_array(x).astype(np.float64)
                scale = numpy_helper.to_array(init[n.input[1]]).astype(np.float64)
                zero = numpy_helper.to_array(zp).astype(np.float64) if zp is not None else np.zeros_like(scale)
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                if scale.ndim == 1 and q.ndim > 0:
                    shape = [1] * q.ndim
                    shape[axis] = -1
                    scale, zero = scale.reshape(shape), zero.reshape(shape)
                g.initializer.append(numpy_helper.from_array(((q - zero) * scale).astype(np.float32), n.output[0]))
                folded += 1
                continue
            if zp is not None and zp.data_type in (onnx.TensorProto.INT16, onnx.TensorProto.UINT16):
                n.domain = "com.microsoft"
                moved += 1
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    # Drop what only the folded nodes used (their scales and zero points, the int64 biases).
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    unused = [i for i in g.initializer if i.name not in used]
    for i in unused:
        g.initializer.remove(i)
    if moved and not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(m, str(path))
    return f"16x8 fix-up: {moved} int16 Q/DQ -> com.microsoft, {folded} int64 bias DequantizeLinear folded to float32"


def ort_op_summary(path: str) -> str:
    """Op types of ORT's optimized graph: shows whether the QDQ graph ran on integer kernels."""
    import onnx
    from collections import Counter

    m = onnx.load(path, load_external_data=False)
    c = Counter(n.op_type for n in m.graph.node)
    keys = [k for k in c if k.startswith("QLinear") or k.endswith("Integer") or k in ("Conv", "FusedConv", "NhwcFusedConv", "QuantizeLinear", "DequantizeLinear", "Gemm", "MatMul")]
    return ", ".join(f"{k} {c[k]}" for k in sorted(keys))


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, type=Path, help="venv, ONNX exports and inputs go here")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--models", nargs="*", help="model ids (default: every golden model)")
    ap.add_argument("--no-web", action="store_true", help="skip the onnxruntime-web (Node) rows")
    ap.add_argument("--reexport", action="store_true", help="redo ONNX exports that already exist")
    if "--child" in sys.argv[1:]:
        child_main()
        return
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    ensure_venv(work)

    from importlib import metadata  # inside the venv from here on

    log("versions: " + ", ".join(f"{p} {metadata.version(p)}" for p in
                                 ("ai-edge-litert", "onnxruntime", "tf2onnx", "tensorflow-cpu", "onnx", "numpy")))
    models = load_models(args.models)
    web_jobs = []
    web_errors = []
    for model in models:
        mid = model["id"]
        prec = precision_of(model["input"]["dtype"])
        base = {"model": mid, "runs": args.runs, "peak_mem_bytes": None}

        for label, resolver in TFLITE_RUNTIMES:
            log(f"{mid}: {label}")
            r = run_child({"kind": "tflite", "model": model, "resolver": resolver, "runs": args.runs})
            emit({"runtime": label, **base, "precision": prec, "load_ms": None, "median_ms": None,
                  "top1_matches": None, "error": None, **r})

        variants = ["fp32"] if model["input"]["dtype"] == "float32" else ["fp32", "qdq"]
        for variant in variants:
            onnx_path = work / "onnx" / f"{mid}.{variant}.onnx"
            label = "onnxruntime cpu (native)"
            vprec = "fp32" if variant == "fp32" else prec
            log(f"{mid}: export {variant}")
            err = export(model, variant, onnx_path, args.reexport)
            if err:
                emit({"runtime": label, **base, "precision": vprec, "load_ms": None, "median_ms": None,
                      "top1_matches": None, "error": err, "onnx": onnx_path.name})
                web_errors.append({"model": mid, "precision": vprec, "onnx": onnx_path.name,
                                   "error": "no ONNX export: " + err})
                continue
            log(f"{mid}: {label} on {onnx_path.name}")
            opt = work / "onnx" / "ort-optimized" / onnx_path.name
            opt.parent.mkdir(parents=True, exist_ok=True)
            r = run_child({"kind": "ort", "model": model, "variant": variant, "onnx": str(onnx_path),
                           "runs": args.runs, "optimized_path": str(opt)})
            if "error" not in r and opt.exists():
                ops = ort_op_summary(str(opt))
                r["note"] = r["note"] + f"; ORT optimized graph: {ops}"
                if variant == "qdq" and not any(k in ops for k in ("QLinear", "Integer")):
                    vprec = "fp32"
                    r["note"] += "; no integer kernels: ORT computes this QDQ graph in float between Q/DQ"
                elif variant == "qdq":
                    floats = sum(int(n) for k, n in (e.rsplit(" ", 1) for e in ops.split(", ") if e)
                                 if k in ("Conv", "FusedConv", "NhwcFusedConv", "Gemm", "MatMul"))
                    if floats:
                        r["note"] += f"; mixed: {floats} Conv/Gemm stay float between DequantizeLinear/QuantizeLinear"
            emit({"runtime": label, **base, "precision": vprec, "load_ms": None, "median_ms": None,
                  "top1_matches": None, "error": None, "onnx": onnx_path.name, **r})
            # ORT Web gets the export even when native ORT refused it: its own error is reported then.
            try:
                web_jobs.append(web_job(model, variant, vprec, onnx_path, work))
            except Exception as e:  # noqa: BLE001
                web_errors.append({"model": mid, "precision": vprec, "onnx": onnx_path.name,
                                   "error": f"cannot prepare the input for this export: {e}"})

    if args.no_web:
        log("--no-web: onnxruntime-web rows skipped")
        return
    run_web(web_jobs, web_errors, args.runs, work)


def web_job(model: dict, variant: str, prec: str, onnx_path: Path, work: Path) -> dict:
    import numpy as np
    import onnx

    x, y, fp32 = golden_arrays(model)
    m = onnx.load(str(onnx_path), load_external_data=False)
    inp = m.graph.input[0]
    tt = inp.type.tensor_type
    elem = {1: "tensor(float)", 2: "tensor(uint8)", 3: "tensor(int8)", 5: "tensor(int16)"}[tt.elem_type]
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
    feed = onnx_feed(model, x, elem, shape)
    bin_path = work / "inputs" / f"{onnx_path.stem}.bin"
    bin_path.parent.mkdir(parents=True, exist_ok=True)
    feed.astype(feed.dtype.newbyteorder("<")).tofile(bin_path)
    ref = fp32 if variant == "fp32" else y
    ref_path = work / "inputs" / f"{onnx_path.stem}.reference.f64.bin"
    ref.astype("<f8").tofile(ref_path)
    out = model["output"]
    return {"model": model["id"], "precision": prec, "onnx": str(onnx_path),
            "input": {"name": inp.name, "dtype": str(feed.dtype), "shape": list(feed.shape), "bin": str(bin_path)},
            "expect_top1": int(np.argmax(ref)),
            # to dequantize an integer output, and what to compare it with (as the native ORT row does)
            "output": {"scale": out["scale"], "zero_point": out["zero_point"], "reference_bin": str(ref_path),
                       "reference": "TFLite fp32 reference of the dequantized network" if variant == "fp32"
                       else "TFLite BUILTIN_REF output"}}


def run_web(jobs: list[dict], errors: list[dict], runs: int, work: Path) -> None:
    try:
        pinned = json.loads((ORT_WEB / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    except (OSError, KeyError, ValueError):
        pinned = "?"
    label = f"onnxruntime-web {pinned} wasm simd 1 thread (node)"

    def fail_all(msg: str) -> None:
        for j in jobs + errors:
            emit({"runtime": label, "model": j["model"], "precision": j["precision"], "load_ms": None,
                  "median_ms": None, "runs": runs, "peak_mem_bytes": None, "top1_matches": None,
                  "error": j.get("error", msg), "onnx": Path(j["onnx"]).name})

    for e in errors:
        emit({"runtime": label, "model": e["model"], "precision": e["precision"], "load_ms": None,
              "median_ms": None, "runs": runs, "peak_mem_bytes": None, "top1_matches": None,
              "error": e["error"], "onnx": e["onnx"]})
    errors = []
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        fail_all("node/npm not found")
        return
    if not (ORT_WEB / "node_modules" / "onnxruntime-web" / "package.json").exists():
        log("npm ci in bench/compare/ort-web")
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ORT_WEB, stdout=sys.stderr)
        if proc.returncode != 0:
            fail_all(f"npm ci failed (exit {proc.returncode})")
            return
    log(f"onnxruntime-web: {len(jobs)} exports, one node process each (so each peak memory is one model's)")
    for i, job in enumerate(jobs):
        jobs_path = work / "inputs" / f"ort-web-job-{i}.json"
        jobs_path.write_text(json.dumps([job], indent=1))
        log(f"{job['model']}: onnxruntime-web on {Path(job['onnx']).name}")
        # --no-liftoff: V8 compiles the ORT wasm with TurboFan up front (timed apart as runtime_init_ms)
        # instead of tiering up from its baseline compiler while we time.
        proc = subprocess.run([node, "--no-liftoff", str(ORT_WEB / "bench.mjs"), str(jobs_path), str(runs)],
                              cwd=ORT_WEB, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stdout.splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                if line.strip():
                    log("node: " + line)
        for obj in lines:
            emit(obj)
        if not lines:
            tail = [l for l in proc.stderr.splitlines() if l.strip()][-1:] or [f"exit {proc.returncode}"]
            emit({"runtime": label, "model": job["model"], "precision": job["precision"], "load_ms": None,
                  "median_ms": None, "runs": runs, "peak_mem_bytes": None, "top1_matches": None,
                  "error": f"node bench.mjs exited {proc.returncode}: {tail[0][:400]}",
                  "onnx": Path(job["onnx"]).name})


if __name__ == "__main__":
    main()
