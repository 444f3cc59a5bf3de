#!/usr/bin/env python3
"""Pillow's JPEG decodes, the reference our decoder must equal exactly (golden/README.md, JPEG).

Writes golden/jpeg/: JPEG variants (Pillow's encoder, i.e. libjpeg-turbo's, for 4:4:4 / 4:2:2 / 4:2:0,
baseline and progressive, restart markers, optimized tables, gray, RGB, tiny and narrow sizes; and
`cargo run -p host-tests --bin jpeg-variants` for what Pillow cannot write: 4:4:0, 4:1:1 and other
sampling factors, another encoder's progressive scans), each file's Pillow decode as .npy
(Image.open(...) in its own mode, no conversion: HxWx1 for L, HxWx3 for RGB), and manifest.json. For
every JPEG photo of ../shared/images (not committed) the manifest records the sha256 of Pillow's decode.

The pixels are Pillow's. Never edit them by hand: change this script and rerun `bash golden/generate.sh`
(or just this script with the venv's python).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin, features

GOLDEN = Path(__file__).resolve().parent
OUT = GOLDEN / "jpeg"
SHARED = Path(os.environ.get("EDGE_CLASSIFY_SHARED", GOLDEN.parent.parent / "shared")).resolve()
REPO = GOLDEN.parent


def picture(width: int, height: int) -> np.ndarray:
    """Gradients, fine stripes, noise, and a saturated block (chroma far from neutral: conversion clamps)."""
    y, x = np.mgrid[0:height, 0:width]
    r = x * 255 // max(width - 1, 1)
    g = (y * 255 // max(height - 1, 1) + 60 * ((x // 3 + y // 2) % 2)) % 256
    b = 128 + (x * 7919 + y * 104729) % 97 - 48
    block = (abs(x - width // 2) < width // 5 + 1) & (abs(y - height // 2) < height // 4 + 1)
    rgb = np.stack([np.where(block, 20, r), np.where(block, 240, g), np.where(block, 250, b)], -1)
    return rgb.astype(np.uint8)


# (name, (width, height), mode, save options)
PILLOW = [
    ("pil-444-q90", (61, 43), "RGB", {"subsampling": 0, "quality": 90}),
    ("pil-422", (61, 43), "RGB", {"subsampling": 1}),
    ("pil-420", (61, 43), "RGB", {"subsampling": 2}),
    ("pil-420-q100", (61, 43), "RGB", {"subsampling": 2, "quality": 100}),
    ("pil-420-q20-optimize", (250, 130), "RGB", {"subsampling": 2, "quality": 20, "optimize": True}),
    ("pil-444-progressive", (61, 43), "RGB", {"subsampling": 0, "progressive": True}),
    ("pil-422-progressive", (61, 43), "RGB", {"subsampling": 1, "progressive": True}),
    ("pil-420-progressive", (250, 130), "RGB", {"subsampling": 2, "progressive": True}),
    ("pil-420-restart-blocks", (61, 43), "RGB", {"subsampling": 2, "restart_marker_blocks": 3}),
    ("pil-422-progressive-restart-rows", (61, 43), "RGB",
     {"subsampling": 1, "progressive": True, "restart_marker_rows": 1}),
    ("pil-444-rgb", (61, 43), "RGB", {"subsampling": 0, "keep_rgb": True}),
    ("pil-gray", (61, 43), "L", {}),
    ("pil-gray-progressive", (61, 43), "L", {"progressive": True}),
    ("pil-420-2x9", (2, 9), "RGB", {"subsampling": 2}),
    ("pil-420-4x4", (4, 4), "RGB", {"subsampling": 2}),
    ("pil-420-5x7", (5, 7), "RGB", {"subsampling": 2}),
    ("pil-422-17x1", (17, 1), "RGB", {"subsampling": 1}),
]
# Motion-JPEG style: a file above (written with the standard Huffman tables, optimize off) with its DHT
# segments removed; libjpeg-turbo then decodes with the standard tables (its std_huff_tables).
WITHOUT_DHT = [("pil-420-no-dht", "pil-420"), ("pil-gray-no-dht", "pil-gray")]
# A sequential scan header with progressive-looking Ss=1, Se=5, Ah=Al=1 (pil-420's otherwise): libjpeg
# only warns and decodes whole blocks, as in any sequential scan.
ODD_SOS = [("pil-420-sequential-ss1-se5", "pil-420", bytes([1, 5, 0x11]))]
# Files Pillow decodes in a mode we refuse (CMYK): the suite checks the refusal, nothing else.
REFUSED = [("pil-cmyk", (16, 16), "CMYK", {})]


def without_dht(data: bytes) -> bytes:
    """The file with every DHT segment (FFC4) before the first scan cut out."""
    out, i = bytearray(data[:2]), 2
    while data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] != 0xC4:
            out += data[i:i + 2 + length]
        i += 2 + length
    return bytes(out + data[i:])


def with_scan_params(data: bytes, params: bytes) -> bytes:
    """The file with the first scan header's Ss, Se and Ah/Al bytes replaced."""
    sos = data.index(b"\xff\xda")
    at = sos + 5 + 2 * data[sos + 4]
    return data[:at] + params + data[at + 3:]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decoded(path: Path) -> tuple[Image.Image, np.ndarray]:
    im = Image.open(path)
    im.load()
    pixels = np.asarray(im, dtype=np.uint8)
    return im, pixels.reshape(im.size[1], im.size[0], -1)


def save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    for name, (w, h), mode, options in PILLOW + REFUSED:
        im = Image.fromarray(picture(w, h))
        im.convert(mode).save(OUT / f"{name}.jpg", "JPEG", **options)
    for name, source in WITHOUT_DHT:
        (OUT / f"{name}.jpg").write_bytes(without_dht((OUT / f"{source}.jpg").read_bytes()))
    for name, source, params in ODD_SOS:
        (OUT / f"{name}.jpg").write_bytes(with_scan_params((OUT / f"{source}.jpg").read_bytes(), params))
    subprocess.run(["cargo", "run", "-q", "--release", "-p", "host-tests", "--bin", "jpeg-variants", "--", str(OUT)],
                   cwd=REPO, check=True)
    refused = {f"{name}.jpg" for name, *_ in REFUSED}
    files = []
    for path in sorted(OUT.glob("*.jpg")):
        im, pixels = decoded(path)
        entry = {"file": path.name, "sha256": sha256(path.read_bytes()), "mode": im.mode, "size": list(im.size),
                 "sampling": JpegImagePlugin.get_sampling(im), "progressive": bool(im.info.get("progressive"))}
        if path.name in refused:
            entry["refused"] = True
        else:
            entry["decoded"] = path.with_suffix(".npy").name
            save_npy(OUT / entry["decoded"], pixels)
        files.append(entry)
        print(f"  {path.name:40s} {im.mode:4s} {im.size} sampling {entry['sampling']} "
              f"progressive {entry['progressive']}")
    shared = []
    for path in sorted((SHARED / "images").glob("*.jpg")):
        im, pixels = decoded(path)
        shared.append({"image": path.name, "sha256": sha256(path.read_bytes()), "mode": im.mode,
                       "size": list(im.size), "sampling": JpegImagePlugin.get_sampling(im),
                       "progressive": bool(im.info.get("progressive")), "decoded_sha256": sha256(pixels.tobytes())})
        print(f"  ../shared/images/{path.name:23s} {im.mode:4s} {im.size} sampling {shared[-1]['sampling']}")
    manifest = {
        "reference": {"pillow": metadata.version("pillow"), "libjpeg_turbo": features.version("libjpeg_turbo"),
                      "decode": "Image.open(path); np.asarray(im) in the file's own mode (L or RGB), HxWxC"},
        "files": files,
        "shared": shared,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {OUT / 'manifest.json'}: {len(files)} files, {len(shared)} shared photos")


if __name__ == "__main__":
    main()
