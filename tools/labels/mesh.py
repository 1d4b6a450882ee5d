"""Geometric face measures from MediaPipe's 468-point face mesh.

The landmark model is `face_landmark.tflite` from the mediapipe 0.10.21 wheel
(Apache-2.0), run by ai-edge-litert on the whole 64x64 frame upscaled to the
model's 192x192 input (the generator's faces are centred crops, so the face
detector is not needed). Only the model file is used, not mediapipe's code.

Measures (per face):
  face_score  the model's face-presence logit (high = a face)
  mouth       inner-lip gap (landmarks 13-14) / inner mouth width (78-308):
              unlike the gap over face height it stays low for wide grins
  lip_gap     inner-lip gap / face height (10-152)
  eye_gap     eyelid gap / eye width, both eyes averaged (159-145 / 33-133,
              386-374 / 362-263)
  yaw_deg     head turn from the 3D mesh: angle of the cheek-to-cheek vector
              (234 -> 454) out of the image plane; positive = nose towards the
              image's right
  pitch_deg   head tilt: angle of the chin-to-forehead vector (152 -> 10) out of
              the image plane; positive = chin forward (face tilted up)
"""

import importlib.util
import os
import sys

import numpy as np
from PIL import Image

SIZE = 192


def model_path():
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("mesh.py: mediapipe 0.10.21 is not installed (pip install --no-deps, see requirements-nodeps.txt)")
    return os.path.join(list(spec.submodule_search_locations)[0], "modules", "face_landmark", "face_landmark.tflite")


class FaceMesh:
    """face_landmark.tflite on whole frames."""

    def __init__(self):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=model_path(), num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]["index"]
        self.outs = [o["index"] for o in self.it.get_output_details()]

    def landmarks(self, img):
        """img: (64, 64, 3) uint8 -> ((468, 3) landmarks in 192-px units, face logit)."""
        big = np.asarray(Image.fromarray(img).resize((SIZE, SIZE), Image.BICUBIC), dtype=np.float32) / 255.0
        self.it.set_tensor(self.inp, big[None])
        self.it.invoke()
        lm = self.it.get_tensor(self.outs[0]).reshape(468, 3).copy()
        return lm, float(self.it.get_tensor(self.outs[1]).ravel()[0])

    def measure(self, img):
        lm, score = self.landmarks(img)
        return measures(lm, score)


def _dist(lm, a, b):
    return float(np.linalg.norm(lm[a, :2] - lm[b, :2]))


def measures(lm, score):
    face_h = _dist(lm, 10, 152)
    eyes = [_dist(lm, 159, 145) / max(_dist(lm, 33, 133), 1e-6), _dist(lm, 386, 374) / max(_dist(lm, 362, 263), 1e-6)]
    across = lm[454] - lm[234]
    down = lm[152] - lm[10]
    return {
        "face_score": score,
        "mouth": _dist(lm, 13, 14) / max(_dist(lm, 78, 308), 1e-6),
        "lip_gap": _dist(lm, 13, 14) / max(face_h, 1e-6),
        "eye_gap": float(np.mean(eyes)),
        "yaw_deg": float(np.degrees(np.arctan2(across[2], across[0]))),
        "pitch_deg": float(np.degrees(np.arctan2(-down[2], down[1]))),
    }
