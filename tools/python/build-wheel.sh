#!/usr/bin/env bash
# Builds a wheel of plugen to share (target/wheels/plugen-*-abi3-*.whl): one
# file for every CPython >= 3.9 on this platform, carrying the default bundle
# (generator, encoder, the newest plugin, the judges; about 21 MB) so that
# `plugen.Model()` works offline wherever it is installed. The bundle's
# training tables stay in the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=python/plugen/models
m=models/dcgan-digiface64
rm -rf "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/dcgan-digiface64"
newest=$(ls "$m"/plugin-v*.json | sort -V | tail -1)
cp "$m"/manifest.json "$m"/generator.safetensors "$m"/encoder.json "$m"/encoder.safetensors \
   "$m"/CARD.md "$m"/LICENSE-gan-face-generate.txt "$newest" "${newest%.json}.safetensors" \
   "$stage/dcgan-digiface64/"
cp -r models/judges "$stage/judges"
python3 -m pip wheel --quiet --disable-pip-version-check --no-deps -w target/wheels .
ls -la target/wheels/plugen-*.whl
