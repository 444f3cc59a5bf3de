#!/usr/bin/env python3
"""Golden reference data for edge-classify.

For every model x image case this writes the preprocessed input tensor the reference interpreter saw and
the output it produced, as .npy files under golden/data/<model-id>/, plus golden/manifest.json.

Reference: ai-edge-litert's Interpreter with the TFLite *reference* kernels (OpResolverType.BUILTIN_REF),
one thread. Those kernels define the integer semantics the Rust executor must reproduce; XNNPACK and the
optimized builtin kernels differ from them by tens of LSB.

The numbers written here are the reference's. Never edit them by hand: change this script and rerun
`bash golden/generate.sh`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter, OpResolverType

GOLDEN = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("EDGE_CLASSIFY_SHARED", GOLDEN.parent.parent / "shared")).resolve()
MODELS = SHARED / "models"
IMAGES = SHARED / "images"
DATA = GOLDEN / "data"
REPO = GOLDEN.parent

MEAN = 127.5
STD = 127.5

# model-id -> (file we load, file the reference runs, labels file)
MODEL_TABLE = [
    ("mobilenet_v2_1.0_224_quant", "mobilenet_v2_1.0_224_quant.tflite", None, "imagenet_labels.txt"),
    ("mobilenet_v2_1.0_224_ptq_int8", "mobilenet_v2_1.0_224_ptq_int8.tflite", None, "imagenet_labels.txt"),
    # The shipped file has quantized_dimension = 3 on 14 bias tensors; full TFLite rejects it, so the
    # reference runs the copy with those fields set to 0 (the same model otherwise).
    ("person_detect", "person_detect.tflite", "person_detect_qdimfix.tflite", "vww_labels.txt"),
    ("dog_breeds_mobilenet_v2_160_float", "dog_breeds_mobilenet_v2_160_float.tflite", None, "dog_breeds_labels.txt"),
    ("dog_breeds_mobilenet_v2_160_int8", "dog_breeds_mobilenet_v2_160_int8.tflite", None, "dog_breeds_labels.txt"),
    ("dog_breeds_mobilenet_v2_160_int16x8", "dog_breeds_mobilenet_v2_160_int16x8.tflite", None, "dog_breeds_labels.txt"),
]

# Our own quantizer's outputs, checked here against TFLite: (id, source model id, target). Calibration: the
# photos (every image of ../shared/images except the raw VWW BMPs), in name order, default mean/std.
QUANTIZED_TABLE = [
    ("dog_breeds_mobilenet_v2_160_float.ours_int8", "dog_breeds_mobilenet_v2_160_float", "int8"),
    ("dog_breeds_mobilenet_v2_160_float.ours_int16", "dog_breeds_mobilenet_v2_160_float", "int16"),
    # The 8-bit ImageNet models at 16x8 as `load-options.precision = int16` converts them (no calibration:
    # ranges from the source's quantization, with headroom), written as a file so that TFLite runs the
    # very graph we run: it must be a valid 16x8 model, and our executor must equal TFLite on it.
    ("mobilenet_v2_1.0_224_quant.ours_int16", "mobilenet_v2_1.0_224_quant", "int16"),
    ("mobilenet_v2_1.0_224_ptq_int8.ours_int16", "mobilenet_v2_1.0_224_ptq_int8", "int16"),
    # Every other 8-bit model `load` converts to 16x8, so TFLite runs each int16 graph we write (issue 31:
    # they end in DEQUANTIZE -> float SOFTMAX).
    ("dog_breeds_mobilenet_v2_160_int8.ours_int16", "dog_breeds_mobilenet_v2_160_int8", "int16"),
    ("person_detect.ours_int16", "person_detect", "int16"),
]
# TFLite's converter outputs of the same float model: the baseline our quantizer is compared with.
CONVERTER_BASELINES = ["dog_breeds_mobilenet_v2_160_int8", "dog_breeds_mobilenet_v2_160_int16x8"]

# VWW test images: 8-bit palette BMPs whose index bytes are int8 values (TFLite Micro bit-casts them).
RAW_INT8_IMAGES = ["person.bmp", "no_person.bmp"]
RAW_INT8_EXPECTED = {"person.bmp": "person", "no_person.bmp": "notperson"}

PREPROCESSING = {
    "decode": "Pillow Image.open (no EXIF orientation applied)",
    "color": "3-channel models: .convert('RGB') (alpha dropped); 1-channel models: .convert('L'), "
             "Pillow's ITU-R 601 integer luma L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16",
    "resize": "Image.resize((W, H), Image.BILINEAR): Pillow's bilinear convolution (support 1, scaled "
              "when downsampling, 22-bit fixed-point weights), from the full image, no crop, aspect ratio "
              "not kept; two 1-D passes rounded to u8 in between, vertical first iff (H0-H) > 0 and "
              "(H0-H) > 2*(W0-W) for a W0xH0 source (Pillow 13), else horizontal first; same size = copy",
    "uint8_input": "models whose input tensor is uint8 take the resized pixels themselves, as TFLite's own "
                   "examples feed them (label_image, Coral classify.py, TFLite Support's Task Library): no "
                   "normalization (manifest: pixels 'raw', mean/std null)",
    "normalize": "float32, int8 and int16 inputs: real = (pixel - mean) / std in float32: "
                 "(p.astype(float32) - float32(mean)) / float32(std) (manifest: pixels 'normalize'); none of "
                 "these shared models carries metadata NormalizationOptions, so mean = std = 127.5",
    "float_input": "the tensor is real (float32, NHWC)",
    "quantized_input": "q = round_half_away_from_zero(real / float32(scale)) + zero_point, the division in "
                       "float32, ties (exact .5) rounded away from zero, then clamped to the dtype range",
    "raw_int8": "kind 'raw-int8' cases (person.bmp, no_person.bmp): the BMP's 8-bit palette indices as "
                "Pillow returns them (np.array(Image.open(p)), top-down rows) viewed as int8, shape "
                "[1,96,96,1], no color conversion, resize or normalization",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round float32 to nearest, ties away from zero, exactly (no x + 0.5 shortcut, which misrounds
    0.49999997 and large odd values in float32). Same as Rust's f32::round."""
    x = np.asarray(x, dtype=np.float32)
    t = np.trunc(x)
    frac = x - t  # exact: |x| < 2^24 here, and t is x with its fraction bits cleared
    up = np.abs(frac) >= np.float32(0.5)
    return np.where(up, t + np.sign(x), t).astype(np.float32)


def quant_params(detail: dict) -> tuple[float | None, int | None]:
    qp = detail["quantization_parameters"]
    scales, zps = qp["scales"], qp["zero_points"]
    if len(scales) == 0:
        return None, None
    if len(scales) != 1:
        raise SystemExit(f"per-channel quantization on a model input/output: {detail['name']}")
    return float(scales[0]), int(zps[0])


def preprocess_photo(path: Path, height: int, width: int, channels: int, dtype, scale, zero_point) -> np.ndarray:
    im = Image.open(path)
    if channels == 3:
        im = im.convert("RGB")
    elif channels == 1:
        im = im.convert("L")
    else:
        raise SystemExit(f"unsupported channel count {channels}")
    im = im.resize((width, height), Image.BILINEAR)
    pixels = np.asarray(im, dtype=np.uint8).reshape(height, width, channels)
    if dtype == np.uint8:
        return np.ascontiguousarray(pixels.reshape(1, height, width, channels))
    real = (pixels.astype(np.float32) - np.float32(MEAN)) / np.float32(STD)
    tensor = real if dtype == np.float32 else quantize_real(real, dtype, scale, zero_point)
    return np.ascontiguousarray(tensor.reshape(1, height, width, channels))


def quantize_real(real: np.ndarray, dtype, scale, zero_point) -> np.ndarray:
    """The manifest's `quantized_input` rule."""
    info = np.iinfo(dtype)
    q = round_half_away(real / np.float32(scale)).astype(np.int64) + int(zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def as_source_feeds(path: Path, source_input: dict, dtype, scale, zero_point) -> np.ndarray:
    """A converted model's input as `classify` feeds it: the real value `scale * (q - zero_point)` the
    source model's own preprocessed input stands for, quantized to the converted input."""
    _, height, width, channels = source_input["shape"]
    src = preprocess_photo(path, height, width, channels, np.dtype(source_input["dtype"]).type,
                           source_input["scale"], source_input["zero_point"])
    real = (src.astype(np.float32) - np.float32(source_input["zero_point"])) * np.float32(source_input["scale"])
    return np.ascontiguousarray(quantize_real(real, dtype, scale, zero_point))


def raw_int8(path: Path, shape) -> np.ndarray:
    indices = np.array(Image.open(path))
    if indices.dtype != np.uint8 or indices.ndim != 2:
        raise SystemExit(f"{path.name}: expected an 8-bit single-plane image, got {indices.dtype} {indices.shape}")
    return np.ascontiguousarray(indices.view(np.int8).reshape(shape))


def dequantize(out: np.ndarray, scale, zero_point) -> np.ndarray:
    if scale is None:
        return out.astype(np.float64).reshape(-1)
    return (scale * (out.astype(np.float64) - zero_point)).reshape(-1)


def top5(scores: np.ndarray) -> list:
    # stable ordering: score descending, then index ascending
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:5]
    return [[int(i), float(scores[i])] for i in order]


def tensor_json(detail: dict) -> dict:
    scale, zp = quant_params(detail)
    return {
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": scale,
        "zero_point": zp,
    }


def save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # np.save writes format v1.0 for these small headers; force little-endian, C order.
    array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<")))
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=(1, 0), allow_pickle=False)


def final_op(interp: Interpreter) -> str:
    """The op that makes the output, looking through QUANTIZE/DEQUANTIZE/RESHAPE."""
    producers = {int(t): op for op in interp._get_ops_details() for t in op["outputs"]}
    tensor = int(interp.get_output_details()[0]["index"])
    while tensor in producers:
        op = producers[tensor]
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE", "RESHAPE"):
            return op["op_name"]
        tensor = int(op["inputs"][0])
    return "none"


def xtask_quantize(src: Path, target: str, out: Path, calibrate: bool) -> str:
    """Our quantizer, natively (the same code the component exports). Returns the command line."""
    cmd = ["cargo", "xtask", "quantize", "--target", target]
    if calibrate:
        cmd += ["--calibrate", str(IMAGES)]
        for name in RAW_INT8_IMAGES:
            cmd += ["--exclude", name]
    subprocess.run(cmd + [str(src), str(out)], cwd=REPO, check=True)
    return " ".join(cmd).replace(str(IMAGES), "../shared/images") + " IN OUT"


def softmax_input(interp: Interpreter) -> int:
    """Index of the input tensor of the last SOFTMAX: the logits."""
    ops = [op for op in interp._get_ops_details() if op["op_name"] == "SOFTMAX"]
    if not ops:
        raise SystemExit("model without SOFTMAX")
    return int(ops[-1]["inputs"][0])


def dequantize_input(inp: np.ndarray, scale, zero_point) -> np.ndarray:
    """The real tensor a quantized golden input stands for, in float32 as the Rust suite computes it:
    float32(q - zero_point) * float32(scale)."""
    if scale is None:
        return inp
    return ((inp.astype(np.int32) - np.int32(zero_point)).astype(np.float32) * np.float32(scale)).astype(np.float32)


def agreement(ref: list, other: list) -> tuple[float, float]:
    """top-1 agreement and max |delta p| of probability vectors against the reference ones."""
    top1 = sum(int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(ref, other)) / len(ref)
    dp = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, other))
    return top1, dp


def run(interp: Interpreter, inp: np.ndarray) -> np.ndarray:
    interp.set_tensor(interp.get_input_details()[0]["index"], inp)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def main() -> None:
    photos = sorted(p for p in IMAGES.iterdir()
                    if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp") and p.name not in RAW_INT8_IMAGES)
    if len(photos) != 20:
        print(f"warning: expected 20 photos, found {len(photos)}", file=sys.stderr)

    manifest = {
        "reference": {
            "runtime": "ai-edge-litert",
            "version": metadata.version("ai-edge-litert"),
            "resolver": "BUILTIN_REF",
            "num_threads": 1,
            "numpy": np.__version__,
            "pillow": metadata.version("pillow"),
            "python": platform.python_version(),
        },
        "preprocessing": dict(PREPROCESSING, mean=MEAN, std=STD),
        "format": "npy v1.0, little-endian, C order; paths relative to golden/",
        "models": [],
    }
    summary = []
    problems = []

    for model_id, file, ref_file, labels_file in MODEL_TABLE:
        ref_file = ref_file or file
        labels = (MODELS / labels_file).read_text().splitlines()
        interp = Interpreter(model_path=str(MODELS / ref_file),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_REF, num_threads=1)
        interp.allocate_tensors()
        ind, outd = interp.get_input_details()[0], interp.get_output_details()[0]
        in_json, out_json = tensor_json(ind), tensor_json(outd)
        _, height, width, channels = in_json["shape"]
        in_dtype = np.dtype(ind["dtype"]).type
        in_scale, in_zp = quant_params(ind)
        out_scale, out_zp = quant_params(outd)
        print(f"\n== {model_id}  input {in_json}  output {out_json}")

        entry = {
            "id": model_id,
            "file": file,
            "sha256": sha256(MODELS / file),
            "reference_file": ref_file,
            "reference_sha256": sha256(MODELS / ref_file),
            "labels": labels_file,
            "input": in_json,
            "output": out_json,
            "pixels": "raw" if in_dtype == np.uint8 else "normalize",
            "mean": None if in_dtype == np.uint8 else MEAN,
            "std": None if in_dtype == np.uint8 else STD,
            "color": "rgb" if channels == 3 else "gray",
            "cases": [],
        }
        sums = []
        cases = [(p, "photo") for p in photos]
        if model_id == "person_detect":
            cases += [(IMAGES / n, "raw-int8") for n in RAW_INT8_IMAGES]
        for path, kind in cases:
            if kind == "photo":
                inp = preprocess_photo(path, height, width, channels, in_dtype, in_scale, in_zp)
            else:
                inp = raw_int8(path, in_json["shape"])
            out = run(interp, inp)
            scores = dequantize(out, out_scale, out_zp)
            sums.append(float(scores.sum()))
            rel_in = f"data/{model_id}/{path.stem}.input.npy"
            rel_out = f"data/{model_id}/{path.stem}.output.npy"
            save_npy(GOLDEN / rel_in, inp)
            save_npy(GOLDEN / rel_out, out)
            t5 = top5(scores)
            entry["cases"].append({"image": path.name, "kind": kind, "input": rel_in, "output": rel_out, "top5": t5})
            best = t5[0]
            print(f"  {path.name:30s} [{kind:8s}] top-1 {best[0]:4d} {labels[best[0]]!r:40s} {best[1]:.4f}")
            summary.append((model_id, path.stem, labels[best[0]], best[1]))
            if kind == "raw-int8":
                want = RAW_INT8_EXPECTED[path.name]
                ok = labels[best[0]] == want
                print(f"    VWW check: {path.name} -> {labels[best[0]]} (expected {want}): {'OK' if ok else 'MISMATCH'}")
                if not ok:
                    problems.append(f"{path.name}: {labels[best[0]]}, expected {want}")
                # diagnostic only (not stored): the same bytes in bottom-up (BMP file) row order
                flipped = np.ascontiguousarray(inp[:, ::-1, :, :])
                fs = dequantize(run(interp, flipped), out_scale, out_zp)
                print(f"    top-down scores {scores.tolist()}; bottom-up rows would give "
                      f"{labels[int(np.argmax(fs))]} {fs.tolist()}")
        lo, hi = min(sums), max(sums)
        last_op = final_op(interp)
        # A quantized softmax over many classes loses the tail: every probability below half an output step
        # becomes 0, so the dequantized sum of a 1001-class uint8 output (step 1/256) can fall well below 1.
        tail_bound = 0.0 if out_scale is None else out_json["shape"][-1] * out_scale
        softmax = last_op == "SOFTMAX" and all(s >= 0 for s in sums) and hi <= 1 + tail_bound + 1e-3 \
            and lo >= 1 - tail_bound - 1e-3
        entry["final_op"] = last_op
        entry["output_sum"] = [lo, hi]
        entry["output_is_softmax"] = bool(softmax)
        print(f"  final op {last_op}; dequantized output sum over cases: min {lo:.5f} max {hi:.5f} -> "
              f"{'softmax' if softmax else 'NOT a softmax'}")
        manifest["models"].append(entry)

    fp32_references(manifest, photos)
    quantized(manifest, photos)

    (GOLDEN / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(f.stat().st_size for f in DATA.rglob("*.npy"))
    print(f"\nwrote {GOLDEN / 'manifest.json'}; data {total / 1e6:.2f} MB in {len(list(DATA.rglob('*.npy')))} files")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        sys.exit(1)


def fp32_references(manifest: dict, photos: list) -> None:
    """fp32 golden of every model for the fidelity table: TFLite's float reference kernels on the float
    model, and for each quantized model on the fp32 file our `quantize(target = fp32)` writes (weights and
    biases dequantized), fed the real tensor its golden input stands for. Logits (the input of the final
    SOFTMAX) are kept too."""
    print("\n== fp32 references")
    with tempfile.TemporaryDirectory() as tmp:
        for entry in manifest["models"]:
            model_id = entry["id"]
            if entry["input"]["dtype"] == "float32":
                path, ref = MODELS / entry["file"], {"file": entry["file"], "written_by": "the model itself"}
            else:
                path = Path(tmp) / f"{model_id}.fp32.tflite"
                cmd = xtask_quantize(MODELS / entry["file"], "fp32", path, calibrate=False)
                ref = {"file": path.name, "written_by": cmd}
            ref["sha256"] = sha256(path)
            interp = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                                 num_threads=1, experimental_preserve_all_tensors=True)
            interp.allocate_tensors()
            logits_index = softmax_input(interp)
            ref["input"] = "the golden input, dequantized: float32(q - zero_point) * float32(scale)"
            entry["fp32_reference"] = ref
            scale, zp = entry["input"]["scale"], entry["input"]["zero_point"]
            for case in entry["cases"]:
                inp = np.load(GOLDEN / case["input"])
                real = dequantize_input(inp, scale, zp)
                out = run(interp, real)
                logits = interp.get_tensor(logits_index).copy().astype(np.float32)
                stem = Path(case["input"]).name.removesuffix(".input.npy")
                case["fp32_output"] = f"data/{model_id}/{stem}.fp32.output.npy"
                case["fp32_logits"] = f"data/{model_id}/{stem}.fp32.logits.npy"
                save_npy(GOLDEN / case["fp32_output"], out.astype(np.float32))
                save_npy(GOLDEN / case["fp32_logits"], logits)
            print(f"  {model_id}: {len(entry['cases'])} cases on {ref['file']} ({ref['sha256'][:12]})")


def quantized(manifest: dict, photos: list) -> None:
    """Our quantizer's outputs: they must load in TFLite, and the suite checks our executor against
    TFLite's reference kernels on them (within 1 LSB) and re-quantizes to the recorded sha256. Also prints
    the TFLite-measured agreement with the float model of ours and of TFLite's converter."""
    print("\n== our quantizer")
    by_id = {m["id"]: m for m in manifest["models"]}
    manifest["quantized"] = []
    calibration = [p.name for p in photos]
    comparison = []
    with tempfile.TemporaryDirectory() as tmp:
        for qid, source_id, target in QUANTIZED_TABLE:
            source = by_id[source_id]
            path = Path(tmp) / f"{qid}.tflite"
            float_source = source["input"]["dtype"] == "float32"
            cmd = xtask_quantize(MODELS / source["file"], target, path, calibrate=float_source)
            interp = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                                 num_threads=1)
            interp.allocate_tensors()
            ind, outd = interp.get_input_details()[0], interp.get_output_details()[0]
            in_json, out_json = tensor_json(ind), tensor_json(outd)
            _, height, width, channels = in_json["shape"]
            in_scale, in_zp = quant_params(ind)
            out_scale, out_zp = quant_params(outd)
            entry = {"id": qid, "source": source["file"], "target": target, "command": cmd,
                     "calibration": calibration if float_source else [], "sha256": sha256(path), "input": in_json, "output": out_json,
                     "cases": []}
            for p in photos:
                if float_source:
                    inp = preprocess_photo(p, height, width, channels, np.dtype(ind["dtype"]).type, in_scale, in_zp)
                else:
                    inp = as_source_feeds(p, source["input"], np.dtype(ind["dtype"]).type, in_scale, in_zp)
                out = run(interp, inp)
                rel_in, rel_out = f"data/{qid}/{p.stem}.input.npy", f"data/{qid}/{p.stem}.output.npy"
                save_npy(GOLDEN / rel_in, inp)
                save_npy(GOLDEN / rel_out, out)
                entry["cases"].append({"image": p.name, "input": rel_in, "output": rel_out,
                                       "top5": top5(dequantize(out, out_scale, out_zp))})
            manifest["quantized"].append(entry)
            print(f"  {qid}: {target}, sha256 {entry['sha256'][:12]}, loads and runs in TFLite")
            if float_source:
                comparison.append((f"ours {target}", source_id, entry))
    for baseline in CONVERTER_BASELINES:
        comparison.append((f"TFLite converter {by_id[baseline]['input']['dtype']}", "dog_breeds_mobilenet_v2_160_float",
                           by_id[baseline]))
    print("\n  agreement with the float model's TFLite outputs (TFLite reference kernels), photos:")
    for label, source_id, entry in comparison:
        ref = [np.load(GOLDEN / c["output"]).astype(np.float64).reshape(-1)
               for c in by_id[source_id]["cases"] if c["kind"] == "photo"]
        o = entry["output"]
        got = [dequantize(np.load(GOLDEN / c["output"]), o["scale"], o["zero_point"]) for c in entry["cases"]
               if c.get("kind", "photo") == "photo"]
        top1, dp = agreement(ref, got)
        print(f"    {label:28s} top-1 {top1 * 100:5.1f}%  max |dp| {dp:.4f}")


if __name__ == "__main__":
    main()
