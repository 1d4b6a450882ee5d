#!/usr/bin/env bash
# Builds plugen with the `cuda` feature on a machine without a GPU or a system
# CUDA: NVIDIA's CUDA 13.0 wheels from PyPI provide nvcc and the libraries, and
# a generated stub of the driver library (every entry point returns
# CUDA_ERROR_STUB_LIBRARY) satisfies the linker. The stub is for linking only:
# on the GPU machine the real driver's libcuda.so.1 must be found first.
# Usage: tools/build-cuda.sh [WORK_DIR]   (default: target/cuda-toolchain)
#        CUDA_COMPUTE_CAP=90 by default (H100/H200); set it for other GPUs.
# Output: target/cuda/release/plugen. At run time it needs libcuda.so.1 (driver),
# libcublas.so.13, libcublasLt.so.13, libcudart.so.13 and libcurand.so.10.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-target/cuda-toolchain}")
site=$work/site
home=$work/home
mkdir -p "$work"
if [ ! -x "$site/nvidia/cu13/bin/nvcc" ]; then
  # nvcc newer than 13.0 emits PTX that the 580 driver rejects; keep the nvvm extra
  # so pip does not pick a newer nvvm.
  pip install --quiet --target "$site" \
    "cuda-toolkit[cublas,cudart,curand,nvrtc,nvcc,crt,cccl,nvvm]==13.0.2"
fi
cu=$site/nvidia/cu13
mkdir -p "$home/lib64/stubs"
for d in bin include nvvm; do ln -sfn "$cu/$d" "$home/$d"; done
for f in "$cu"/lib/*.so.*; do ln -sf "$f" "$home/lib64/"; done
for l in cublas cublasLt cudart nvrtc; do ln -sf "lib$l.so.13" "$home/lib64/lib$l.so"; done
ln -sf libcurand.so.10 "$home/lib64/libcurand.so"
# Driver stub: one function per cu* symbol that cudarc's bindings name.
cargo fetch --quiet
sys=$(find "${CARGO_HOME:-$HOME/.cargo}"/registry/src -path '*cudarc-*/src/driver/sys/mod.rs' | sort | tail -n 1)
[ -n "$sys" ] || { echo "cudarc sources not found after cargo fetch" >&2; exit 1; }
{
  echo "/* link-time stub of the CUDA driver API: never load it at run time */"
  grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' "$sys" | sort -u | sed 's/.*/int &(void) { return 34; }/'
} > "$work/libcuda-stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib64/stubs/libcuda.so" "$work/libcuda-stub.c"
export CUDA_HOME=$home PATH=$home/bin:$PATH
export LIBRARY_PATH=$home/lib64:$home/lib64/stubs
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDARC_CUDA_VERSION=13000
export CUDAFORGE_THREADS=$(nproc)
CARGO_TARGET_DIR=target/cuda cargo build --release --features cuda
echo "built target/cuda/release/plugen (compute capability $CUDA_COMPUTE_CAP)"
