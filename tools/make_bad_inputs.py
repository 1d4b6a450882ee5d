"""Writes the bad-input corpus under tests/bad_inputs/ (re-run to recreate it).

Every file is something a user could hand plugen by mistake or on purpose;
the test crates/plugen-core/tests/bad_inputs.rs feeds each to its loader and
expects a clear error naming the file, quickly, without a panic or a huge
allocation. Needs only the Python standard library.
"""

import hashlib
import io
import json
import os
import pickle
import random
import struct
import zipfile
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "bad_inputs")
rng = random.Random(6)


def write(name, data):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def npy(header, payload=b""):
    h = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload


def safetensors(header, payload=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


def png_header(width, height):
    sig = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 100)
    chunk2 = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return sig + chunk + chunk2


def random_bytes(n):
    return bytes(rng.randrange(256) for _ in range(n))


f32 = lambda values: struct.pack(f"<{len(values)}f", *values)  # noqa: E731

# --- latents (.npy / .safetensors / sidecar .json)
write("latent/empty.npy", b"")
write("latent/random.npy", random_bytes(400))
good = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", f32([0.1] * 100))
write("latent/truncated.npy", good[: len(good) - 37])
write("latent/wrong_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 7), }", f32([0.0] * 21)))
write("latent/nan.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", f32([float("nan")] + [0.0] * 99)))
write("latent/inf.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100,), }", struct.pack("<100d", *([float("inf")] + [0.0] * 99))))
write("latent/huge_claim.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", f32([0.0] * 100)))
write("latent/int_dtype.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (100,), }", b"\0" * 400))
write("latent/bad_header.npy", npy("not a dict at all", f32([0.0] * 100)))
write("latent/empty.safetensors", b"")
write("latent/random.safetensors", random_bytes(300))
write("latent/huge_header.safetensors", struct.pack("<Q", 1 << 60) + b"{}")
write("latent/int_dtype.safetensors", safetensors({"latents": {"dtype": "I32", "shape": [100], "data_offsets": [0, 400]}}, b"\0" * 400))
write("latent/wrong_shape.safetensors", safetensors({"latents": {"dtype": "F32", "shape": [2, 50], "data_offsets": [0, 400]}}, f32([0.0] * 100)))
write("latent/lying_offsets.safetensors", safetensors({"latents": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}}, f32([0.0] * 10)))
write("latent/empty.json", b"")
write("latent/not_sidecar.json", json.dumps({"hello": "world"}))
write("latent/wrong_format.json", json.dumps({"format": "something-else", "version": 1, "plugen_version": "0", "latent": [0.0] * 100, "generator_sha256": "x"}))
write("latent/short_latent.json", json.dumps({"format": "plugen-sidecar", "version": 1, "plugen_version": "0", "latent": [0.0] * 5, "generator_sha256": "x"}))
write("latent/nan_literal.json", '{"format": "plugen-sidecar", "version": 1, "plugen_version": "0", "latent": [NaN], "generator_sha256": "x"}')
write("latent/unknown.ext", b"whatever")

# --- labels (.csv)
write("labels/empty.csv", b"")
write("labels/random.csv", random_bytes(500))
write("labels/bad_name.csv", "Smile,yaw\n1,0.5\n")
write("labels/ragged.csv", "smile,yaw\n1,0.5\n0\n")
write("labels/nan.csv", "smile,yaw\n1,nan\n")
write("labels/text_value.csv", "smile,yaw\nyes,0.5\n")
write("labels/duplicate.csv", "smile,smile\n1,0\n")

# --- plugins (plugin.json + weights)
write("plugin/empty/plugin.json", b"")
write("plugin/random/plugin.json", random_bytes(200))
write("plugin/not_plugin/plugin.json", json.dumps({"format": "nope"}))
base = {
    "format": "plugen-plugin",
    "version": 1,
    "generator_sha256": "GENERATOR",
    "flow": {"dim": 100, "couplings": 4, "hidden": 8, "hidden_layers": 1, "leaky_slope": 0.01, "linear_mixing": False},
    "attributes": [
        {"name": "smile", "kind": "binary", "label_min": 0, "label_max": 1, "positive_rate": 0.2, "prior_mean": -0.6, "prior_std": 0.8, "labelled": 10}
    ],
    "prior_sigma": 0.15,
    "weights": "plugin.safetensors",
}
write("plugin/other_generator/plugin.json", json.dumps({**base, "generator_sha256": "0" * 64}))
write("plugin/missing_weights/plugin.json", json.dumps(base))
write("plugin/weights_escape/plugin.json", json.dumps({**base, "weights": "../../etc/passwd"}))
write("plugin/bad_attribute/plugin.json", json.dumps({**base, "attributes": [{**base["attributes"][0], "name": "Bad Name"}]}))
write("plugin/absurd_flow/plugin.json", json.dumps({**base, "flow": {**base["flow"], "dim": 10 ** 9}}))
write("plugin/wrong_shapes/plugin.json", json.dumps(base))
write("plugin/wrong_shapes/plugin.safetensors", safetensors({"couplings.0.layers.0.weight": {"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 36]}}, f32([0.0] * 9)))
# --- generator bundles (manifest.json + generator.safetensors)
write("model/empty_manifest/manifest.json", b"")
write("model/random_manifest/manifest.json", random_bytes(100))
man = {"format": "plugen-generator", "version": 1, "name": "x", "architecture": "dcgan", "generator": {"channels": [100, 8, 3]}, "weights": "generator.safetensors", "sha256": "", "source": ""}
write("model/absurd_channels/manifest.json", json.dumps({**man, "generator": {"channels": [100, 10 ** 9, 3]}}))
write("model/other_arch/manifest.json", json.dumps({**man, "architecture": "stylegan"}))
write("model/missing_weights/manifest.json", json.dumps(man))
write("model/sha_mismatch/manifest.json", json.dumps({**man, "sha256": "0" * 64}))
write("model/sha_mismatch/generator.safetensors", safetensors({}))
wrong = safetensors({"blocks.0.conv.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, f32([0.0] * 4))
write("model/wrong_shapes/manifest.json", json.dumps({**man, "sha256": hashlib.sha256(wrong).hexdigest()}))
write("model/wrong_shapes/generator.safetensors", wrong)
nan_w = safetensors({"blocks.0.conv.weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, f32([float("nan")] * 4))
write("model/nan_weights/manifest.json", json.dumps({**man, "sha256": hashlib.sha256(nan_w).hexdigest()}))
write("model/nan_weights/generator.safetensors", nan_w)

# --- images for projection
write("image/empty.png", b"")
write("image/random.png", random_bytes(1000))
full = png_header(64, 64)
write("image/truncated.png", full[:40])
write("image/huge_claim.png", png_header(100000, 100000))
write("image/text.jpg", "this is not a jpeg")

# --- PyTorch checkpoints
write("checkpoint/empty.pth", b"")
write("checkpoint/random.pth", random_bytes(2000))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("archive/version", "3")
write("checkpoint/zip_without_pickle.pth", buf.getvalue())


class Evil:
    def __reduce__(self):
        return (os.system, ("echo plugen-test-should-never-run > /tmp/plugen-evil-ran",))


buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps({"main.0.weight": Evil()}, protocol=2))
    z.writestr("archive/version", "3")
write("checkpoint/evil_global.pth", buf.getvalue())
write("plugin/data_escape/plugin.json", json.dumps({**base, "training": {"epochs": 1, "seed": 0, "rows": [1, 0], "data": [{"latents": "../../secret.npy", "labels": "labels.csv"}]}}))

# --- label-mode sessions (labelling-NAME.json)
session = {"attribute": {"name": "glasses", "kind": "binary", "description": ""}, "seed": 1, "dim": 100,
           "base_plugin": "plugin.json", "labels": [[0, 1.0]], "shown": [0]}
write("session/empty.json", b"")
write("session/random.json", random_bytes(300))
write("session/bad_name.json", json.dumps({**session, "attribute": {**session["attribute"], "name": "Has Glasses"}}))
write("session/nan_label.json", json.dumps(session).replace("1.0]", "NaN]"))
write("session/huge_dim.json", json.dumps({**session, "dim": 10 ** 12}))
write("session/wrong_kind.json", json.dumps({**session, "attribute": {**session["attribute"], "kind": "maybe"}}))

print("wrote corpus to", os.path.normpath(OUT))
