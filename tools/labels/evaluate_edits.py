"""Report card, part two: editing, identity, and a linear baseline, on fresh latents.

- Editing (PluGeN): N latents from N(0, I) (seeded, never training latents)
  are labelled. For each binary attribute, faces labelled positive are edited
  to -2 and the others to +2 (`plugen edit --all --set`); for the pose
  attributes every face is turned to the other side of frontal (+/-25 degrees
  of yaw, +/-15 of pitch around the mesh's frontal reading, -14). The edited
  faces are relabelled and we count how often the edit took (binary: the label
  flipped; pose: the measured angle moved at least half-way to the target),
  how often every *other* binary attribute kept its label, the mean absolute
  pixel change (0-1 scale), and identity: the share of edits whose dlib face
  descriptor stays within 0.6 of the original's ("same person", identity.py),
  and the mean descriptor distance.
- Linear baseline (InterFaceGAN-style): a class-balanced logistic regression
  from z to each binary label (a least-squares fit for the pose angles) on
  training data; the same latents are moved along its unit normal n to signed
  distance -2 / +2 from the boundary (pose: to the target angle) and measured
  the same way.

  python3 tools/labels/evaluate_edits.py WORK_DIR --plugin PLUGIN_JSON
      --train-latents LATENTS.npy --train-labels LABELS.csv [-n 500]
(rows of the two training files correspond; extra label rows are ignored)

Matched success (`--matched`, the field's protocol, as in PluGeN4Faces): each
method's strength is raised along a ladder until at least 95 % of its edits
take (binary: to -s / +s flow units for plugins, signed distance -s / +s for
the linear baseline; pose: the target offset times 1, 1.4, 1.8 while success
is still counted against the plain offset); the table reports each method at
the first strength that gets there (or at its strongest, marked, when none
does), on the same fresh faces: same person, other attributes kept, mean
|dz| and mean pixel change. Methods: the plugin's flow and minimal edits, its
judged edit (`plugen edit --until-judged`: asked +-3 for smile, male and
mouth_open, stopped where the judges read the asked side; asked the pose target
itself for yaw and pitch, steered until the face mesh reads it),
every `--compare NAME=PLUGIN_JSON`'s flow and minimal edits, and the linear
baseline. `--stop-per-face` adds, from the same folders, each face at the
first strength its own edit took (judged by the labeller: what an edit that
stops where a judge agrees could reach).

  python3 tools/labels/evaluate_edits.py WORK_DIR --matched --plugin V4_JSON
      --compare v5=V5_JSON --train-latents ... --train-labels ... [-n 200]
      [--methods 'base judged' linear] [--attributes yaw pitch]
"""

import argparse
import csv
import os
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from identity import SAME_PERSON, descriptors as identity_descriptors  # noqa: E402
from label import label_values, positive  # noqa: E402

BINARY = ["smile", "mouth_open", "male"]
POSE = {"yaw": (0.0, 25.0), "pitch": (-14.0, 15.0)}  # centre, offset of the target


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def render_and_label(plugen, plugin, latents_path, out, sets=(), mode="flow"):
    if not os.path.exists(os.path.join(out, "scores.csv")):
        extra = [a for s in sets for a in ("--set", s)]
        how = ["--mode", "flow", "--until-judged"] if mode == "judged" else ["--mode", mode]
        run(plugen, "edit", "--all", *how, "--plugin", plugin, "--latent", latents_path, "--out", out, *extra)
        run(sys.executable, os.path.join(HERE, "label.py"), out, "--no-latents")
    scores = list(csv.DictReader(open(os.path.join(out, "scores.csv"))))
    scores.sort(key=lambda r: int(r["index"]))
    return scores


def pixels(out, n):
    return np.stack([np.asarray(Image.open(os.path.join(out, f"{i:06}.png")).convert("RGB")) for i in range(n)])


def descriptors(out, px):
    path = os.path.join(out, "identity.npy")
    if not os.path.exists(path):
        np.save(path, identity_descriptors(px))
    return np.load(path)


def others_kept(attr, label, idx, scores):
    """(kept, counted): how many labels of the binary attributes other than
    `attr` are the same after the edit (faces idx, edited scores) as before."""
    kept = counted = 0
    for other in BINARY:
        if other == attr:
            continue
        for i, s in zip(idx, scores):
            before, after = label[other][i], positive(other, s)
            if before is not None and after is not None:
                kept += int(before == after)
                counted += 1
    return kept, counted


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


def least_squares(z, y):
    a = np.hstack([z, np.ones((len(z), 1))])
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    return coef[:-1], coef[-1]


BINARY_LADDER = {"plugin": [1.0, 1.5, 2.0, 2.5, 3.0], "linear": [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]}
POSE_LADDER = [1.0, 1.4, 1.8]
TARGET = 0.95
JUDGED = ("smile", "male", "mouth_open")  # the attributes plugen's judges decide (`--until-judged`)


def latents_of(out):
    import json

    rows = [json.loads(line) for line in open(os.path.join(out, "manifest.jsonl"))]
    return np.array([r["latent"] for r in rows], dtype=np.float32)


def fresh_faces(args):
    """args.n fresh latents (seed 777), rendered and labelled in WORK/fresh, and
    the linear baseline's training rows: (z, pixels, identity descriptors,
    binary labels per attribute, label values per face, train latents, train rows)."""
    os.makedirs(args.work, exist_ok=True)
    z = np.random.default_rng(777).standard_normal((args.n, 100)).astype(np.float32)
    base_path = os.path.join(args.work, "fresh.npy")
    np.save(base_path, z)
    base_dir = os.path.join(args.work, "fresh")
    base = render_and_label(args.plugen, args.plugin, base_path, base_dir)
    base_px = pixels(base_dir, args.n)
    base_id = descriptors(base_dir, base_px)
    label = {a: [positive(a, s) for s in base] for a in BINARY}
    base_vals = [label_values(s) for s in base]
    train_z = np.load(args.train_latents).astype(np.float64)
    train_rows = list(csv.DictReader(open(args.train_labels)))[: len(train_z)]
    return z, base_px, base_id, label, base_vals, train_z[: len(train_rows)], train_rows


def matched(args):
    """The matched-success table; see the module documentation."""
    z, base_px, base_id, label, base_vals, train_z, train_rows = fresh_faces(args)

    plugins = [("v4" if "v4" in os.path.basename(args.plugin) else "base", args.plugin)]
    plugins += [tuple(c.split("=", 1)) for c in args.compare]
    modes = ("flow", "minimal", "judged")
    methods = [(f"{n} {m}", p, m) for n, p in plugins for m in modes] + [("linear", None, None)]
    if args.methods:
        methods = [m for m in methods if m[0] in args.methods]

    def run_edit(tag, idx, latents, plugin, mode, sets):
        p = os.path.join(args.work, f"{tag}.npy")
        np.save(p, latents.astype(np.float32))
        out = os.path.join(args.work, tag)
        scores = render_and_label(args.plugen, plugin or args.plugin, p, out, sets, mode or "flow")
        px = pixels(out, len(idx))
        return scores, px, descriptors(out, px), latents_of(out)

    def row(attr, method, strength, reached, groups):
        total = sum(len(g[0]) for g in groups)
        took = sum(int(np.sum(g[4])) for g in groups)
        kept = kept_total = 0
        dist, change, dz = [], [], []
        for idx, scores, px, ids, success, lat in groups:
            k, t = others_kept(attr, label, idx, scores)
            kept, kept_total = kept + k, kept_total + t
            dist.append(np.linalg.norm(ids - base_id[idx], axis=1))
            change.append(np.abs(px.astype(np.float32) - base_px[idx].astype(np.float32)).mean(axis=(1, 2, 3)) / 255)
            dz.append(np.linalg.norm(lat - z[idx], axis=1))
        dist, change, dz = map(np.concatenate, (dist, change, dz))
        mark = "" if reached else " (never 95 %)"
        return (
            f"| {attr} | {method} | {strength:g}{mark} | {took / total:.1%} | {kept / max(kept_total, 1):.1%} | "
            f"{(dist < SAME_PERSON).mean():.1%} | {dist.mean():.3f} | {dz.mean():.2f} | {change.mean():.3f} | {total} |"
        )

    steered = []
    lines = [
        "| attribute | method | strength | edit took | others kept | same person | identity distance | mean \\|Δz\\| | mean pixel change | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def stopped_per_face(tried):
        """Each face's edit at the first strength tried at which it took (else the
        last): the same success as the last strength, moving no further than needed."""
        groups = []
        for g in range(len(tried[-1])):
            n = len(tried[-1][g][0])
            pick = [next((k for k in range(len(tried)) if tried[k][g][4][j]), len(tried) - 1) for j in range(n)]
            at = [tried[k][g] for k in pick]
            groups.append(
                (
                    tried[-1][g][0],
                    [a[1][j] for j, a in enumerate(at)],
                    np.stack([a[2][j] for j, a in enumerate(at)]),
                    np.stack([a[3][j] for j, a in enumerate(at)]),
                    [a[4][j] for j, a in enumerate(at)],
                    np.stack([a[5][j] for j, a in enumerate(at)]),
                )
            )
        return groups

    def ladder_for(attr, name, plugin, mode, edit_groups):
        if mode == "judged":
            # `plugen edit --until-judged` stops (binary) or steers (pose) each face itself
            ladder = [1.0] if attr in POSE else [3.0]
        else:
            ladder = POSE_LADDER if attr in POSE else BINARY_LADDER["linear" if plugin is None else "plugin"]
        last, tried = None, []
        for s in ladder:
            groups = edit_groups(s)
            tried.append(groups)
            total = sum(len(g[0]) for g in groups)
            rate = sum(int(np.sum(g[4])) for g in groups) / max(total, 1)
            print(f"  {attr} {name} strength {s:g}: {rate:.1%}", flush=True)
            last = (s, rate >= TARGET, groups)
            if rate >= TARGET:
                break
        lines.append(row(attr, name, *last))
        print(lines[-1], flush=True)
        if args.stop_per_face and len(tried) > 1:
            steered.append(row(attr, f"{name}, stopped per face", last[0], last[1], stopped_per_face(tried)))
            print(steered[-1], flush=True)

    for attr in [a for a in BINARY if a in args.attributes]:
        y = np.array([r[attr] for r in train_rows])
        known = y != ""
        w, b = logistic(train_z[known], y[known].astype(float))
        n_hat = w / np.linalg.norm(w)
        d = (z @ w + b) / np.linalg.norm(w)
        for name, plugin, mode in methods:
            if mode == "judged" and attr not in JUDGED:
                continue
            tag = name.replace(" ", "_")

            def edit_groups(s):
                groups = []
                for side, want, value in (("pos", True, -s), ("neg", False, s)):
                    idx = np.array([i for i, v in enumerate(label[attr]) if v is want], dtype=int)
                    if len(idx) == 0:
                        continue
                    if plugin is None:
                        moved = z[idx] + (value - d[idx])[:, None] * n_hat[None, :]
                        res = run_edit(f"{tag}_{attr}_{side}_{s:g}", idx, moved, None, None, [])
                    else:
                        res = run_edit(f"{tag}_{attr}_{side}_{s:g}", idx, z[idx], plugin, mode, [f"{attr}={value:g}"])
                    scores, px, ids, lat = res
                    success = [positive(attr, x) is (not want) for x in scores]
                    groups.append((idx, scores, px, ids, success, lat))
                return groups

            ladder_for(attr, name, plugin, mode, edit_groups)

    for attr, (centre, offset) in [(a, p) for a, p in POSE.items() if a in args.attributes]:
        before = np.array([np.nan if v[attr] is None else v[attr] for v in base_vals], dtype=float)
        idx = np.nonzero(np.isfinite(before))[0]
        side_of = np.where(before[idx] < centre, 1.0, -1.0)
        y = np.array([r[attr] for r in train_rows])
        known = y != ""
        w, b = least_squares(train_z[known], y[known].astype(float))
        for name, plugin, mode in methods:
            tag = name.replace(" ", "_")

            def edit_groups(s):
                groups = []
                for sign in (1.0, -1.0):
                    sel = idx[side_of == sign]
                    asked = centre + sign * offset * s
                    if plugin is None:
                        moved = z[sel] + ((asked - (z[sel] @ w + b)) / (w @ w))[:, None] * w[None, :]
                        res = run_edit(f"{tag}_{attr}_{sign:+.0f}_{s:g}", sel, moved, None, None, [])
                    else:
                        res = run_edit(f"{tag}_{attr}_{sign:+.0f}_{s:g}", sel, z[sel], plugin, mode, [f"{attr}={asked:g}"])
                    scores, px, ids, lat = res
                    after = np.array([np.nan if (v := label_values(x)[attr]) is None else v for x in scores], dtype=float)
                    need = centre + sign * offset - before[sel]
                    success = np.nan_to_num((after - before[sel]) * need, nan=-1.0) >= 0.5 * need**2
                    groups.append((sel, scores, px, ids, success, lat))
                return groups

            ladder_for(attr, name, plugin, mode, edit_groups)

    if steered:
        lines += ["", "Stopped per face (each face at the first ladder strength its edit took, judged by the labeller):", ""]
        lines += lines[:2] + steered
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(args.work, "report_matched.md"), "w") as f:
        f.write(report + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--train-latents", required=True)
    ap.add_argument("--train-labels", required=True)
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--minimal", action="store_true", help="also measure `plugen edit --mode minimal`")
    ap.add_argument("--plugen", default=os.path.join(ROOT, "target", "release", "plugen"))
    ap.add_argument("--matched", action="store_true", help="each method at the strength where 95 %% of edits take")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=PLUGIN_JSON", help="another plugin (--matched)")
    ap.add_argument(
        "--stop-per-face",
        action="store_true",
        help="(--matched) also each face at the first strength its edit took, judged by the labeller",
    )
    ap.add_argument("--methods", nargs="*", help="only these methods (--matched), e.g. 'v4 flow' linear")
    ap.add_argument(
        "--attributes", nargs="*", default=BINARY + list(POSE), help="only these attributes, e.g. yaw pitch"
    )
    args = ap.parse_args()
    if args.matched:
        return matched(args)
    z, base_px, base_id, label, base_vals, train_z, train_rows = fresh_faces(args)

    lines = [
        "| attribute | method | edit took | others kept | same person | identity distance | mean pixel change | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    linear_cond = []
    methods = ["PluGeN", "PluGeN minimal", "linear"] if args.minimal else ["PluGeN", "linear"]

    def measure(attr, method, groups):
        took = kept = kept_total = total = same = 0
        dist, change = [], []
        for g in groups:
            idx, scores, px, ids, success = g
            total += len(idx)
            took += int(sum(success))
            k, t = others_kept(attr, label, idx, scores)
            kept, kept_total = kept + k, kept_total + t
            d = np.linalg.norm(ids - base_id[idx], axis=1)
            dist.append(d)
            same += int((d < SAME_PERSON).sum())
            change.append(np.abs(px.astype(np.float32) - base_px[idx].astype(np.float32)).mean(axis=(1, 2, 3)) / 255)
        dist, change = np.concatenate(dist), np.concatenate(change)
        lines.append(
            f"| {attr} | {method} | {took / total:.1%} | {kept / max(kept_total, 1):.1%} | {same / total:.1%} | "
            f"{dist.mean():.3f} | {change.mean():.3f} | {total} |"
        )

    def edited(name, idx, latents, sets, mode="flow"):
        p = os.path.join(args.work, f"{name}.npy")
        np.save(p, latents.astype(np.float32))
        out = os.path.join(args.work, name)
        scores = render_and_label(args.plugen, args.plugin, p, out, sets, mode)
        px = pixels(out, len(idx))
        return scores, px, descriptors(out, px)

    for attr in [a for a in BINARY if a in args.attributes]:
        y = np.array([r[attr] for r in train_rows])
        known = y != ""
        w, b = logistic(train_z[known], y[known].astype(float))
        n_hat = w / np.linalg.norm(w)
        d = (z @ w + b) / np.linalg.norm(w)
        for method in methods:
            groups = []
            for name, want, value in (("pos", True, -2), ("neg", False, 2)):
                idx = np.array([i for i, v in enumerate(label[attr]) if v is want], dtype=int)
                if len(idx) == 0:
                    continue
                if method == "PluGeN":
                    scores, px, ids = edited(f"edit_{attr}_{name}", idx, z[idx], [f"{attr}={value}"])
                elif method == "PluGeN minimal":
                    scores, px, ids = edited(f"min_{attr}_{name}", idx, z[idx], [f"{attr}={value}"], "minimal")
                else:
                    moved = z[idx] + (value - d[idx])[:, None] * n_hat[None, :]
                    scores, px, ids = edited(f"lin_{attr}_{name}", idx, moved, [])
                success = [positive(attr, s) is (not want) for s in scores]
                groups.append((idx, scores, px, ids, success))
            measure(attr, method, groups)
        for t in (2.0, -2.0):
            moved = z + (t - d)[:, None] * n_hat[None, :]
            p = os.path.join(args.work, f"lincond_{attr}_{t:+.0f}.npy")
            np.save(p, moved.astype(np.float32))
            scores = render_and_label(args.plugen, args.plugin, p, os.path.join(args.work, f"lincond_{attr}_{t:+.0f}"))
            got = [g for g in (positive(attr, s) for s in scores) if g is not None]
            linear_cond.append((attr, t, np.mean(got), np.linalg.norm(moved, axis=1).mean()))

    for attr, (centre, offset) in [(a, p) for a, p in POSE.items() if a in args.attributes]:
        before = np.array([np.nan if v[attr] is None else v[attr] for v in base_vals], dtype=float)
        idx = np.nonzero(np.isfinite(before))[0]
        target = np.where(before[idx] < centre, centre + offset, centre - offset)
        y = np.array([r[attr] for r in train_rows])
        known = y != ""
        w, b = least_squares(train_z[known], y[known].astype(float))
        for method in methods:
            groups = []
            for side in (centre + offset, centre - offset):
                sel = idx[target == side]
                if method == "PluGeN":
                    scores, px, ids = edited(f"edit_{attr}_{side:+.0f}", sel, z[sel], [f"{attr}={side}"])
                elif method == "PluGeN minimal":
                    scores, px, ids = edited(f"min_{attr}_{side:+.0f}", sel, z[sel], [f"{attr}={side}"], "minimal")
                else:
                    moved = z[sel] + ((side - (z[sel] @ w + b)) / (w @ w))[:, None] * w[None, :]
                    scores, px, ids = edited(f"lin_{attr}_{side:+.0f}", sel, moved, [])
                after = np.array([np.nan if (v := label_values(s)[attr]) is None else v for s in scores], dtype=float)
                need = side - before[sel]
                success = np.nan_to_num((after - before[sel]) * need, nan=-1.0) >= 0.5 * need**2
                groups.append((sel, scores, px, ids, success))
            measure(attr, method, groups)

    lines += ["", "| attribute | linear baseline, requested | labelled positive | mean \\|z\\| |", "|---|---|---|---|"]
    for attr, t, rate, norm in linear_cond:
        lines.append(f"| {attr} | {t:+.0f} | {rate:.1%} | {norm:.2f} |")
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(args.work, "report_edits.md"), "w") as f:
        f.write(report + "\n")


if __name__ == "__main__":
    main()
