"""Example third-party mgpe plugin: an `align` stage on OpenCV's bundled Haar cascades.

It needs no weights beyond those inside the OpenCV wheel. Eyes found by the eye cascade fix the similarity
transform (two points); nose and mouth landmarks are where the template puts them under that transform.
When the eye cascade misses, eyes are placed at fixed fractions of the face box and the score drops to 0.5.
"""
from __future__ import annotations

import numpy as np

from mgpe_toolkit.align import align_from_landmarks, apply_affine, fit_similarity, template
from mgpe_toolkit.hookspecs import hookimpl

DETECT_SIDE = 800
EYE_BOX_FRACTIONS = ((0.31, 0.38), (0.69, 0.38))  # eye centres within a Haar face box, when eyes are missed


class HaarAligner:
    name = "haar"

    def __init__(self, min_face: int = 40):
        import cv2

        root = cv2.data.haarcascades
        self.faces = cv2.CascadeClassifier(root + "haarcascade_frontalface_default.xml")
        self.eyes = cv2.CascadeClassifier(root + "haarcascade_eye.xml")
        self.min_face = min_face

    def _eyes(self, grey: np.ndarray, box) -> np.ndarray | None:
        x, y, w, h = box
        roi = grey[y:y + h // 2 + h // 10, x:x + w]
        found = self.eyes.detectMultiScale(roi, 1.1, 5, minSize=(max(8, w // 10), max(8, w // 10)))
        centres = [(x + ex + ew / 2, y + ey + eh / 2) for ex, ey, ew, eh in found]
        left = [c for c in centres if c[0] < x + w / 2]
        right = [c for c in centres if c[0] >= x + w / 2]
        if not left or not right:
            return None
        # The pair nearest to level wins.
        pairs = [(abs(l[1] - r[1]), l, r) for l in left for r in right]
        _, l, r = min(pairs)
        return np.array([l, r], dtype=np.float64)

    def align(self, image: np.ndarray, *, size: int = 256, all_faces: bool = False):
        import cv2

        h, w = image.shape[:2]
        f = min(1.0, DETECT_SIDE / max(h, w))
        small = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA) if f < 1 else image
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        boxes = self.faces.detectMultiScale(grey, 1.1, 5, minSize=(self.min_face, self.min_face))
        boxes = sorted(boxes, key=lambda b: -b[2] * b[3])
        out = []
        for box in boxes:
            eyes = self._eyes(grey, box)
            score = 1.0
            if eyes is None:
                bx, by, bw, bh = box
                eyes = np.array([(bx + fx * bw, by + fy * bh) for fx, fy in EYE_BOX_FRACTIONS])
                score = 0.5
            eyes = eyes / f
            # Complete the five landmarks from the two eyes through the template.
            to_aligned = fit_similarity(eyes, template(size)[:2])
            inverse = np.linalg.inv(np.vstack([to_aligned, [0, 0, 1]]))[:2]
            landmarks = apply_affine(inverse, template(size))
            landmarks[:2] = eyes
            out.append(align_from_landmarks(image, landmarks, size, score=score, aligner=self.name, points=(0, 1)))
            if not all_faces:
                break
        return out


@hookimpl
def register_stages(register):
    register("align", "haar", HaarAligner,
             description="OpenCV Haar cascades (face + eyes), 2-point similarity; example plugin")
