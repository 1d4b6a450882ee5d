"""Identity of a face as a 128-d descriptor: dlib's ResNet face recognition model
(dlib_face_recognition_resnet_model_v1.dat, CC0, from the face_recognition_models
0.3.0 package, MIT) on dlib's 5-point alignment (shape_predictor_5_face_landmarks,
CC0) of the 4x upscaled frame in a fixed box, as label.py locates landmarks.
dlib's own rule: descriptors closer than 0.6 belong to the same person.
"""

import importlib.util
import os
import sys

import numpy as np
from PIL import Image

SAME_PERSON = 0.6
UPSCALE = 4


def _model(name):
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("identity.py: face_recognition_models 0.3.0 is not installed (see requirements-nodeps.txt)")
    return os.path.join(list(spec.submodule_search_locations)[0], "models", name)


class Identity:
    def __init__(self):
        import dlib

        self.dlib = dlib
        self.predictor = dlib.shape_predictor(_model("shape_predictor_5_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(_model("dlib_face_recognition_resnet_model_v1.dat"))

    def descriptor(self, img):
        """img: (64, 64, 3) uint8 -> (128,) float descriptor."""
        n = 64 * UPSCALE
        big = np.ascontiguousarray(np.asarray(Image.fromarray(img).resize((n, n), Image.BICUBIC)))
        rect = self.dlib.rectangle(n // 8, n // 8, n - n // 8, n - n // 8)
        shape = self.predictor(big, rect)
        return np.array(self.net.compute_face_descriptor(big, shape), dtype=np.float32)

    def descriptors(self, imgs):
        return np.stack([self.descriptor(im) for im in imgs])


_worker = None


def _init():
    global _worker
    _worker = Identity()


def _chunk(imgs):
    return _worker.descriptors(imgs)


def descriptors(imgs, jobs=None):
    """Descriptors of (N, 64, 64, 3) uint8 faces, computed by `jobs` processes."""
    import multiprocessing

    jobs = jobs or os.cpu_count() or 1
    chunks = [imgs[i : i + 32] for i in range(0, len(imgs), 32)]
    with multiprocessing.Pool(jobs, initializer=_init) as pool:
        return np.concatenate(pool.map(_chunk, chunks)) if chunks else np.zeros((0, 128), np.float32)
