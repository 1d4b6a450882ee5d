"""Read a PyTorch zip checkpoint into numpy arrays without PyTorch.

An independent reader for plugen's reference scripts: it unpickles `data.pkl`
with a restricted unpickler that only knows the handful of globals a plain
state dict uses, and maps every tensor storage to a numpy array. Anything
else in the pickle is refused, so no code from the checkpoint runs.
"""

import collections
import pickle
import zipfile

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


class _StorageRef:
    def __init__(self, dtype, key):
        self.dtype = dtype
        self.key = key


def _rebuild_tensor_v2(storage, offset, size, stride, *_rest):
    flat = storage
    if not size:
        return flat[offset].copy()
    itemsize = flat.itemsize
    return np.lib.stride_tricks.as_strided(
        flat[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


def load(path, key=None):
    """Return {name: np.ndarray} from a torch zip checkpoint (optionally under `key`)."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        prefix = names[0].split("/")[0]

        def storage(ref):
            raw = zf.read(f"{prefix}/data/{ref.key}")
            return np.frombuffer(raw, dtype=ref.dtype)

        class Restricted(pickle.Unpickler):
            def find_class(self, module, name):
                if module == "collections" and name == "OrderedDict":
                    return collections.OrderedDict
                if module == "torch._utils" and name == "_rebuild_tensor_v2":
                    return _rebuild_tensor_v2
                if module == "torch" and name in _DTYPES:
                    return _DTYPES[name]
                raise pickle.UnpicklingError(f"refusing global {module}.{name}")

            def persistent_load(self, pid):
                _tag, dtype, key, _location, _numel = pid
                return storage(_StorageRef(dtype, key))

        with zf.open(f"{prefix}/data.pkl") as f:
            obj = Restricted(f).load()
    if key is not None:
        obj = obj[key]
    return {k: np.asarray(v) for k, v in obj.items()}
