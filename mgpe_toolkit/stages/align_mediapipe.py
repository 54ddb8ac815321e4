"""Default aligner: mediapipe's face detectors find faces, its 478-point mesh places five landmarks.

The models are mediapipe 0.10.21's, run as ONNX graphs in onnxruntime (`face_graphs`); mediapipe itself is not
needed.

Detection runs on a copy downscaled to DETECT_SIDE so a 4000×3000 photo costs little memory; the mesh runs
on a crop around each face and the warp reads the full-resolution photo. That pass finds faces down to about
1/25 of the photo's long side between the eyes; smaller ones are searched in overlapping tiles, with
all_faces or when the whole photo shows no face.
"""
from __future__ import annotations

import numpy as np

from ..align import align_from_landmarks
from ..types import AlignedFace
from . import face_graphs

DETECT_SIDE = 1024
MESH_SIDE = 384
# Tiles: a level of side T finds faces with T/20 to T/10 px between the eyes (boxes up to the overlap, so each
# lies whole in a tile). Levels start at TILE_SIDE (20 px) and double while T/20 is below the full pass's L/25;
# the finest levels are left out where they would pass the tile budget (a tile costs ~6 ms on a CPU core).
TILE_SIDE = 400
TILE_OVERLAP = 0.25
ALL_FACES_TILES = 64  # all_faces: 20 px up to ~2000×1500, 40 px up to ~5000×3500
FALLBACK_TILES = 16  # one face, none in the full pass: 20 px up to 900², 40 px up to ~2000×1500
CONFIRM_SCORE = 0.68  # a face found only in a tile needs this on both crops of `confirmed`
# Face-mesh indices: iris centres (refined mesh), nose tip, mouth corners.
IRIS_CENTRES = (468, 473)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)
# Faces the mesh may return per image: a crop about one face can show a neighbour too, and with one face the
# mesh may settle on the neighbour; with several, `nearest_mesh` picks the one meant.
MESH_FACES = 3


def five_points_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """(478, 2) mesh in pixels -> (5, 2): eyes ordered by x, nose tip, mouth corners ordered by x."""
    eyes = mesh[list(IRIS_CENTRES)]
    mouth = mesh[list(MOUTH_CORNERS)]
    eyes = eyes[np.argsort(eyes[:, 0])]
    mouth = mouth[np.argsort(mouth[:, 0])]
    return np.vstack([eyes, mesh[NOSE_TIP][None], mouth])


def shrunk(image: np.ndarray, side: int) -> np.ndarray:
    """A contiguous copy of an image at most `side` px on its long side (area-averaged when shrunk)."""
    import cv2

    h, w = image.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return np.ascontiguousarray(image)
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def tile_starts(length: int, side: int) -> list[int]:
    """Evenly spaced starts of `side`-long tiles covering 0..length, overlapping by at least TILE_OVERLAP."""
    if length <= side:
        return [0]
    n = int(np.ceil((length - side) / (side * (1 - TILE_OVERLAP)))) + 1
    return [round(x) for x in np.linspace(0, length - side, n)]


def tiles(h: int, w: int, budget: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) tiles of the pyramid levels for an h × w photo, coarsest first, at most `budget` of
    them; none where the full pass suffices."""
    levels = []
    side = TILE_SIDE
    while side < 0.8 * max(h, w):
        levels.append([(x0, y0, min(w, x0 + side), min(h, y0 + side))
                       for y0 in tile_starts(h, side) for x0 in tile_starts(w, side)])
        side *= 2
    out = []
    for level in reversed(levels):
        if len(out) + len(level) > budget:
            break
        out += level
    return out


def same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two boxes (x0, y0, x1, y1) frame one face: centres closer than half the smaller width, or IoU > 0.3."""
    wa, wb = a[2] - a[0], b[2] - b[0]
    if np.linalg.norm((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2) < min(wa, wb) / 2:
        return True
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter > 0.3 * (wa * (a[3] - a[1]) + wb * (b[3] - b[1]) - inter)


def nearest_mesh(meshes: list[np.ndarray], target: np.ndarray) -> np.ndarray | None:
    """The (478, 2) pixel mesh whose eye midpoint lies nearest `target` (x, y); None when there is none."""
    if not meshes:
        return None
    return min(meshes, key=lambda m: float(np.linalg.norm(m[list(IRIS_CENTRES)].mean(0) - target)))


def same_eyes(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two (5, 2) landmark sets are one face (the mesh of a crowded crop can settle on a neighbour):
    eye midpoints closer than half the smaller eye distance."""
    da, db = (np.linalg.norm(p[1] - p[0]) for p in (a, b))
    return bool(np.linalg.norm(a[:2].mean(0) - b[:2].mean(0)) < min(da, db) / 2)


MESH_MIN_SCORE = 0.3  # the detector's threshold before the mesh (FaceMesh's min_detection_confidence)


def meshes(image: np.ndarray, max_faces: int = MESH_FACES) -> list[np.ndarray]:
    """The refined face meshes (478, 2) in pixels of an RGB image (up to max_faces)."""
    return face_graphs.face_meshes(np.ascontiguousarray(image[..., :3]), max_faces, MESH_MIN_SCORE)


class MediapipeAligner:
    name = "mediapipe"

    def __init__(self, min_score: float = 0.5, max_faces: int = 20):
        self.min_score = min_score
        self.max_faces = max_faces
        self._detectors = ("full", "short")
        self._loaded = False

    def _load(self):
        if self._loaded:
            return
        face_graphs.require()
        for graph in ("full", "short", "mesh"):  # sessions are shared by the process: loaded once
            face_graphs.session(graph)
        self._loaded = True

    def detect(self, image: np.ndarray, *, tiled: bool = False) -> list[tuple[np.ndarray, float]]:
        """Faces in an RGB photo as (box x0, y0, x1, y1 in pixels, score), largest first.

        `tiled` also searches the tiles for small faces; without it they are searched only when the whole
        photo shows none. A face found only in a tile must be confirmed (`confirmed`)."""
        self._load()
        h, w = image.shape[:2]
        small = shrunk(image, DETECT_SIDE)
        # Full-range model first; the short-range one (1.6 ms) adds the faces it alone sees: a large face close to
        # the camera that the full-range model misses while it finds a smaller one beside it.
        faces: list[tuple[np.ndarray, float]] = []
        for detector in self._detectors:
            for box, score in self._run(detector, small):
                box = box * (w, h, w, h)
                if not any(same_face(box, b) for b, _ in faces):
                    faces.append((box, score))
        if tiled or not faces:
            found = []
            for x0, y0, x1, y1 in tiles(h, w, ALL_FACES_TILES if tiled else FALLBACK_TILES):
                inner = np.array([x0 > 0, y0 > 0, x1 < w, y1 < h])
                for box, score in self._run(self._detectors[0], shrunk(image[y0:y1, x0:x1], TILE_SIDE)):
                    # A face cut by an edge shared with another tile lies whole in that one: found there.
                    if not (inner & np.concatenate([box[:2] < 0.01, box[2:] > 0.99])).any():
                        found.append((box * (x1 - x0, y1 - y0, x1 - x0, y1 - y0) + (x0, y0, x0, y0), score))
            for box, score in sorted(found, key=lambda fb: -fb[1]):  # a face in several tiles keeps its best box
                if not any(same_face(box, b) for b, _ in faces) and self.confirmed(image, box):
                    faces.append((box, score))
        # Largest first, by the part of the box inside the photo (a face cut by the edge is smaller than its box).
        faces.sort(key=lambda fb: -np.prod(np.clip(fb[0][2:], 0, (w, h)) - np.clip(fb[0][:2], 0, (w, h))))
        return faces[: self.max_faces]

    def _run(self, detector: str, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """One detector's (box x0, y0, x1, y1 relative to the image, score) pairs."""
        return [(f.box, f.score) for f in face_graphs.detect(image, detector, self.min_score)]

    def confirmed(self, image: np.ndarray, box: np.ndarray) -> bool:
        """Whether the short-range detector sees a face of score CONFIRM_SCORE or more at the centre of two
        crops about box (1.5 and 2 times its side). Tiles give the full-range model many more looks, and on
        faceless photos its extra finds there score up to 0.85 but at most 0.65 on these crops; small real
        faces (blurred or JPEG'd too) 0.70 or more."""
        return all(any(score >= CONFIRM_SCORE and np.abs((b[:2] + b[2:]) / 2 - 0.5).max() < 0.25
                       for b, score in self._run(self._detectors[1], self._crop(image, box, scale)[0]))
                   for scale in (1.5, 2.0))

    @staticmethod
    def _crop(image: np.ndarray, box: np.ndarray, scale: float = 2.0) -> tuple[np.ndarray, float, np.ndarray]:
        """The MESH_SIDE² crop of `scale` × the box about its centre (edges padded), its scale and its origin."""
        import cv2

        h, w = image.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = scale * max(box[2] - box[0], box[3] - box[1])
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
        pad = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)), (0, 0))
        crop = np.pad(image[max(0, y0):min(h, y1), max(0, x0):min(w, x1)], pad, mode="edge")
        f = MESH_SIDE / crop.shape[0]
        crop = cv2.resize(crop, (MESH_SIDE, MESH_SIDE), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        return np.ascontiguousarray(crop), f, np.array([x0, y0])

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """(5, 2) landmarks of the face in box, from the mesh on a crop around it; None if the mesh fails or
        finds no face with its eyes in the box (only a neighbour's)."""
        crop, f, origin = self._crop(image, box)
        centre = ((box[:2] + box[2:]) / 2 - origin) * f
        mesh = nearest_mesh(meshes(crop), centre)
        if mesh is None:
            return None
        pts = five_points_from_mesh(mesh / f + origin)
        eyes = pts[:2].mean(0)
        return pts if (box[:2] <= eyes).all() and (eyes <= box[2:]).all() else None

    def align(self, image: np.ndarray, *, size: int = 256, all_faces: bool = False) -> list[AlignedFace]:
        faces = []
        for box, score in self.detect(image, tiled=all_faces):
            pts = self.landmarks(image, box)
            if pts is None or any(same_eyes(pts, f.alignment.landmarks) for f in faces):
                continue
            faces.append(align_from_landmarks(image, pts, size, score=score, aligner=self.name))
            if not all_faces:
                break
        faces.sort(key=lambda f: abs(np.linalg.det(f.alignment.matrix[:, :2])))  # largest face (smallest scale) first
        return faces
