"""Numbered grids of a `plugen sample` run, for labelling faces by eye.

Usage: python3 tools/labels/hand_grid.py RUN_DIR OUT_DIR [--per 48] [--cols 8] [--px 128]
Writes OUT_DIR/grid-000.png, ...: faces in run order, each with its image index
in the corner, so a label table (image,glasses,headwear) can be typed from it.
"""
import argparse, json, os
from PIL import Image, ImageDraw

ap = argparse.ArgumentParser()
ap.add_argument("run"); ap.add_argument("out")
ap.add_argument("--per", type=int, default=48); ap.add_argument("--cols", type=int, default=8)
ap.add_argument("--px", type=int, default=128)
a = ap.parse_args()
names = [json.loads(l)["image"] for l in open(os.path.join(a.run, "manifest.jsonl"))]
os.makedirs(a.out, exist_ok=True)
for g in range(0, len(names), a.per):
    chunk = names[g:g + a.per]
    rows = (len(chunk) + a.cols - 1) // a.cols
    sheet = Image.new("RGB", (a.cols * a.px, rows * a.px), "white")
    d = ImageDraw.Draw(sheet)
    for j, n in enumerate(chunk):
        x, y = (j % a.cols) * a.px, (j // a.cols) * a.px
        sheet.paste(Image.open(os.path.join(a.run, n)).convert("RGB").resize((a.px, a.px), Image.NEAREST), (x, y))
        d.rectangle([x, y, x + 30, y + 13], fill="black")
        d.text((x + 2, y + 1), str(g + j), fill="yellow")
    sheet.save(os.path.join(a.out, f"grid-{g // a.per:03d}.png"))
print("wrote", (len(names) + a.per - 1) // a.per, "grids to", a.out)
