"""Grids of the 16 highest- and lowest-scored faces for every attribute.

Look at them before trusting a labeller. Reads scores.csv (from label.py) and
the sample folder's PNGs; writes grid_<attribute>.png: top row = 16 highest
scores, bottom row = 16 lowest, among the faces the attribute's label may use
(label.py's gates: the mesh found a face, frontal enough for mouth and eyes).

  python3 tools/labels/grids.py SAMPLES_DIR [--scores SCORES.csv] [--out DIR]
"""

import argparse
import csv
import math
import os
import sys

from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from label import label_values, positive  # noqa: E402

ATTRIBUTES = {
    "smile": "happy",
    "mouth_open": "mouth",
    "male": "male",
    "yaw": "yaw",
    "pitch": "pitch",
    "eyes_open": "eye_gap",
    "background": "background",
    "skin_tone": "skin_tone",
}



def usable(attr, row):
    """Whether the label of `attr` may use this face (its labeller's gates)."""
    if attr in ("smile", "mouth_open", "male"):
        return positive(attr, row) is not None
    return label_values(row)[attr] is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("--scores")
    ap.add_argument("--out")
    ap.add_argument("--scale", type=int, default=2)
    args = ap.parse_args()
    scores_path = args.scores or os.path.join(args.samples, "scores.csv")
    out = args.out or os.path.dirname(scores_path)
    rows = list(csv.DictReader(open(scores_path)))
    size = 64 * args.scale
    for attr, column in ATTRIBUTES.items():
        valid = [r for r in rows if math.isfinite(float(r[column])) and usable(attr, r)]
        valid.sort(key=lambda r: float(r[column]))
        picks = [valid[::-1][:16], valid[:16]]
        grid = Image.new("RGB", (16 * size, 2 * size + 20), "white")
        draw = ImageDraw.Draw(grid)
        draw.text((4, 2), f"{attr} ({column}): top row highest, bottom row lowest", fill="black")
        for row, faces in enumerate(picks):
            for col, r in enumerate(faces):
                img = Image.open(os.path.join(args.samples, f"{int(r['index']):06}.png")).resize((size, size), Image.NEAREST)
                grid.paste(img, (col * size, 20 + row * size))
        path = os.path.join(out, f"grid_{attr}.png")
        grid.save(path)
        print("wrote", path)


if __name__ == "__main__":
    main()
