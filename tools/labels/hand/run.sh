#!/usr/bin/env bash
# Re-creates the bundled plugin's glasses and headwear version (plugin-v2) from
# the hand labels in seed7100.csv: those are labels made by eye, looking at
# numbered grids (tools/labels/hand_grid.py) of the faces of
#   plugen sample --no-plugin -n 480 --seed 7100
# (It extends v1 into the model folder's next free version: v2 when it was made.
# The same labels extend v3 into v4 in tools/labels/run.sh.)
# Usage: tools/labels/hand/run.sh [WORK_DIR]   (default: target/hand)
set -euo pipefail
cd "$(dirname "$0")/../../.."
work=${1:-target/hand}
cargo build --release
plugen=target/release/plugen
[ -f "$work/run/manifest.jsonl" ] || $plugen sample --no-plugin -n 480 --seed 7100 --out "$work/run"
python3 tools/labels/hand_grid.py "$work/run" "$work/grids"
rm -f "$work/set.npy" "$work/set.csv"
$plugen label "$work/run" --table tools/labels/hand/seed7100.csv --latents "$work/set.npy" --labels "$work/set.csv"
$plugen train --extend models/dcgan-digiface64/plugin.json --latents "$work/set.npy" --labels "$work/set.csv" \
  --meta tools/labels/hand/attributes.json
