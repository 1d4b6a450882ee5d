#!/usr/bin/env python3
"""Does filling the rare cells help a downstream classifier?

From the labelled faces of the bundled generator (the default plugin's
training pairs: latents + labels from packaged classifiers), build a
deliberately skewed training set for a `smile` classifier in which smiling
women are rare, then train the same small classifier (logistic regression on
16x16 greyscale pixels, numpy) on
  (a) the skewed set,
  (b) the skewed set + `plugen fill --by smile,male` (labels: the requested cell),
  (c) the skewed set + as many unconditional `plugen sample` faces (labels: the
      plugin's smile readout),
and report average and worst-group accuracy on a balanced held-out set of
labelled faces (150 per smile x male group), mean +- std over seeds.

Caveat: the held-out faces come from the pool the default plugin was trained
on (there is no other labelled pool of this generator's faces offline).

Usage: tools/demo_fill/run.py [PATH/TO/plugen] [--seeds 3]   (needs numpy, pillow)
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image

MODEL = "models/dcgan-digiface64"
RARE = 25          # smiling women in the skewed set
COMMON = 600       # each other smile x male group
EVAL = 150         # per group, held out


def load_pool():
    z = np.load(os.path.join(MODEL, "plugin.latents.npy")).astype(np.float32)
    with open(os.path.join(MODEL, "plugin.labels.csv")) as f:
        header = f.readline().strip().split(",")
        rows = [line.rstrip("\n").split(",") for line in f]
    col = {n: i for i, n in enumerate(header)}
    smile = np.array([r[col["smile"]] for r in rows])
    male = np.array([r[col["male"]] for r in rows])
    known = (smile != "") & (male != "")
    return z[known], smile[known].astype(float).astype(int), male[known].astype(float).astype(int)


def render(plugen, latents, folder):
    os.makedirs(folder, exist_ok=True)
    npy = folder + ".npy"
    np.save(npy, latents)
    subprocess.run([plugen, "edit", "--latent", npy, "--all", "--out", folder],
                   check=True, stdout=subprocess.DEVNULL)
    return features([os.path.join(folder, f"{i:06}.png") for i in range(len(latents))])


def features(paths):
    x = np.stack([np.asarray(Image.open(p).convert("L").resize((16, 16), Image.BILINEAR),
                             dtype=np.float32).ravel() / 255.0 for p in paths])
    return x


def folder_features(folder):
    rows = [json.loads(line) for line in open(os.path.join(folder, "metadata.jsonl"))]
    x = features([os.path.join(folder, r["file_name"]) for r in rows])
    return x, rows


def train(x, y, seed, epochs=300, lr=0.5, l2=1e-3):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.01, xs.shape[1])
    b = 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(xs @ w + b)))
        g = p - y
        w -= lr * (xs.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return lambda q: ((((q - mu) / sd) @ w + b) > 0).astype(int)


def evaluate(predict, x, smile, male):
    pred = predict(x)
    groups = [((smile == s) & (male == m)) for s in (0, 1) for m in (0, 1)]
    accs = [float((pred[g] == smile[g]).mean()) for g in groups]
    return float((pred == smile).mean()), min(accs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plugen", nargs="?", default="target/release/plugen")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    plugen = os.path.abspath(args.plugen)
    z, smile, male = load_pool()
    results = {"a": [], "b": [], "c": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            rng = np.random.default_rng(100 + seed)
            order = rng.permutation(len(z))
            eval_idx, train_idx = [], []
            for s in (0, 1):
                for m in (0, 1):
                    g = [i for i in order if smile[i] == s and male[i] == m]
                    want = RARE if (s, m) == (1, 0) else COMMON
                    eval_idx += g[:EVAL]
                    train_idx += g[EVAL:EVAL + want]
            d = os.path.join(tmp, f"s{seed}")
            xe = render(plugen, z[eval_idx], d + "-eval")
            xt = render(plugen, z[train_idx], d + "-train")
            yt = smile[train_idx]
            have = d + "-have.csv"
            with open(have, "w") as f:
                f.write("smile,male\n")
                for i in train_idx:
                    f.write(f"{smile[i]},{male[i]}\n")
            subprocess.run([plugen, "fill", "--have", have, "--by", "smile,male",
                            "--seed", str(seed), "--out", d + "-fill"],
                           check=True, stdout=subprocess.DEVNULL)
            xf, rf = folder_features(d + "-fill")
            yf = np.array([int(r["smile"] > 0) for r in rf])
            subprocess.run([plugen, "sample", "-n", str(len(rf)), "--seed", str(seed),
                            "--out", d + "-sample"], check=True, stdout=subprocess.DEVNULL)
            xs, rs = folder_features(d + "-sample")
            ys = np.array([int(r["readout_smile"] > 0) for r in rs])
            sets = {
                "a": (xt, yt),
                "b": (np.concatenate([xt, xf]), np.concatenate([yt, yf])),
                "c": (np.concatenate([xt, xs]), np.concatenate([yt, ys])),
            }
            for k, (x, y) in sets.items():
                results[k].append(evaluate(train(x, y, seed), xe, smile[eval_idx], male[eval_idx]))
            print(f"seed {seed}: added {len(rf)} faces; "
                  + ", ".join(f"{k}: avg {v[-1][0]:.3f} worst {v[-1][1]:.3f}" for k, v in results.items()))
    names = {"a": "(a) skewed set", "b": "(b) + plugen fill", "c": "(c) + as many unconditional samples"}
    print(f"\n| training set ({args.seeds} seeds) | average accuracy | worst-group accuracy |")
    print("|---|---|---|")
    for k, v in results.items():
        v = np.array(v)
        print(f"| {names[k]} | {v[:, 0].mean():.3f} ± {v[:, 0].std():.3f} "
              f"| {v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} |")


if __name__ == "__main__":
    main()
