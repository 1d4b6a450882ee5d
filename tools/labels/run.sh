#!/usr/bin/env bash
# Re-creates the default plugin's training labels and the plugin itself (v3, and
# v4 = v3 + the hand-labelled glasses and headwear):
#   1. plugen sample --no-plugin: 100 000 faces from the bundled generator, seed 2026
#      (the plugin keeps the seed, not the latents: `plugen train --latents-seed`)
#   2. label.py: labels from models that ship in packages (scores.csv, labels.csv)
#   3. grids.py: top/bottom-16 grids per attribute, to look at
#   4. plugen train: v3 into WORK_DIR/plugins/plugin-v3.json
#   5. plugen train --extend: v4 with glasses and headwear (tools/labels/hand/) next to it
# Copy plugin-v3.* and plugin-v4.* into models/dcgan-digiface64/ to ship them.
# Usage: tools/labels/run.sh [WORK_DIR]   (default: target/labels100k)
# Needs: pip install -r tools/labels/requirements.txt
#        pip install --no-deps -r tools/labels/requirements-nodeps.txt
# Takes about an hour on 2 cores (sampling 25 min, labelling 25 min, training 10 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-target/labels100k}
mkdir -p "$work"
cargo build --release
plugen=target/release/plugen
$plugen sample --no-plugin -n 100000 --seed 2026 --out "$work/samples" --resume
python3 tools/labels/label.py "$work/samples" --out "$work" --no-latents
python3 tools/labels/grids.py "$work/samples" --scores "$work/scores.csv" --out "$work"
$plugen train --latents-seed 2026 --labels "$work/labels.csv" --meta tools/labels/attributes.json \
  --seed 7 --epochs 12 --out "$work/plugins/plugin-v3.json"
# seed7100.csv lists images 000000.png … 000479.png in order: its label columns
# are the rows of seed 7100.
cut -d, -f2- tools/labels/hand/seed7100.csv > "$work/hand.csv"
$plugen train --extend "$work/plugins/plugin-v3.json" --latents-seed 7100 --labels "$work/hand.csv" \
  --meta tools/labels/hand/attributes.json
