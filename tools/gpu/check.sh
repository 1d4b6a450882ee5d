#!/usr/bin/env bash
# One device check on a lent NVIDIA machine, run from the repository root there:
# plugen built here with the cuda feature (tools/build-cuda.sh; stripped and
# xz-compressed into target/gpu-carry/plugen.xz to fit the device tool's carry),
# timed and compared on cuda, wgpu (Vulkan) and the CPU, next to PyTorch on the
# same GPU (tools/gpu/torch_peer.py). Everything lands in $OUT (default
# target/gpu-check): JSON benches, sampled PNGs per device for a pixel
# comparison back home, the verified fills' hashes, and log.txt, packed as
# $OUT/gpu-check.tgz (the device tool brings back only a few files;
# tools/gpu/compare.py reads it). The device tool carries at most 64 MiB of
# tree and binary together: move models/dcgan-digiface64/plugin-v[234].safetensors
# aside for the run (they are not used) and put them back after.
# Usage: OUT=DIR tools/gpu/check.sh [BINARY_XZ]
set -uo pipefail
out=${OUT:-target/gpu-check}
mkdir -p "$out"
log=$out/log.txt
exec > >(tee -a "$log") 2>&1
xzbin=${1:-target/gpu-carry/plugen.xz}
bin=$(mktemp -d)/plugen
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$xzbin" "$bin" || exit 1
chmod +x "$bin"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nv=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null)
export LD_LIBRARY_PATH=$nv/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "libraries from $nv/cu13/lib"
ldd "$bin" | grep 'not found' && { echo "missing libraries"; exit 1; }
step() { local name=$1 limit=$2; shift 2; echo "== $name" >&2; local t=$SECONDS
  timeout "$limit" "$@"; echo "== $name: exit $? after $((SECONDS - t)) s" >&2; }
for d in cuda wgpu cpu; do
  step "bench $d" 120 "$bin" bench --device "$d" --no-peer --repeats 30 --json > "$out/bench-$d.json"
done
step "torch peer" 120 python3 tools/gpu/torch_peer.py --model models/dcgan-digiface64 --repeats 50 > "$out/torch.json"
# The README's rare cell: 40 smiling women against 600 in each other smile x male cell.
table=$(mktemp -d)/rare-cell.csv
python3 -c "
import sys
rows = ['file_name,smile,male']
for cell, n in (('1,0', 40), ('0,0', 600), ('1,1', 600), ('0,1', 600)):
    rows += [f'f{cell.replace(\",\", \"_\")}-{i}.png,{cell}' for i in range(n)]
open(sys.argv[1], 'w').write('\\n'.join(rows) + '\\n')" "$table"
for d in cuda wgpu cpu; do
  step "sample $d" 60 "$bin" sample -n 64 --seed 1 --verify off --device "$d" --out "$out/sample-$d"
  # The judge-verified fill of 560 smiling women: its images stay there, their
  # hashes and metadata come back.
  fill=$(mktemp -d)/fill
  step "fill $d" 90 "$bin" fill --have "$table" --by smile,male --seed 1 --device "$d" --out "$fill"
  (cd "$fill" 2>/dev/null && sha256sum ./*.png) > "$out/fill-$d.sha256"
  cp "$fill/metadata.jsonl" "$out/fill-$d.metadata.jsonl" 2>/dev/null
done
step "train cuda" 150 "$bin" bench --device cuda --no-peer --repeats 3 --train --json > "$out/train-cuda.json"
# Sampling end to end at a larger count, the time per device.
for d in cuda cpu; do
  step "sample 2048 $d" 60 "$bin" sample -n 2048 --seed 2 --verify off --device "$d" --out "$(mktemp -d)/s"
done
cat "$out/torch.json"
# The device tool brings back few files: one archive of everything.
tgz=$(mktemp -d)/gpu-check.tgz
tar -C "$out" -czf "$tgz" . && rm -rf "${out:?}"/* && mv "$tgz" "$out/"
