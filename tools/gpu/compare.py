"""Compares the sampled PNGs of a tools/gpu/check.sh run between devices:
per device against the CPU, how many images are byte-identical, the largest
pixel difference and the share of pixel values that differ.

  mkdir -p target/g && tar -C target/g -xzf gpu-check.tgz
  python3 tools/gpu/compare.py target/g
Needs: numpy, pillow.
"""

import glob
import os
import sys

import numpy as np
from PIL import Image


def load(folder):
    return {os.path.basename(p): np.asarray(Image.open(p)).astype(int) for p in sorted(glob.glob(os.path.join(folder, "*.png")))}


def main():
    root = sys.argv[1]
    cpu = load(os.path.join(root, "sample-cpu"))
    for device in ("cuda", "wgpu"):
        other = load(os.path.join(root, f"sample-{device}"))
        if not other or other.keys() != cpu.keys():
            print(f"{device}: no matching images")
            continue
        diff = np.stack([np.abs(cpu[k] - other[k]) for k in cpu])
        same = sum(bool((cpu[k] == other[k]).all()) for k in cpu)
        print(f"{device} vs cpu: {same}/{len(cpu)} images identical, max |diff| {diff.max()}, {(diff > 0).mean():.2e} of values differ")


if __name__ == "__main__":
    main()
