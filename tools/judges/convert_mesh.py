"""Convert MediaPipe's face-landmark network to safetensors for plugen's Rust
mesh judge, and write its parity fixture.

    pip install numpy==2.4.6 h5py==3.16.0 pillow ai-edge-litert==2.3.0 tflite==2.18.0
    pip install --no-deps mediapipe==0.10.21
    python3 tools/judges/convert_mesh.py             # models/judges/face-mesh.safetensors
    python3 tools/judges/convert_mesh.py --fixture   # tests/fixtures/judges/mesh.json

Weights: `face_landmark.tflite` from the mediapipe 0.10.21 wheel
(Apache-2.0), the model tools/labels/mesh.py runs (through ai-edge-litert)
to label the default plugin's mouth, pose and eyes. The file is read with
the `tflite` package's flatbuffer schema; its float16 constants are kept
as they are (F16), named as in the file (`conv2d_1/Kernel`, ...). The graph
(192x192x3 input in [0, 1]; 3x3 convolutions, depthwise convolutions,
PReLU, residual adds, 2x2 max pools, zero channel padding; two outputs:
468 landmarks x 3 and a face-presence logit) is stored as JSON in the
file's `__metadata__["graph"]`, one entry per operation:
  {"op": "conv", "in": X, "out": Y, "weight": W, "bias": B, "stride": s, "same": bool}
      weight (cout, k, k, cin)
  {"op": "depthwise", "in": X, "out": Y, "weight": W, "bias": B, "stride": s, "same": bool}
      weight (1, k, k, c)
  {"op": "prelu", "in": X, "out": Y, "alpha": A}       alpha (1, 1, c)
  {"op": "add", "in": [X1, X2], "out": Y}
  {"op": "max_pool", "in": X, "out": Y, "size": k, "stride": s}   (valid)
  {"op": "pad_channels", "in": X, "out": Y, "extra": n}            (zeros after)
plus {"input": name, "landmarks": name, "face": name}. Anything else in the
file (fused activations, other padding) stops the conversion.

--fixture runs the labeller's own code (tools/labels/mesh.py: PIL's bicubic
upscale of the whole 64x64 frame, then ai-edge-litert) on the judges'
fixture faces and writes the landmarks, the face logit, the measures and a
SHA-256 of the upscaled frame, for plugen's parity test.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "labels"))
import mesh  # noqa: E402
from convert_fer import write_safetensors  # noqa: E402

OUT = os.path.join(ROOT, "models", "judges", "face-mesh.safetensors")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "judges", "mesh.json")


def convert(path):
    import tflite

    model = tflite.Model.GetRootAsModel(open(path, "rb").read(), 0)
    g = model.Subgraphs(0)
    op_names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    tensor = lambda i: g.Tensors(i)  # noqa: E731
    name = lambda i: tensor(i).Name().decode()  # noqa: E731

    def constant(i):
        t = tensor(i)
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        dtype = {tflite.TensorType.FLOAT16: "<f2", tflite.TensorType.FLOAT32: "<f4", tflite.TensorType.INT32: "<i4"}[t.Type()]
        return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(t.ShapeAsNumpy())

    weights, dequantized, graph = {}, {}, []

    def weight(i):
        n = name(i)
        if n in dequantized:
            n = dequantized[n]
        else:
            weights[n] = constant(i)
            assert weights[n].dtype == np.float16, f"{n} is not float16"
        return n

    def options(op, cls):
        o = cls()
        table = op.BuiltinOptions()
        o.Init(table.Bytes, table.Pos)
        return o

    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins, out = list(op.InputsAsNumpy()), name(op.Outputs(0))
        if kind == "DEQUANTIZE":
            src = name(ins[0])
            weights[src] = constant(ins[0])
            dequantized[out] = src
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            conv = kind == "CONV_2D"
            o = options(op, tflite.Conv2DOptions if conv else tflite.DepthwiseConv2DOptions)
            assert o.FusedActivationFunction() == 0 and o.StrideH() == o.StrideW(), kind
            assert conv or o.DepthMultiplier() == 1, "depth multiplier"
            assert o.DilationHFactor() == 1 and o.DilationWFactor() == 1, "dilation"
            graph.append({
                "op": "conv" if conv else "depthwise", "in": name(ins[0]), "out": out,
                "weight": weight(ins[1]), "bias": weight(ins[2]),
                "stride": int(o.StrideH()), "same": o.Padding() == tflite.Padding.SAME,
            })
        elif kind == "PRELU":
            graph.append({"op": "prelu", "in": name(ins[0]), "out": out, "alpha": weight(ins[1])})
        elif kind == "ADD":
            assert options(op, tflite.AddOptions).FusedActivationFunction() == 0, "fused activation"
            graph.append({"op": "add", "in": [name(ins[0]), name(ins[1])], "out": out})
        elif kind == "MAX_POOL_2D":
            o = options(op, tflite.Pool2DOptions)
            assert o.Padding() == tflite.Padding.VALID and o.FusedActivationFunction() == 0, "pool"
            assert o.FilterHeight() == o.FilterWidth() and o.StrideH() == o.StrideW(), "pool"
            graph.append({"op": "max_pool", "in": name(ins[0]), "out": out, "size": int(o.FilterHeight()), "stride": int(o.StrideH())})
        elif kind == "PAD":
            pads = constant(ins[1]).reshape(-1, 2)
            assert pads[:3].sum() == 0 and pads[3, 0] == 0, f"only channels are padded, after: {pads}"
            graph.append({"op": "pad_channels", "in": name(ins[0]), "out": out, "extra": int(pads[3, 1])})
        else:
            sys.exit(f"convert_mesh.py: operation {kind} is not supported")
    outputs = {tuple(tensor(g.Outputs(i)).ShapeAsNumpy())[-1]: name(g.Outputs(i)) for i in range(g.OutputsLength())}
    meta = {"input": name(g.Inputs(0)), "landmarks": outputs[1404], "face": outputs[1], "ops": graph}
    return weights, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", action="store_true")
    args = ap.parse_args()
    if args.fixture:
        fm = mesh.FaceMesh()
        faces_dir = os.path.join(ROOT, "tests", "fixtures", "judges", "faces")
        entries = []
        for f in sorted(os.listdir(faces_dir)):
            img = np.asarray(Image.open(os.path.join(faces_dir, f)).convert("RGB"))
            big = np.asarray(Image.fromarray(img).resize((mesh.SIZE, mesh.SIZE), Image.BICUBIC))
            lm, score = fm.landmarks(img)
            entries.append({
                "file": f,
                "upscaled_sha256": hashlib.sha256(big.tobytes()).hexdigest(),
                "face": score,
                "landmarks": [[round(float(v), 4) for v in p] for p in lm],
                "measures": mesh.measures(lm, score),
            })
        with open(FIXTURE, "w") as out:
            json.dump({"source": "tools/judges/convert_mesh.py --fixture (mediapipe 0.10.21 face_landmark.tflite, ai-edge-litert 2.3.0)", "faces": entries}, out, indent=1)
            out.write("\n")
        print(f"wrote {len(entries)} faces to {FIXTURE}")
        return
    weights, meta = convert(mesh.model_path())
    meta_strings = {"graph": json.dumps(meta, separators=(",", ":")), "source": "mediapipe 0.10.21 face_landmark.tflite (Apache-2.0)"}
    write_safetensors(OUT, weights, meta_strings, dtype="F16")
    digest = hashlib.sha256(open(OUT, "rb").read()).hexdigest()
    print(f"wrote {OUT}: {len(weights)} tensors, {len(meta['ops'])} operations; sha256 {digest}")


if __name__ == "__main__":
    main()
