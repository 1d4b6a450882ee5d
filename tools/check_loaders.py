#!/usr/bin/env python3
"""Checks that plugen's output folders load as they are in the usual Python
tools: pandas.read_json(metadata.jsonl, lines=True) and Hugging Face
datasets.load_dataset("imagefolder", data_dir=DIR).

Makes a `plugen fill` and a `plugen sample --balance` folder with the given
binary, loads both, and checks rows, columns and images. Run by .ci/run
(needs: pip install pandas datasets pillow). Offline: nothing is downloaded.

Usage: tools/check_loaders.py [PATH/TO/plugen]   (default target/release/plugen)
"""
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import pandas as pd  # noqa: E402


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def check(folder, wanted_columns, cache):
    # fill-report.png is the fill's bar chart, not a face: it has no metadata row,
    # and imagefolder leaves it out.
    pngs = sorted(f for f in os.listdir(folder) if f.endswith(".png") and f != "fill-report.png")
    df = pd.read_json(os.path.join(folder, "metadata.jsonl"), lines=True)
    assert len(df) == len(pngs), (folder, len(df), len(pngs))
    assert list(df["file_name"]) == pngs, folder
    for c in wanted_columns:
        assert c in df.columns, (c, list(df.columns))
        assert df[c].notna().all(), c
    ds = datasets.load_dataset(
        "imagefolder", data_dir=folder, split="train", cache_dir=cache
    )
    assert len(ds) == len(pngs), (len(ds), len(pngs))
    row = ds[0]
    assert row["image"].size == (64, 64), row["image"].size
    for c in wanted_columns:
        assert c in ds.column_names, (c, ds.column_names)
    # The metadata row belongs to its image: the requested smile matches the readout's sign.
    for r in ds.select(range(min(8, len(ds)))):
        assert r["smile"] * r["readout_smile"] > 0, r
    print(f"ok: {folder}: {len(ds)} images, pandas and datasets agree")


def main():
    plugen = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/plugen")
    with tempfile.TemporaryDirectory() as tmp:
        have = os.path.join(tmp, "have.csv")
        with open(have, "w") as f:
            f.write("file_name,smile,male\n")
            for i, (s, m) in enumerate([(0, 0)] * 6 + [(0, 1)] * 4 + [(1, 0)] * 1 + [(1, 1)] * 3):
                f.write(f"img{i}.jpg,{s},{m}\n")
        filled = os.path.join(tmp, "filled")
        run(plugen, "fill", "--have", have, "--by", "smile,male", "--out", filled)
        check(filled, ["smile", "male", "readout_smile", "readout_male"], os.path.join(tmp, "hf1"))
        sampled = os.path.join(tmp, "sampled")
        run(plugen, "sample", "-n", "8", "--balance", "smile,male", "--out", sampled)
        check(sampled, ["smile", "male", "readout_smile"], os.path.join(tmp, "hf2"))


if __name__ == "__main__":
    main()
