#!/usr/bin/env bash
# Re-creates the default plugin's training labels and the plugin itself (v3, and
# v4 = v3 + the hand-labelled glasses and headwear):
#   1. plugen sample --no-plugin: 100 000 faces from the bundled generator, seed 2026
#      (the plugin keeps the seed, not the latents: `plugen train --latents-seed`)
#   2. label.py: labels from models that ship in packages (scores.csv, labels.csv)
#   3. grids.py: top/bottom-16 grids per attribute, to look at
#   4. plugen train: v3 into WORK_DIR/plugins/plugin-v3.json
#   5. plugen train --extend: v4 with glasses and headwear (tools/labels/hand/) next to it
#   6. the same two steps with the edit-distance term: v5 (the default) into WORK_DIR/plugins-v5/
# Copy plugin-v3.* and plugin-v4.* into models/dcgan-digiface64/ to ship them, and
# plugins-v5/plugin-v4.* as plugin-v5.* (the card's v5 section says what else).
# Usage: tools/labels/run.sh [WORK_DIR]   (default: target/labels100k)
# Needs: pip install -r tools/labels/requirements.txt
#        pip install --no-deps -r tools/labels/requirements-nodeps.txt
# Takes about an hour on 2 cores (sampling 25 min, labelling 25 min, training 25 min).
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
# v5 = v4's data and recipe with the edit-distance term (plugen train --edit-distance 1);
# the extension keeps the base's weight. Bundled as plugin-v5.json with v4's judge map
# (models/dcgan-digiface64/CARD.md, "v5") and `plugen calibrate --faces 1000`.
$plugen train --latents-seed 2026 --labels "$work/labels.csv" --meta tools/labels/attributes.json \
  --seed 7 --epochs 12 --edit-distance 1 --out "$work/plugins-v5/plugin-v3.json"
$plugen train --extend "$work/plugins-v5/plugin-v3.json" --latents-seed 7100 --labels "$work/hand.csv" \
  --meta tools/labels/hand/attributes.json
