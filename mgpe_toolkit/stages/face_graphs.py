"""mediapipe 0.10.21's face models run as ONNX graphs in onnxruntime, with mediapipe's pre- and post-processing.

The graphs (face detector short and full range, the 478-point face mesh with attention, the selfie segmenter)
are converted once from the .tflite files of the mediapipe 0.10.21 wheel by models/mediapipe-face/convert.py and
ship in `mgpe_models/mediapipe-face/` (Apache-2.0, card beside them). What mediapipe's calculators did around
them is written here in numpy/OpenCV, with their constants: the letterboxed detector input, SSD anchors, box and
keypoint decoding, weighted non-maximum suppression, the face's rotated crop (eyes level, 1.5 x the box,
square) and the landmarks projected back, the refinement of lips, eyes and irises, the selfie mask.

Coordinates are relative to the image (0..1) unless a name says pixels, as mediapipe's were.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

GRAPH_DIR = "mediapipe-face"
GRAPHS = {
    "short": "face_detection_short_range.onnx",
    "full": "face_detection_full_range_sparse.onnx",
    "mesh": "face_landmark_with_attention.onnx",
    "selfie": "selfie_segmentation.onnx",
}


def graph_dirs() -> list[Path]:
    """Where the graphs are looked for: every folder in $MGPE_MODELS, then the package's own (never swapped out
    with the weights: the graphs are part of mgpe, not a model a user trains)."""
    import os

    from ..weights import _shipped_models

    dirs = [Path(p) for p in os.environ.get("MGPE_MODELS", "").split(os.pathsep) if p]
    return [d / GRAPH_DIR for d in (*dirs, _shipped_models())]


def graph_path(name: str) -> Path | None:
    """The ONNX graph of one model (GRAPHS' key), or None when it is nowhere."""
    return next((d / GRAPHS[name] for d in graph_dirs() if (d / GRAPHS[name]).is_file()), None)


def graphs_problem() -> str | None:
    """None when every graph is found and onnxruntime imports; else why not (for `mgpe doctor` and checks)."""
    missing = [f for k, f in GRAPHS.items() if graph_path(k) is None]
    if missing:
        return (f"no {missing[0]} in {', '.join(str(d) for d in graph_dirs())} (mediapipe's face models; rebuild "
                "with models/mediapipe-face/convert.py)")
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return f"onnxruntime is not importable ({e})"
    return None


def require() -> None:
    """Raise the one-line UsageError of graphs_problem, if any."""
    from ..errors import UsageError

    problem = graphs_problem()
    if problem:
        raise UsageError(problem)


_lock = threading.Lock()


@cache
def session(name: str):
    """One onnxruntime CPU session per graph, shared by the process (sessions are thread-safe to run)."""
    import onnxruntime as ort

    require()
    path = graph_path(name)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # One thread: batch runs keep a process per core. Two threads gain on an idle machine (mesh 4.6 against 6.4 ms)
    # and lose beside other work (18 against 14 ms).
    opts.intra_op_num_threads = 1
    with _lock:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(name: str, tensor: np.ndarray) -> list[np.ndarray]:
    sess = session(name)
    return sess.run(None, {sess.get_inputs()[0].name: tensor[None].astype(np.float32, copy=False)})


# -- the rotated crop -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rect:
    """A rotated rectangle in pixels: centre, size, rotation (radians, clockwise on screen)."""

    cx: float
    cy: float
    w: float
    h: float
    rotation: float = 0.0


def crop_matrix(rect: Rect, out_w: int, out_h: int) -> np.ndarray:
    """The 2x3 affine taking image pixels to the (out_w, out_h) tensor of `rect`: its corners to the tensor's
    corners (mediapipe's ImageToTensor: OpenCV box points onto 0..width, 0..height)."""
    import cv2

    corners = cv2.boxPoints(((rect.cx, rect.cy), (rect.w, rect.h), math.degrees(rect.rotation)))
    dst = np.float32([[0, out_h], [0, 0], [out_w, 0]])
    return cv2.getAffineTransform(np.float32(corners[:3]), dst)


def crop(image: np.ndarray, rect: Rect, out_w: int, out_h: int, *, replicate: bool, lo: float, hi: float) -> np.ndarray:
    """The rect's pixels as an (out_h, out_w, 3) float32 tensor in lo..hi (border: edge pixels or black)."""
    import cv2

    border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT
    warped = cv2.warpAffine(np.ascontiguousarray(image[..., :3]), crop_matrix(rect, out_w, out_h), (out_w, out_h),
                            flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
    return warped.astype(np.float32) * ((hi - lo) / 255.0) + lo


# -- face detection ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectorSpec:
    graph: str
    size: int
    strides: tuple[int, ...]
    interpolated: float  # the extra anchor per scale (SSD's interpolated_scale_aspect_ratio); 0: none


DETECTORS = {
    "short": DetectorSpec("short", 128, (8, 16, 16, 16), 1.0),
    "full": DetectorSpec("full", 192, (4,), 0.0),
}
NMS_IOU = 0.3


@dataclass
class Detection:
    """A face: box (x0, y0, x1, y1), six keypoints (eyes, nose tip, mouth centre, ears; image-left eye first as
    mediapipe gives them), score; coordinates relative to the image."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float


@cache
def anchors(spec: DetectorSpec) -> np.ndarray:
    """(N, 2) anchor centres (SSD anchors of fixed size 1; layers of one stride share a feature map)."""
    n_layers = len(spec.strides)
    out = []
    layer = 0
    while layer < n_layers:
        per_cell = 0
        last = layer
        while last < n_layers and spec.strides[last] == spec.strides[layer]:
            per_cell += 1 + (spec.interpolated > 0)
            last += 1
        side = math.ceil(spec.size / spec.strides[layer])
        ys, xs = np.meshgrid((np.arange(side) + 0.5) / side, (np.arange(side) + 0.5) / side, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(cells, per_cell, axis=0))
        layer = last
    return np.concatenate(out).astype(np.float32)


def sigmoid(logits) -> np.ndarray:
    """mediapipe's score: the logistic of the logit clipped to +-100."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float64), -100.0, 100.0)))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box a (4,) against boxes b (N, 4)."""
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray) -> list[Detection]:
    """mediapipe's weighted non-maximum suppression: the best box and every box overlapping it by IoU > 0.3
    become one detection, their boxes and keypoints averaged by score, the best one's score kept."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        overlap = iou(boxes[order[0]], boxes[order]) > NMS_IOU
        group = order[overlap]
        w = scores[group][:, None]
        out.append(Detection(box=(boxes[group] * w).sum(0) / w.sum(),
                             keypoints=(points[group] * w[:, :, None]).sum(0) / w.sum(),
                             score=float(scores[order[0]])))
        order = order[~overlap]
    return out


def detect(image: np.ndarray, model: str = "short", min_score: float = 0.5) -> list[Detection]:
    """Faces in an RGB image, best first: the whole image letterboxed into the detector's square input."""
    spec = DETECTORS[model]
    h, w = image.shape[:2]
    side = max(h, w)
    tensor = crop(image, Rect(w / 2, h / 2, side, side), spec.size, spec.size, replicate=False, lo=-1.0, hi=1.0)
    raw, logits = run(spec.graph, tensor)
    raw, logits = raw[0], logits[0, :, 0]
    scores = sigmoid(logits)
    keep = scores >= min_score
    if not keep.any():
        return []
    raw, scores, centres = raw[keep], scores[keep], anchors(spec)[keep]
    xy = raw[:, :2] / spec.size + centres
    wh = raw[:, 2:4] / spec.size
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)
    points = raw[:, 4:16].reshape(-1, 6, 2) / spec.size + centres[:, None]
    faces = weighted_nms(boxes, points, scores)
    # From the letterboxed square back to the image.
    scale = np.array([side / w, side / h])
    offset = 0.5 - scale / 2
    for f in faces:
        f.box = f.box * np.tile(scale, 2) + np.tile(offset, 2)
        f.keypoints = f.keypoints * scale + offset
    return faces


# -- the face mesh ----------------------------------------------------------------------------------------------
MESH_SIZE = 192
FACE_FLAG = 0.5  # the mesh's face-presence probability below which it found no face
# mediapipe's LandmarksRefinement: the mesh indices that the lips, eye and iris heads replace or add.
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
        78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
        76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
        62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407)
LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
            130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
            226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
            35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193)
RIGHT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
             359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
             446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
             265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293, 334, 296, 336,
             285, 417)
LEFT_IRIS = (468, 469, 470, 471, 472)
RIGHT_IRIS = (473, 474, 475, 476, 477)


def face_rect(face: Detection, w: int, h: int) -> Rect:
    """mediapipe's face ROI from a detection: rotated to level the eyes (keypoints 0 -> 1), the box's long side
    in pixels, 1.5 times, square."""
    (x0, y0), (x1, y1) = face.keypoints[0] * (w, h), face.keypoints[1] * (w, h)
    rotation = math.atan2(y1 - y0, x1 - x0)
    bw, bh = (face.box[2] - face.box[0]) * w, (face.box[3] - face.box[1]) * h
    side = 1.5 * max(bw, bh)
    return Rect((face.box[0] + face.box[2]) / 2 * w, (face.box[1] + face.box[3]) / 2 * h, side, side, rotation)


def landmarks(image: np.ndarray, rect: Rect) -> np.ndarray | None:
    """The (478, 2) refined mesh in image pixels of the face in rect; None when the model sees no face there."""
    tensor = crop(image, rect, MESH_SIZE, MESH_SIZE, replicate=True, lo=0.0, hi=1.0)
    mesh, lips, left_eye, right_eye, left_iris, right_iris, flag = run("mesh", tensor)
    if sigmoid(flag.ravel()[0]) < FACE_FLAG:
        return None
    pts = np.zeros((478, 2), np.float64)
    pts[:468] = mesh.reshape(-1, 3)[:, :2]
    for idx, head in ((LIPS, lips), (LEFT_EYE, left_eye), (RIGHT_EYE, right_eye), (LEFT_IRIS, left_iris),
                      (RIGHT_IRIS, right_iris)):
        pts[list(idx)] = head.reshape(-1, 2)  # the heads give x, y only
    # Crop pixels -> centred unit square -> rotated and scaled into the image (LandmarkProjection).
    rel = pts / MESH_SIZE - 0.5
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    x = (c * rel[:, 0] - s * rel[:, 1]) * rect.w + rect.cx
    y = (s * rel[:, 0] + c * rel[:, 1]) * rect.h + rect.cy
    return np.stack([x, y], 1)


def face_meshes(image: np.ndarray, max_faces: int = 3, min_score: float = 0.5) -> list[np.ndarray]:
    """mediapipe FaceMesh(static_image_mode=True, refine_landmarks=True): the short-range detector's best
    max_faces faces, each meshed in its rotated crop; (478, 2) pixel arrays."""
    h, w = image.shape[:2]
    out = []
    for face in detect(image, "short", min_score)[:max_faces]:
        mesh = landmarks(image, face_rect(face, w, h))
        if mesh is not None:
            out.append(mesh)
    return out


# -- selfie segmentation ----------------------------------------------------------------------------------------
SELFIE_SIZE = 256


def person_mask(image: np.ndarray) -> np.ndarray:
    """mediapipe SelfieSegmentation(model_selection=0): the person's probability per pixel, (H, W) float32."""
    import cv2

    h, w = image.shape[:2]
    tensor = crop(image, Rect(w / 2, h / 2, w, h), SELFIE_SIZE, SELFIE_SIZE, replicate=False, lo=0.0, hi=1.0)
    mask = run("selfie", tensor)[0][0, :, :, 0]
    if (h, w) != mask.shape:
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(mask, dtype=np.float32)
