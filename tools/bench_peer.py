"""The peer for `plugen bench`: the same DCGAN generator, built as an ONNX graph
from the same weights (models/.../generator.safetensors, read without
safetensors' Python package) with the `onnx` helper API, run by onnxruntime's
CPU provider with a given thread count. Prints one JSON object:
  {"decode_b1_ms": [...runs], "decode_b64_ms_per_img": [...runs],
   "pngs_ms_per_img": [...runs], "onnxruntime": "1.x"}
pngs_ms_per_img: --pngs N faces decoded in batches of 64 and written one PNG
each with PIL (default zlib level), end to end, per image; --png-runs runs.

  python3 tools/bench_peer.py --model models/dcgan-digiface64 --threads 2 --repeats 30
Needs: pip install onnx onnxruntime numpy
"""

import argparse
import json
import os
import struct
import time

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).astype(np.float32)
    return out


def build_graph(weights, channels):
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    x = "z"
    layers = len(channels) - 1
    for i in range(layers):
        w = f"blocks.{i}.conv.weight"
        inits.append(numpy_helper.from_array(weights[w], w))
        stride, pad = (1, 0) if i == 0 else (2, 1)
        y = f"conv{i}"
        nodes.append(helper.make_node("ConvTranspose", [x, w], [y], kernel_shape=[4, 4], strides=[stride] * 2, pads=[pad] * 4))
        x = y
        if i + 1 < layers:
            names = [f"blocks.{i}.bn.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
            for n in names:
                inits.append(numpy_helper.from_array(weights[n], n))
            nodes.append(helper.make_node("BatchNormalization", [x, *names], [f"bn{i}"], epsilon=1e-5))
            nodes.append(helper.make_node("Relu", [f"bn{i}"], [f"relu{i}"]))
            x = f"relu{i}"
    nodes.append(helper.make_node("Tanh", [x], ["image"]))
    graph = helper.make_graph(
        nodes,
        "dcgan",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", channels[0], 1, 1])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", channels[-1], None, None])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--pngs", type=int, default=256)
    ap.add_argument("--png-runs", type=int, default=3)
    args = ap.parse_args()
    import onnxruntime as ort

    manifest = json.load(open(os.path.join(args.model, "manifest.json")))
    channels = manifest["generator"]["channels"]
    weights = read_safetensors(os.path.join(args.model, manifest["weights"]))
    model = build_graph(weights, channels)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)

    def timed(batch):
        z = rng.standard_normal((batch, channels[0], 1, 1)).astype(np.float32)
        for _ in range(3):
            sess.run(None, {"z": z})
        runs = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            sess.run(None, {"z": z})
            runs.append((time.perf_counter() - t) * 1000 / batch)
        return runs

    def pngs():
        import tempfile

        from PIL import Image

        runs = []
        for run in range(args.png_runs):
            with tempfile.TemporaryDirectory() as out:
                t = time.perf_counter()
                for start in range(0, args.pngs, 64):
                    n = min(64, args.pngs - start)
                    z = rng.standard_normal((n, channels[0], 1, 1)).astype(np.float32)
                    images = sess.run(None, {"z": z})[0]
                    # The project's pixel mapping: round((x + 1) * 127.5), clamped.
                    pixels = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
                    for j in range(n):
                        Image.fromarray(pixels[j].transpose(1, 2, 0)).save(os.path.join(out, f"{start + j:06}.png"))
                runs.append((time.perf_counter() - t) * 1000 / args.pngs)
        return runs

    print(
        json.dumps(
            {
                "decode_b1_ms": timed(1),
                "decode_b64_ms_per_img": timed(64),
                "pngs_ms_per_img": pngs(),
                "onnxruntime": ort.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
