"""A GPU peer for plugen's CUDA timings: the bundled DCGAN generator in PyTorch
(eager, and replayed as a CUDA graph), from the same generator.safetensors
read by tools/bench_peer.py's reader, on the first CUDA device. Also decodes
crates/plugen-core/tests/fixtures/parity_latents.npy and prints the largest difference from
tests/fixtures/parity_images.npy (tools/reference_generator.py's float64
numpy run of the original checkpoint), so the peer is checked before it is
timed. Prints one JSON object.

  python3 tools/gpu/torch_peer.py --model models/dcgan-digiface64 --repeats 50
Needs: torch with CUDA, numpy (the lent GPU machine has both).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_peer import read_safetensors  # noqa: E402


def build(weights, channels, device):
    layers = []
    n = len(channels) - 1
    for i in range(n):
        stride, pad = (1, 0) if i == 0 else (2, 1)
        conv = torch.nn.ConvTranspose2d(channels[i], channels[i + 1], 4, stride, pad, bias=False)
        conv.weight.data = torch.from_numpy(weights[f"blocks.{i}.conv.weight"].copy())
        layers.append(conv)
        if i + 1 < n:
            bn = torch.nn.BatchNorm2d(channels[i + 1], eps=1e-5)
            for p in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, p).data = torch.from_numpy(weights[f"blocks.{i}.bn.{p}"].copy())
            layers += [bn, torch.nn.ReLU()]
    layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers).to(device).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    manifest = json.load(open(os.path.join(args.model, "manifest.json")))
    channels = manifest["generator"]["channels"]
    weights = read_safetensors(os.path.join(args.model, manifest["weights"]))
    dev = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    net = build(weights, channels, dev)
    root = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "plugen-core", "tests", "fixtures")
    z = np.load(os.path.join(root, "parity_latents.npy"))
    want = np.load(os.path.join(root, "parity_images.npy"))
    with torch.no_grad():
        got = net(torch.from_numpy(z).to(dev).reshape(len(z), -1, 1, 1)).cpu().numpy()
    out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0),
           "parity_max_abs_diff": float(np.abs(got - want).max())}

    def timed(batch, graph):
        x = torch.randn(batch, channels[0], 1, 1, device=dev)
        with torch.no_grad():
            if graph:
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        net(x)
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    y = net(x)
                step = g.replay
            else:
                def step():
                    return net(x)

            for _ in range(5):
                step()
            torch.cuda.synchronize()
            runs = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                # Timed as plugen's bench times itself: the images back on the host.
                if graph:
                    step()
                    y.cpu()
                else:
                    step().cpu()
                runs.append((time.perf_counter() - t) * 1000 / batch)
        return float(np.median(runs))

    out["decode_b1_ms"] = timed(1, False)
    out["decode_b1_graph_ms"] = timed(1, True)
    out["decode_b64_ms_per_img"] = timed(64, False)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
