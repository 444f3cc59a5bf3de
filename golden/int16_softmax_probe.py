#!/usr/bin/env python3
"""Where the int16 error of an 8-bit model converted to 16x8 comes from: logits or the 16-bit SOFTMAX.

For each int16 file our quantizer writes from a golden 8-bit model (the conversion `load` does for
`precision = int16`), runs it in TFLite's reference kernels on the manifest's cases, keeps the logits (the
last SOFTMAX's int16 input, `experimental_preserve_all_tensors`) and prints, per photo and worst case:

  a. max |dp| of TFLite's int16 output against the fp32 reference (the fidelity table's number),
  b. max |dp| of a float softmax of the dequantized int16 logits against the fp32 reference,
  c. max |dp| between TFLite's int16 SOFTMAX and that float softmax (the kernel's own error),
  d. max |d logit| against the fp32 logits,
  e. (given `ID=INT16:FP32`, FP32 the int16 file dequantized by `cargo xtask quantize --target fp32`)
     max |dp| of TFLite's float kernels with the int16 file's weights: the error its weights alone cause.

Every int16 run is fed its case's input, which generate.py made from the real tensor the source's golden
input stands for, as the fp32 reference was fed.
Reads only committed golden data and the int16 files, which it does not write:

  cargo xtask quantize --target int16 ../shared/models/mobilenet_v2_1.0_224_ptq_int8.tflite /tmp/ptq16.tflite
  cargo xtask quantize --target int16 ../shared/models/mobilenet_v2_1.0_224_quant.tflite /tmp/u8_16.tflite
  cargo xtask quantize --target fp32 /tmp/u8_16.tflite /tmp/u8_16_fp32.tflite
  golden/.venv/bin/python golden/int16_softmax_probe.py \\
      mobilenet_v2_1.0_224_ptq_int8=/tmp/ptq16.tflite mobilenet_v2_1.0_224_quant=/tmp/u8_16.tflite:/tmp/u8_16_fp32.tflite

Each file's sha256 must be the manifest's (so it is the graph the suite checks bit for bit). Prints only.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

GOLDEN = Path(__file__).resolve().parent


def real_input(source: dict, case: dict) -> np.ndarray:
    """The real tensor the source's golden input stands for: `scale * (q - zero_point)` in float32."""
    x = np.load(GOLDEN / case["input"])
    spec = source["input"]
    if spec["dtype"] == "float32":
        return x.astype(np.float32)
    return (x.astype(np.float32) - np.float32(spec["zero_point"])) * np.float32(spec["scale"])


def main() -> None:
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    models = {m["id"]: m for m in manifest["models"]}
    for arg in sys.argv[1:]:
        source_id, paths = arg.split("=", 1)
        path, _, fp32_path = paths.partition(":")
        weights_only = None
        if fp32_path:
            weights_only = Interpreter(model_path=fp32_path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                                       num_threads=1)
            weights_only.allocate_tensors()
        entry = next(q for q in manifest["quantized"] if q["id"] == f"{source_id}.ours_int16")
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if sha != entry["sha256"]:
            raise SystemExit(f"{path}: sha256 {sha}, the manifest's {entry['id']} is {entry['sha256']}")
        interp = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                             num_threads=1, experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
        softmax = [op for op in interp._get_ops_details() if op["op_name"] == "SOFTMAX"][-1]
        logits = next(t for t in interp.get_tensor_details() if t["index"] == softmax["inputs"][0])
        l_scale, l_zp = logits["quantization"]
        out = interp.get_output_details()[0]
        o_scale, o_zp = out["quantization"]
        source = models[source_id]
        reference = {c["image"]: c for c in source["cases"] if c.get("kind", "photo") == "photo"}
        inp = interp.get_input_details()[0]
        print(f"{entry['id']} (logit scale {l_scale:.3g}, output scale {o_scale:.3g})")
        print(f"  {'photo':28s} {'a. int16':>9s} {'b. float sm':>11s} {'c. kernel':>10s} {'d. logit':>9s} "
              f"{'e. weights':>10s}")
        worst = np.zeros(5)
        for case in entry["cases"]:
            ref = reference[case["image"]]
            # The case's input is the real tensor the source's golden input stands for (generate.py).
            interp.set_tensor(inp["index"], np.load(GOLDEN / case["input"]))
            interp.invoke()
            l16 = (interp.get_tensor(logits["index"]).astype(np.float64).reshape(-1) - l_zp) * l_scale
            p16 = (interp.get_tensor(out["index"]).astype(np.float64).reshape(-1) - o_zp) * o_scale
            lf = np.load(GOLDEN / ref["fp32_logits"]).astype(np.float64).reshape(-1)
            pf = np.load(GOLDEN / ref["fp32_output"]).astype(np.float64).reshape(-1)
            soft = np.exp(l16 - l16.max())
            soft /= soft.sum()
            e = float("nan")
            if weights_only is not None:
                x = real_input(source, ref)
                weights_only.set_tensor(weights_only.get_input_details()[0]["index"], x)
                weights_only.invoke()
                pw = weights_only.get_tensor(weights_only.get_output_details()[0]["index"]).astype(np.float64)
                e = np.abs(pw.reshape(-1) - pf).max()
            row = np.array([np.abs(p16 - pf).max(), np.abs(soft - pf).max(), np.abs(p16 - soft).max(),
                            np.abs(l16 - lf).max(), e])
            worst = np.fmax(worst, row)
            print(f"  {case['image']:28s} {row[0]:9.4f} {row[1]:11.4f} {row[2]:10.4f} {row[3]:9.3f} {row[4]:10.4f}")
        print(f"  {'worst':28s} {worst[0]:9.4f} {worst[1]:11.4f} {worst[2]:10.4f} {worst[3]:9.3f} {worst[4]:10.4f}")


if __name__ == "__main__":
    main()
