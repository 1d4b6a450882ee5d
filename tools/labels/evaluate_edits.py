"""Report card, part two: editing and a linear baseline, on fresh latents.

- Editing (PluGeN): N latents from N(0, I) (seeded, never training latents)
  are labelled; for each binary attribute, faces labelled positive are edited
  to -2 and the others to +2 (`plugen edit --all`), relabelled, and we count
  how often the attribute flipped, how often every *other* binary attribute
  kept its label, and the mean absolute pixel change (0-1 scale).
- Linear baseline (InterFaceGAN-style): a logistic regression from z to each
  binary label on the training data (models/dcgan-digiface64/plugin.latents.npy, plugin.labels.csv); the same latents are
  moved along the unit normal n to signed distance -2 / +2 from the boundary
  (z' = z + (t - d(z)) n) and measured the same way.

  python3 tools/labels/evaluate_edits.py WORK_DIR [-n 500]
"""

import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BINARY = {"smile": "happy", "mouth_open": "surprise", "male": "male"}


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def npy_save(path, z):
    np.save(path, z.astype(np.float32))


def render_and_label(plugen, latents_path, out, sets=()):
    if not os.path.exists(os.path.join(out, "scores.csv")):
        extra = [a for s in sets for a in ("--set", s)]
        run(plugen, "edit", "--all", "--latent", latents_path, "--out", out, *extra)
        run(sys.executable, os.path.join(HERE, "label.py"), out)
    scores = list(csv.DictReader(open(os.path.join(out, "scores.csv"))))
    scores.sort(key=lambda r: int(r["index"]))
    return scores


def pixels(out, n):
    return np.stack([np.asarray(Image.open(os.path.join(out, f"{i:06}.png")), dtype=np.float32) / 255 for i in range(n)])


def logistic(z, y, steps=3000, lr=0.5, l2=1e-3):
    w, b = np.zeros(z.shape[1]), 0.0
    pos = y.mean()
    weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = weight * (p - y)
        w -= lr * (z.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return w, b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--plugen", default=os.path.join(ROOT, "target", "release", "plugen"))
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    z = np.random.default_rng(777).standard_normal((args.n, 100)).astype(np.float32)
    base_path = os.path.join(args.work, "fresh.npy")
    npy_save(base_path, z)
    base = render_and_label(args.plugen, base_path, os.path.join(args.work, "fresh"))
    base_px = pixels(os.path.join(args.work, "fresh"), args.n)
    label = {a: np.array([float(s[c]) >= 0.5 for s in base]) for a, c in BINARY.items()}

    train_z = np.load(os.path.join(HERE, "..", "..", "models", "dcgan-digiface64", "plugin.latents.npy"))
    train_rows = list(csv.DictReader(open(os.path.join(HERE, "..", "..", "models", "dcgan-digiface64", "plugin.labels.csv"))))
    lines = [
        "| attribute | method | flipped | others kept | mean pixel change |",
        "|---|---|---|---|---|",
    ]
    linear_cond = []
    for attr, column in BINARY.items():
        lab = label[attr]
        results = {}
        # PluGeN: edit positives to -2, negatives to +2.
        edited = {}
        for name, mask, value in (("pos", lab, -2), ("neg", ~lab, 2)):
            idx = np.nonzero(mask)[0]
            if len(idx) == 0:
                continue
            p = os.path.join(args.work, f"edit_{attr}_{name}.npy")
            npy_save(p, z[idx])
            out = os.path.join(args.work, f"edit_{attr}_{name}")
            edited[name] = (idx, render_and_label(args.plugen, p, out, [f"{attr}={value}"]), pixels(out, len(idx)))
        results["PluGeN"] = edited
        # Linear: logistic regression on the training labels.
        y = np.array([r[attr] for r in train_rows])
        known = y != ""
        w, b = logistic(train_z[known].astype(np.float64), y[known].astype(float))
        nrm = np.linalg.norm(w)
        n_hat = w / nrm
        d = (z @ w + b) / nrm
        edited = {}
        for name, mask, t in (("pos", lab, -2.0), ("neg", ~lab, 2.0)):
            idx = np.nonzero(mask)[0]
            if len(idx) == 0:
                continue
            moved = z[idx] + (t - d[idx])[:, None] * n_hat[None, :]
            p = os.path.join(args.work, f"lin_{attr}_{name}.npy")
            npy_save(p, moved)
            out = os.path.join(args.work, f"lin_{attr}_{name}")
            edited[name] = (idx, render_and_label(args.plugen, p, out), pixels(out, len(idx)))
        results["linear"] = edited
        # Linear conditional generation at +2 / -2 from fresh N(0, I) samples.
        for t in (2.0, -2.0):
            moved = z + (t - d)[:, None] * n_hat[None, :]
            p = os.path.join(args.work, f"lincond_{attr}_{t:+.0f}.npy")
            npy_save(p, moved)
            scores = render_and_label(args.plugen, p, os.path.join(args.work, f"lincond_{attr}_{t:+.0f}"))
            linear_cond.append((attr, t, np.mean([float(s[column]) >= 0.5 for s in scores]), np.linalg.norm(moved, axis=1).mean()))
        for method, edited in results.items():
            flipped = kept = total = kept_total = 0
            change = []
            for name, (idx, scores, px) in edited.items():
                now = np.array([float(s[column]) >= 0.5 for s in scores])
                flipped += int((now != lab[idx]).sum())
                total += len(idx)
                for other, ocol in BINARY.items():
                    if other == attr:
                        continue
                    o_now = np.array([float(s[ocol]) >= 0.5 for s in scores])
                    kept += int((o_now == label[other][idx]).sum())
                    kept_total += len(idx)
                change.append(np.abs(px - base_px[idx]).mean(axis=(1, 2, 3)))
            lines.append(
                f"| {attr} | {method} | {flipped / total:.1%} | {kept / kept_total:.1%} | {np.concatenate(change).mean():.3f} |"
            )
    lines += ["", "| attribute | linear baseline, requested | labelled positive | mean |z| |", "|---|---|---|---|"]
    for attr, t, rate, norm in linear_cond:
        lines.append(f"| {attr} | {t:+.0f} | {rate:.1%} | {norm:.2f} |")
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(args.work, "report_edits.md"), "w") as f:
        f.write(report + "\n")


if __name__ == "__main__":
    main()
