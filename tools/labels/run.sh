#!/usr/bin/env bash
# Re-creates the default plugin's training data and the plugin itself:
#   1. plugen sample: 20 000 faces from the bundled generator, seed 2026
#   2. label.py: classifier labels from packaged models (latents.npy, labels.csv)
#   3. grids.py: top/bottom-16 grids per attribute, to look at
#   4. plugen train: the plugin, into models/dcgan-digiface64/
# Usage: tools/labels/run.sh [WORK_DIR]   (default: target/labels)
# Needs: pip install -r tools/labels/requirements.txt
#        pip install --no-deps -r tools/labels/requirements-nodeps.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-target/labels}
mkdir -p "$work"
cargo build --release
plugen=target/release/plugen
[ -f "$work/samples/manifest.jsonl" ] || $plugen sample -n 20000 --seed 2026 --out "$work/samples"
python3 tools/labels/label.py "$work/samples" --out "$work"
python3 tools/labels/grids.py "$work/samples" --scores "$work/scores.csv" --out "$work"
$plugen train --latents "$work/latents.npy" --labels "$work/labels.csv" \
  --meta tools/labels/attributes.json --seed 7 --out "$work/plugin"
echo "Plugin in $work/plugin; copy plugin.json, plugin.safetensors, plugin.latents.npy and"
echo "plugin.labels.csv into models/dcgan-digiface64/ to ship it."
