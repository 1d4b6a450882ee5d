#!/usr/bin/env bash
# Builds the editor for the browser into target/web/: index.html, the wasm
# module and its JS glue (wasm-bindgen), and the default model's files with
# models/files.json, the list the page fetches. Serve it with any static host:
#   tools/build-web.sh && python3 -m http.server -d target/web
# Needs the wasm32-unknown-unknown target, wasm-bindgen-cli of the version
# Cargo.lock pins (installed with cargo if missing) and Debian's binaryen
# (wasm-opt; installed with apt if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/web

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $want\$"; then
  echo "build-web: installing wasm-bindgen-cli $want"
  cargo install wasm-bindgen-cli --version "$want"
fi
if ! command -v wasm-opt >/dev/null; then
  echo "build-web: installing binaryen (wasm-opt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends binaryen
fi

cargo rustc --profile web --lib --target wasm32-unknown-unknown --crate-type cdylib
rm -rf "$out"
mkdir -p "$out/models"
wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name plugen \
  target/wasm32-unknown-unknown/web/plugen.wasm
wasm-opt -O2 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$out/plugen_bg.wasm" -o "$out/plugen_bg.wasm"
python3 tools/web/fix_table_export.py "$out/plugen_bg.wasm"
cp web/index.html "$out/"

# The default model: its manifest, generator, card and licences, its newest
# plugin version, and the judges beside it.
model=dcgan-digiface64
src=models/$model
plugin=$(ls "$src"/plugin-v*.json 2>/dev/null | sort -V | tail -n 1)
plugin=${plugin:-$src/plugin.json}
weights=$(sed -n 's/^  "weights": "\(.*\)",\{0,1\}$/\1/p' "$plugin")
files=("$model/manifest.json" "$model/generator.safetensors" "$model/CARD.md"
       "$model/$(basename "$plugin")" "$model/$weights")
for f in "$src"/LICENSE* models/judges/*; do files+=("${f#models/}"); done
{
  printf '{\n  "model": "%s",\n  "files": [\n' "$model"
  sep=""
  for f in "${files[@]}"; do
    mkdir -p "$out/models/$(dirname "$f")"
    cp "models/$f" "$out/models/$f"
    printf '%s    {"path": "%s", "bytes": %d}' "$sep" "$f" "$(stat -c %s "models/$f")"
    sep=$',\n'
  done
  printf '\n  ]\n}\n'
} > "$out/models/files.json"

wasm=$(stat -c %s "$out/plugen_bg.wasm")
models=$(du -sb "$out/models" | cut -f1)
awk -v out="$out" -v w="$wasm" -v m="$models" 'BEGIN {
  printf "build-web: %s: wasm %.1f MB (after wasm-opt), model files %.1f MB\n", out, w / 1e6, m / 1e6 }'
