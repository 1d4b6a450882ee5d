"""Report card of a plugin: conditional generation measured with the same
labellers on fresh seeds (never training latents).

For each binary attribute, N samples are drawn with the attribute requested at
+1, -1 and +2 (the others from the prior) and labelled; the table gives the
fraction the labeller calls positive (label.positive: probability >= 0.5, or
the mesh's mouth open), over the faces it could measure. For each continuous
attribute, 2N samples are split evenly over 10 requested values and the
Spearman correlation between requested and measured values is given. It also
reports mean |z| of the conditional latents against N(0, I)'s. Attributes the
plugin does not have are skipped.

  python3 tools/labels/evaluate.py PLUGIN_JSON WORK_DIR [-n 500]
"""

import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from label import label_values, positive  # noqa: E402

BINARY = ["smile", "mouth_open", "male"]
CONTINUOUS = ["yaw", "pitch", "eyes_open", "background", "skin_tone"]


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def sample_and_label(plugen, plugin, out, n, seed, extra):
    if not os.path.exists(os.path.join(out, "scores.csv")):
        run(plugen, "sample", "--plugin", plugin, "-n", str(n), "--seed", str(seed), "--out", out, *extra)
        run(sys.executable, os.path.join(HERE, "label.py"), out, "--no-latents")
    rows = [json.loads(l) for l in open(os.path.join(out, "manifest.jsonl"))]
    rows.sort(key=lambda r: r["index"])
    scores = list(csv.DictReader(open(os.path.join(out, "scores.csv"))))
    scores.sort(key=lambda r: int(r["index"]))
    return rows, scores


def spearman(a, b):
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plugin")
    ap.add_argument("work")
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--plugen", default=os.path.join(ROOT, "target", "release", "plugen"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    has = {a["name"] for a in json.load(open(args.plugin))["attributes"]}
    norms = []
    lines = ["| attribute | requested | result | n measured |", "|---|---|---|---|"]
    for k, attr in enumerate(BINARY):
        if attr not in has:
            continue
        for value in (1, -1, 2):
            out = os.path.join(args.work, f"cond_{attr}_{value}")
            rows, scores = sample_and_label(args.plugen, args.plugin, out, args.n, 5000 + 10 * k + value, ["--set", f"{attr}={value}"])
            got = [positive(attr, s) for s in scores]
            got = [g for g in got if g is not None]
            norms += [np.linalg.norm(r["latent"]) for r in rows]
            extra = ""
            if attr == "mouth_open":
                mouth = [float(s["mouth"]) for s in scores if positive(attr, s) is not None]
                extra = f" (median lip gap {np.median(mouth):.3f} of mouth width)"
            lines.append(f"| {attr} | {value:+d} | {np.mean(got):.1%} labelled positive{extra} | {len(got)} |")
    for k, attr in enumerate(CONTINUOUS):
        if attr not in has:
            continue
        out = os.path.join(args.work, f"cond_{attr}")
        rows, scores = sample_and_label(args.plugen, args.plugin, out, 2 * args.n, 6000 + k, ["--balance", attr, "--bins", "10"])
        asked = np.array([r["requested"][attr] for r in rows])
        got = np.array([np.nan if (v := label_values(s)[attr]) is None else v for s in scores], dtype=float)
        ok = np.isfinite(got)
        rho = spearman(asked[ok], got[ok])
        norms += [np.linalg.norm(r["latent"]) for r in rows]
        lo, hi = asked.min(), asked.max()
        ends = f"; measured median {np.median(got[ok & (asked == lo)]):.2f} at {lo:.2f}, {np.median(got[ok & (asked == hi)]):.2f} at {hi:.2f}"
        lines.append(f"| {attr} | 10 values over its range | Spearman {rho:.2f}{ends} | {int(ok.sum())} |")
    ref = np.linalg.norm(np.random.default_rng(0).standard_normal((20000, 100)), axis=1)
    norms = np.array(norms)
    lines.append("")
    lines.append(
        f"Mean |z| of conditional latents: {norms.mean():.2f} ± {norms.std():.2f} "
        f"(N(0, I) in 100-d: {ref.mean():.2f} ± {ref.std():.2f}; ratio {norms.mean() / ref.mean():.3f})."
    )
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(args.work, "report.md"), "w") as f:
        f.write(report + "\n")


if __name__ == "__main__":
    main()
