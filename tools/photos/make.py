#!/usr/bin/env python3
"""Re-creates assets/photos/: face crops of two public-domain sample photos that
ship inside the scikit-image wheel (skimage/data), used to measure projection
of real photos (plugen bench --projection, tests).

    pip download scikit-image==0.26.0 --no-deps -d /tmp/skimg
    python3 tools/photos/make.py /tmp/skimg/scikit_image-0.26.0-*.whl
"""
import io
import sys
import zipfile
from pathlib import Path

from PIL import Image

# (file in the wheel, crop box (left, top, right, bottom) around the face, output name)
CROPS = [
    ("skimage/data/astronaut.png", (155, 40, 295, 180), "astronaut_face.png"),
    ("skimage/data/camera.png", (185, 70, 305, 190), "cameraman_face.png"),
]


def main() -> None:
    wheel = zipfile.ZipFile(sys.argv[1])
    out = Path(__file__).resolve().parents[2] / "assets" / "photos"
    out.mkdir(parents=True, exist_ok=True)
    for member, box, name in CROPS:
        image = Image.open(io.BytesIO(wheel.read(member))).convert("RGB")
        image.crop(box).save(out / name, optimize=True)
        print(out / name)


if __name__ == "__main__":
    main()
