#!/usr/bin/env python3
"""Speed of plugen from Python against the CLI, measured in one run.

    python3 tools/python/bench_sample.py [-n 1000] [--repeats 3] [--plugen target/release/plugen]

Times `plugen.Model().sample(n)` (load + faces in memory, as numpy arrays)
against the CLI's `plugen sample -n N` (load + faces written as PNGs), both on
the CPU with the same seed, the median of --repeats runs each, and prints the
ratio. It also times the Python side with the PNGs written through
`plugen.save_png`, so the two do the same work.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import plugen

REPO = Path(__file__).resolve().parents[2]


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plugen", default=str(REPO / "target" / "release" / "plugen"))
    args = ap.parse_args()
    n = args.n

    def cli():
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([args.plugen, "sample", "-n", str(n), "--seed", "0", "--device", "cpu",
                            "--out", d], check=True, capture_output=True)

    def python_memory():
        plugen.Model(device="cpu").sample(n, seed=0)

    def python_pngs():
        s = plugen.Model(device="cpu").sample(n, seed=0)
        with tempfile.TemporaryDirectory() as d:
            for i, im in zip(s.indices, s.images):
                plugen.save_png(im, Path(d) / f"{i:06}.png")

    python_memory()  # warm the page cache
    t_cli = median_time(cli, args.repeats)
    t_mem = median_time(python_memory, args.repeats)
    t_png = median_time(python_pngs, args.repeats)
    print(f"{n} faces, CPU, median of {args.repeats}")
    print(f"  plugen sample -n {n} (load + PNGs)      {t_cli:7.2f} s")
    print(f"  Model().sample({n}) (load, in memory)   {t_mem:7.2f} s   {t_mem / t_cli:5.2f}x the CLI")
    print(f"  Model().sample({n}) + save_png each    {t_png:7.2f} s   {t_png / t_cli:5.2f}x the CLI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
