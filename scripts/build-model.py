#!/usr/bin/env python3
"""Builds the handwritten-digit classifier wasmflow's image path runs through wasi-nn.

A scikit-learn LogisticRegression is trained on the bundled `load_digits()` data set (8x8
grayscale, values 0..16) with a fixed split and seed, and exported to ONNX with skl2onnx
(opset 17, zipmap off). Only the float output `probabilities` is kept: wasmtime-wasi-nn's ONNX
backend reads every output as float32, so the int64 `label` output would fail every inference
(shared/TOOLCHAIN.md).

Writes to OUT (default: <repo>/target/models):
  digits.onnx         the model: input `X` float32 [N, 64], output `probabilities` float32 [N, 10]
  digits-test.json    the held-out test set: {"images": [[64 values 0..16]...], "labels": [...]}
  digits-test/        the held-out images as 8x8 grayscale PNGs (value*255/16), <index>-<label>.png
  digits.json         facts about the build (versions, sizes, scikit-learn's own test accuracy)

Deterministic: the same package versions give the same files; a run whose outputs exist and
are newer than this script does nothing (so `make test` costs nothing the second time).
"""

import json
import os
import struct
import sys
import zlib

SEED = 0
TEST_SIZE = 0.25  # 450 of the 1797 images are held out


def png_gray8(width, height, pixels):
    """A minimal 8-bit grayscale PNG (no Pillow needed): signature, IHDR, one IDAT, IEND."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(pixels[y * width : (y + 1) * width]) for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(repo, "target", "models")
    model_path = os.path.join(out, "digits.onnx")
    test_path = os.path.join(out, "digits-test.json")
    info_path = os.path.join(out, "digits.json")
    me = os.path.getmtime(os.path.abspath(__file__))
    if all(os.path.exists(p) and os.path.getmtime(p) > me for p in (model_path, test_path, info_path)):
        print(f"[build-model] {model_path} is up to date")
        return

    try:
        import numpy as np
        import onnx
        import onnx.utils
        import sklearn
        import skl2onnx
        from skl2onnx import to_onnx
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        sys.exit(f"[build-model] {e}: run scripts/setup.sh (pip: scikit-learn, skl2onnx, onnx)")

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SEED, stratify=y
    )
    clf = LogisticRegression(max_iter=5000, random_state=SEED)
    clf.fit(x_train, y_train)
    sk_accuracy = float((clf.predict(x_test) == y_test).mean())

    os.makedirs(out, exist_ok=True)
    full = to_onnx(
        clf,
        x_train[:1],
        target_opset=17,
        options={id(clf): {"zipmap": False}},
        initial_types=None,
    )
    # Keep only the float32 probabilities.
    outputs = [o.name for o in full.graph.output]
    prob = next(n for n in outputs if "prob" in n)
    tmp_full = model_path + ".full.tmp"
    onnx.save(full, tmp_full)
    onnx.utils.extract_model(tmp_full, model_path + ".tmp", [full.graph.input[0].name], [prob])
    os.remove(tmp_full)
    model = onnx.load(model_path + ".tmp")
    onnx.checker.check_model(model)
    model.producer_name = "wasmflow scripts/build-model.py"
    onnx.save(model, model_path + ".tmp")
    os.replace(model_path + ".tmp", model_path)

    images = [[int(v) for v in row] for row in x_test]
    with open(test_path + ".tmp", "w") as f:
        json.dump({"images": images, "labels": [int(v) for v in y_test]}, f)
    os.replace(test_path + ".tmp", test_path)

    png_dir = os.path.join(out, "digits-test")
    os.makedirs(png_dir, exist_ok=True)
    for i, (img, label) in enumerate(zip(images, y_test)):
        pixels = [min(255, round(v * 255 / 16)) for v in img]
        with open(os.path.join(png_dir, f"{i:03d}-{int(label)}.png"), "wb") as f:
            f.write(png_gray8(8, 8, pixels))

    info = {
        "model": os.path.basename(model_path),
        "input": model.graph.input[0].name,
        "output": prob,
        "classes": [int(c) for c in clf.classes_],
        "train": len(x_train),
        "test": len(x_test),
        "seed": SEED,
        "sklearn_test_accuracy": sk_accuracy,
        "versions": {
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
        },
    }
    with open(info_path + ".tmp", "w") as f:
        json.dump(info, f, indent=2)
    os.replace(info_path + ".tmp", info_path)
    print(
        f"[build-model] {model_path}: {os.path.getsize(model_path)} bytes, input `{info['input']}`, "
        f"output `{prob}`, scikit-learn accuracy {sk_accuracy:.4f} on {len(x_test)} held-out images"
    )


if __name__ == "__main__":
    main()
