"""Parser `unet` (the default when its weights are found): the paper's P_F, run through onnxruntime on the CPU.

Weights are a `parser-unet.safetensors` written by `mgpe train parser`: an explicit path, else the search path
of `weights.py`, else the real-photo parser shipped in `models/parser-real/`. On the CPU they run as an ONNX
graph from the user's graph cache (`export/parser_graph.py`), so later runs start without importing torch.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..labels import LABEL_INDEX, NUM_CLASSES, SWAP_SIDES
from ..types import FaceMask
from ..weights import load_unet, parser_problem, resolve_parser

weights_problem = parser_problem  # registry check: None when weights can be found


def card_mirror(path: Path) -> bool:
    """Whether the weights' card (NAME.json beside them) asks for the mirror pass: `"inference": {"mirror":
    false}` turns it off for a network too slow to run twice; a missing or unreadable card means yes."""
    try:
        return json.loads(path.with_suffix(".json").read_text()).get("inference", {}).get("mirror", True) is not False
    except (OSError, ValueError, AttributeError):
        return True


class UNetParser:
    """precision: the graph onnxruntime runs on the CPU (int8, the default, is about twice as fast as fp32 and
    picks the same labels on all but a few pixels); mirror: average the logits of the face and of its mirror
    image (sides swapped back), which makes the mask exactly mirror-symmetric in the face and measures better
    (README of models/parser-real); the two run as one batch; None: as the weights' card says (`card_mirror`);
    refine: snap label boundaries to the image's edges: "edges" every class's (`refine_edges`), "hair" (or True)
    the hair's alone (`refine_hair`), "none" (or False) the labels as the network draws them; "auto" (default):
    hair on a face of the network's own size, edges on a larger one (its logits are upsampled)."""

    name = "unet"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", threads: int = 0,
                 precision: str = "int8", mirror: bool | None = None, refine: bool | str = "auto"):
        self.path = path = resolve_parser(weights)
        self.device = device
        self.mirror = card_mirror(path) if mirror is None else mirror
        self.refine = {True: "hair", False: "none"}.get(refine, refine) if isinstance(refine, bool) else refine
        if self.refine not in (*REFINERS, "auto"):
            raise ValueError(f"refine must be auto, {', '.join(REFINERS)}, not {refine!r}")
        self._model = None
        self._session = None
        if device == "cpu":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            # Spinning threads steal the cores the next stage (or another worker) needs.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            from ..export.parser_graph import session

            self._session, self.size = session(path, precision, opts)
        else:
            self._model, self.size = load_unet(path, device)

    def _inputs(self, image: np.ndarray) -> np.ndarray:
        import cv2

        img = np.ascontiguousarray(image[..., :3])
        if img.shape[:2] != (self.size, self.size):
            shrink = img.shape[0] > self.size
            img = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        x = img.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        return np.ascontiguousarray(np.concatenate([x, x[..., ::-1]]) if self.mirror else x, dtype=np.float32)

    def logits(self, image: np.ndarray) -> np.ndarray:
        """(19, H, W) float32 logits for an aligned RGB face of any size (run at the model's, resized back)."""
        import cv2

        h, w = image.shape[:2]
        x = self._inputs(image)
        if self._session is not None:
            y = self._session.run(None, {"image": x})[0]
        else:
            import torch

            with torch.no_grad():
                y = self._model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
        # The mirror's logits, mirrored back, with each side's class read from the other side's channel.
        y = 0.5 * (y[0] + y[1][SWAP_SIDES[:NUM_CLASSES], :, ::-1]) if self.mirror else y[0]
        if (h, w) != y.shape[1:]:  # channel by channel: no transposed copies of a large face's 19 planes
            return np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in y])
        return np.ascontiguousarray(y)

    def parse(self, image: np.ndarray) -> FaceMask:
        logits = self.logits(image)
        refine = self.refine
        if refine == "auto":
            refine = "edges" if image.shape[0] > self.size else "hair"
        labels = REFINERS[refine](image, logits)
        return FaceMask(labels=one_face(labels), parser=self.name)


# Guided filter of the hair probability: radius in pixels of a 256² face, and eps (grey levels in 0..1).
HAIR_FILTER = (4, 1e-3)
# What the filtered hair may take or give back; head wear and the face's small parts stay as the network says.
HAIR_NEIGHBOURS = tuple(LABEL_INDEX[n] for n in ("background", "skin", "hair", "neck", "cloth"))


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grey guide: `src` smoothed where `guide` is flat, with the guide's edges."""
    import cv2

    box = lambda a: cv2.boxFilter(a, -1, (2 * radius + 1, 2 * radius + 1))  # noqa: E731
    mean_g, mean_s = box(guide), box(src)
    a = (box(guide * src) - mean_g * mean_s) / (box(guide * guide) - mean_g * mean_g + eps)
    return box(a) * guide + box(mean_s - a * mean_g)


def best_class(logits: np.ndarray) -> np.ndarray:
    """`logits.argmax(0)` as uint8 (the first of equals), plane by plane: 4-5 × faster on (19, H, W)."""
    best, out = logits[0].copy(), np.zeros(logits.shape[1:], np.uint8)
    for k in range(1, len(logits)):
        out[logits[k] > best] = k
        np.maximum(best, logits[k], out=best)
    return out


def class_probability(logits: np.ndarray, k: int) -> np.ndarray:
    """Softmax probability of class k, (H, W) float32, summed plane by plane (no (19, H, W) temporaries)."""
    total, term = np.zeros(logits.shape[1:], np.float32), np.empty(logits.shape[1:], np.float32)
    with np.errstate(over="ignore"):  # exp -> inf where k is far from likely: p = 0 there, as it should be
        for plane in logits:
            np.subtract(plane, logits[k], out=term)
            total += np.exp(term, out=term)
    return 1.0 / total


def refine_hair(image: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Labels with the hair boundary snapped to the photo's edges: the hair probability, guided-filtered by the
    grey image, decides hair among HAIR_NEIGHBOURS; a pixel that stops being hair takes its next best label.
    (On the held-out lfw-hair photos: hair IoU 0.750 -> 0.756; Helen samples 0.851 -> 0.854.)"""
    import cv2

    labels = best_class(logits)
    hair = LABEL_INDEX["hair"]
    p = class_probability(logits, hair)
    grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    radius = max(1, round(HAIR_FILTER[0] * image.shape[0] / 256))
    filtered = _guided_filter(grey, p, radius, HAIR_FILTER[1]) > 0.5
    open_ = np.isin(labels, HAIR_NEIGHBOURS)
    out = labels.copy()
    out[open_ & filtered] = hair
    lost = open_ & ~filtered & (labels == hair)
    if lost.any():
        rest = logits[:, lost]
        rest[hair] = -np.inf
        out[lost] = rest.argmax(0)
    return out


# Guided filter of every class's probability: radius in pixels of a 256² face, eps. On the 134 held-out
# CelebAMask-HQ portraits, accuracy / mean F1 / hair IoU against the hair's filter alone (`bench_parse.py
# ../shared/data/celebamask-mini --labels celebamask --refine hair|edges`): unet on a 512² view (`--size 512`)
# 0.9114 / 0.7257 / 0.8509 -> 0.9137 / 0.7308 / 0.8540; hybrid at 256² 0.9116 / 0.7260 / 0.8509 -> 0.9139 /
# 0.7310 / 0.8538, but lfw-hair's photos in the wild lose at 256² (hair IoU 0.7727 -> 0.7674): "auto" keeps the
# hair's filter at the network's own size.
EDGE_FILTER = (1.5, 1e-3)


def refine_edges(image: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Labels whose every boundary follows the photo's edges: each likely class's softmax probability, guided-
    filtered by the grey image, competes for the pixel (an upsampled mask gets the photo's edges, not the
    network's smooth or stepped ones)."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    r = max(1, round(EDGE_FILTER[0] * image.shape[0] / 256))
    top = logits.max(0)
    total = np.zeros_like(top)
    for plane in logits:
        total += np.exp(plane - top)
    best, out = np.full(grey.shape, -np.inf, np.float32), np.zeros(grey.shape, np.uint8)
    h, w = top.shape
    for k, plane in enumerate(logits):
        margin = plane - top
        if margin.max() < np.log(0.2):  # p < 0.2 everywhere: a class this unlikely cannot win after averaging
            continue
        # Filtered only in the box where it has some probability, 2r around it: eyes and lips cost little.
        x, y, bw, bh = cv2.boundingRect((margin > np.log(0.01)).astype(np.uint8))
        win = np.s_[max(y - 2 * r, 0):min(y + bh + 2 * r, h), max(x - 2 * r, 0):min(x + bw + 2 * r, w)]
        f = _guided_filter(grey[win], np.exp(margin[win]) / total[win], r, EDGE_FILTER[1])
        win_out, win_best = out[win], best[win]
        win_out[f > win_best] = k
        np.maximum(win_best, f, out=win_best)
    return out


REFINERS = {"edges": refine_edges, "hair": refine_hair, "none": lambda image, logits: best_class(logits)}


FACE = tuple(LABEL_INDEX[n] for n in ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
                                      "r_ear", "mouth", "u_lip", "l_lip"))
HEAD = tuple(LABEL_INDEX[n] for n in ("hair", "hat", "ear_r"))
BODY = tuple(LABEL_INDEX[n] for n in ("neck", "neck_l", "cloth"))


# A nose this large (share of the mask) marks a face; another face's nose lies NOSE_APART away, the aligned
# face's within NOSE_NEAR of the template's nose tip (shares of the width).
NOSE_AREA, NOSE_APART, NOSE_NEAR = 60 / 256**2, 0.1, 0.15
NOSE_TIP_Y = 157 / 256  # the template's nose tip, as a share of the aligned crop's height


def drop_touching_faces(labels: np.ndarray) -> np.ndarray:
    """Labels with every other face that has a nose of its own set to background, with its hair and head wear;
    `one_face` alone cannot split a face that touches the aligned one (one skin region). The face region is
    shared out between the noses, then hair and head wear between the faces, each pixel to the nearest along
    the region (`watershed` on a flat floor). Unchanged when no nose lies near the template's."""
    import cv2

    h, w = labels.shape
    n, comp, stats, centroids = cv2.connectedComponentsWithStats((labels == LABEL_INDEX["nose"]).astype(np.uint8))
    noses = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= NOSE_AREA * h * w]
    if len(noses) < 2:
        return labels
    off = {i: np.hypot(centroids[i][0] - 0.5 * w, centroids[i][1] - NOSE_TIP_Y * h) for i in noses}
    main = min(noses, key=off.get)
    others = [i for i in noses if np.linalg.norm(centroids[i] - centroids[main]) > NOSE_APART * w]
    if not others or off[main] > NOSE_NEAR * w:  # one nose in pieces; or this face's nose is not to be seen
        return labels
    from skimage.segmentation import watershed

    markers = np.zeros((h, w), np.int32)
    markers[comp == main] = 1
    markers[np.isin(comp, others)] = 2
    floor = np.zeros((h, w), np.float32)
    faces = watershed(floor, markers, mask=np.isin(labels, FACE))
    owner = watershed(floor, faces, mask=np.isin(labels, FACE + HEAD))
    out = labels.copy()
    out[owner == 2] = 0
    return out


def one_face(labels: np.ndarray) -> np.ndarray:
    """The mask of the aligned face alone: a mask describes one person, so other people in the view (a face
    beside this one, their hair and clothes) become background. Faces that touch this one are dropped first
    (`drop_touching_faces`). The aligned face is then the face region nearest the template's face centre; hair
    and head wear are kept where they touch it (or hair that does), neck and clothes where they touch what is
    kept."""
    import cv2

    labels = drop_touching_faces(labels)
    h, w = labels.shape
    face = np.isin(labels, FACE).astype(np.uint8)
    n, comp, stats, centroids = cv2.connectedComponentsWithStats(face, connectivity=8)
    if n <= 1:
        return labels
    centre = np.array([0.5 * w, 0.55 * h])
    areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
    dist = np.linalg.norm(centroids[1:] - centre, axis=1) / w
    main = 1 + int(np.argmax(areas * np.exp(-(dist / 0.15) ** 2)))
    keep = comp == main
    near = max(2, round(0.02 * w))
    for group in (HEAD, BODY):
        part = np.isin(labels, group).astype(np.uint8)
        if not part.any():
            continue
        k, pcomp = cv2.connectedComponents(part, connectivity=8)
        grown = cv2.dilate(keep.astype(np.uint8), np.ones((2 * near + 1, 2 * near + 1), np.uint8)).astype(bool)
        touching = np.unique(pcomp[grown & (pcomp > 0)])
        keep |= np.isin(pcomp, touching)
    out = labels.copy()
    out[~keep & (labels != 0)] = 0
    return out
