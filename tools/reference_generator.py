"""Independent numpy reference of the DCGAN generator, for plugen's parity test.

Reads the ORIGINAL PyTorch checkpoint shipped in the PyPI package
gan-face-generate 1.1.1 (never plugen's converted safetensors), runs the
generator in float64 with a direct scatter implementation of ConvTranspose2d
and eval-mode BatchNorm, and writes:

  tests/fixtures/parity_latents.npy  (8, 100) float32, fixed seed
  tests/fixtures/parity_images.npy   (8, 3, 64, 64) float32, tanh outputs

Re-run:
  pip download --no-deps gan-face-generate==1.1.1 -d /tmp/gfg && \
  unzip -o /tmp/gfg/gan_face_generate-1.1.1-py3-none-any.whl -d /tmp/gfg && \
  python3 tools/reference_generator.py /tmp/gfg/gan_face_generate/weights.tar
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import torch_zip  # noqa: E402

# (stride, padding) of the five ConvTranspose2d layers in gan_face_generate/models.py
LAYERS = [(1, 0), (2, 1), (2, 1), (2, 1), (2, 1)]
CONV_INDICES = [0, 3, 6, 9, 12]
BN_INDICES = [1, 4, 7, 10]
BN_EPS = 1e-5


def conv_transpose2d(x, w, stride, pad):
    """x: (N, Cin, H, W), w: (Cin, Cout, k, k) -> (N, Cout, Hout, Wout), by scattering."""
    n, cin, h, wd = x.shape
    _, cout, k, _ = w.shape
    full_h = (h - 1) * stride + k
    full_w = (wd - 1) * stride + k
    out = np.zeros((n, cout, full_h, full_w), dtype=np.float64)
    for ky in range(k):
        for kx in range(k):
            contrib = np.einsum("nchw,cd->ndhw", x, w[:, :, ky, kx])
            out[:, :, ky : ky + stride * h : stride, kx : kx + stride * wd : stride] += contrib
    hout = full_h - 2 * pad
    wout = full_w - 2 * pad
    return out[:, :, pad : pad + hout, pad : pad + wout]


def generate(state, z):
    x = z.astype(np.float64).reshape(z.shape[0], -1, 1, 1)
    for i, (stride, pad) in enumerate(LAYERS):
        w = state[f"main.{CONV_INDICES[i]}.weight"].astype(np.float64)
        x = conv_transpose2d(x, w, stride, pad)
        if i < len(BN_INDICES):
            b = BN_INDICES[i]
            g = state[f"main.{b}.weight"].astype(np.float64)[None, :, None, None]
            beta = state[f"main.{b}.bias"].astype(np.float64)[None, :, None, None]
            mean = state[f"main.{b}.running_mean"].astype(np.float64)[None, :, None, None]
            var = state[f"main.{b}.running_var"].astype(np.float64)[None, :, None, None]
            x = (x - mean) / np.sqrt(var + BN_EPS) * g + beta
            x = np.maximum(x, 0.0)
        else:
            x = np.tanh(x)
    return x


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    state = torch_zip.load(sys.argv[1], key="netG_state_dict")
    rng = np.random.default_rng(20220222)
    z = rng.standard_normal((8, 100)).astype(np.float32)
    z[7] *= 1.8  # one latent far out in the tail, where activations are large
    images = generate(state, z).astype(np.float32)
    out_dir = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    np.save(os.path.join(out_dir, "parity_latents.npy"), z)
    np.save(os.path.join(out_dir, "parity_images.npy"), images)
    print("wrote", images.shape, "range", float(images.min()), float(images.max()))


if __name__ == "__main__":
    main()
