"""Default aligner: mediapipe's bundled face detector finds faces, its 478-point mesh places five landmarks.

Detection runs on a copy downscaled to DETECT_SIDE so a 4000×3000 photo costs little memory; the mesh runs
on a crop around each face and the warp reads the full-resolution photo.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np

from ..align import align_from_landmarks
from ..types import AlignedFace

DETECT_SIDE = 1024
MESH_SIDE = 384
# Face-mesh indices: iris centres (refined mesh), nose tip, mouth corners.
IRIS_CENTRES = (468, 473)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)


def five_points_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """(478, 2) mesh in pixels -> (5, 2): eyes ordered by x, nose tip, mouth corners ordered by x."""
    eyes = mesh[list(IRIS_CENTRES)]
    mouth = mesh[list(MOUTH_CORNERS)]
    eyes = eyes[np.argsort(eyes[:, 0])]
    mouth = mouth[np.argsort(mouth[:, 0])]
    return np.vstack([eyes, mesh[NOSE_TIP][None], mouth])


@contextlib.contextmanager
def quiet_native_stderr(linger: float = 0.0):
    """Silence the C++ log lines mediapipe prints on stderr (they ignore GLOG/TF env vars); `linger`
    seconds more for lines its worker threads print after the call returns."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
        if linger:
            time.sleep(linger)
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


class MediapipeGraphs:
    """Owns mediapipe solution graphs: created lazily and quietly, closed once (also on garbage collection)."""

    _graphs: list = []

    @staticmethod
    def refined_mesh():
        from mediapipe.python.solutions import face_mesh

        return face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                  min_detection_confidence=0.3)

    def close(self) -> None:
        with quiet_native_stderr(linger=0.2):  # graph teardown logs from a worker thread
            for graph in self._graphs:
                graph.close()
        self._graphs = []

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class MediapipeAligner(MediapipeGraphs):
    name = "mediapipe"

    def __init__(self, min_score: float = 0.5, max_faces: int = 20):
        self.min_score = min_score
        self.max_faces = max_faces
        self._detectors = None
        self._mesh = None

    def _load(self):
        if not self._graphs:
            from mediapipe.python.solutions import face_detection

            with quiet_native_stderr(linger=0.1):
                self._detectors = [face_detection.FaceDetection(model_selection=m, min_detection_confidence=self.min_score)
                                   for m in (1, 0)]
                self._mesh = self.refined_mesh()
            self._graphs = [*self._detectors, self._mesh]

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Faces in an RGB photo as (box x0, y0, x1, y1 in pixels, score), largest first."""
        import cv2

        self._load()
        h, w = image.shape[:2]
        f = min(1.0, DETECT_SIDE / max(h, w))
        small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA) if f < 1 else image
        small = np.ascontiguousarray(small)
        for detector in self._detectors:  # full-range model first, short-range as a second chance
            with quiet_native_stderr():
                res = detector.process(small)
            if res.detections:
                break
        faces = []
        for det in res.detections or []:
            bb = det.location_data.relative_bounding_box
            box = np.array([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h])
            faces.append((box, float(det.score[0])))
        faces.sort(key=lambda fb: -(fb[0][2] - fb[0][0]) * (fb[0][3] - fb[0][1]))
        return faces[: self.max_faces]

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """(5, 2) landmarks of the face in box, from the mesh on a crop around it; None if the mesh fails."""
        import cv2

        h, w = image.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.0 * max(box[2] - box[0], box[3] - box[1])
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
        pad = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)), (0, 0))
        crop = np.pad(image[max(0, y0):min(h, y1), max(0, x0):min(w, x1)], pad, mode="edge")
        f = MESH_SIDE / crop.shape[0]
        crop = cv2.resize(crop, (MESH_SIDE, MESH_SIDE), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        with quiet_native_stderr():
            res = self._mesh.process(np.ascontiguousarray(crop))
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        mesh = np.array([(p.x * MESH_SIDE, p.y * MESH_SIDE) for p in lm]) / f + (x0, y0)
        return five_points_from_mesh(mesh)

    def align(self, image: np.ndarray, *, size: int = 256, all_faces: bool = False) -> list[AlignedFace]:
        faces = []
        for box, score in self.detect(image):
            pts = self.landmarks(image, box)
            if pts is None:
                continue
            faces.append(align_from_landmarks(image, pts, size, score=score, aligner=self.name))
            if not all_faces:
                break
        return faces
