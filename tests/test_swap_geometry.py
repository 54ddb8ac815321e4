"""Swap+ geometry and occlusion (issue 37): the source's skin is warped piecewise along both faces' meshes, so its
features land on the target's; what covers the source's face is not carried into the target's, what covers the
target's stays on top."""
from __future__ import annotations

import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.labels import LABEL_INDEX
from mgpe_toolkit.stages.generate_classical import mesh_warp


def test_mesh_warp_puts_each_source_point_on_its_target_point():
    rng = np.random.default_rng(0)
    s = 256
    src = rng.uniform(60, 200, (60, 2))
    dst = 1.05 * src - 6 + 5 * np.sin(src[:, ::-1] / 25)  # another face: scaled and smoothly bent
    yy, xx = np.mgrid[:s, :s]
    ramp = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)  # each pixel holds its own coordinates
    shift = np.array([[1, 0, 10.0], [0, 1, -5.0]])  # beyond the mesh: this similarity, source -> target
    warped, region = mesh_warp(ramp, np.ones((s, s), bool), src, dst, shift)
    from scipy.ndimage import map_coordinates

    seen = np.stack([map_coordinates(warped[..., c].astype(float), dst[:, ::-1].T, order=1) for c in (0, 1)], 1)
    assert np.abs(seen - src).max() < 1.2  # the map is exact on a grid of 2-px steps, linear between
    # One continuous map over the whole crop (the mesh joined to the similarity beyond it): no tear, no hole.
    ramp_x, ramp_y = warped[..., 0].astype(int), warped[..., 1].astype(int)
    assert np.abs(np.diff(ramp_x, axis=1)).max() <= 3 and np.abs(np.diff(ramp_y, axis=0)).max() <= 3
    assert region[60:200, 60:200].all()
    # Beyond the mesh the similarity takes over: a corner shows about what it maps there, (x - 10, y + 5).
    assert np.abs(warped[250, 5, :2].astype(int) - (0, 255)).max() <= 8


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


def centre(labels: np.ndarray, name: str) -> np.ndarray:
    ys, xs = np.nonzero(labels == LABEL_INDEX[name])
    return np.array([xs.mean(), ys.mean()])


def turned(image: np.ndarray, cx: int, half: int, amount: float) -> np.ndarray:
    """`image` with the head as if turned: columns near `cx` pushed sideways by up to `amount` × `half` px, smoothly
    to nothing at `half` px from it (one side of the face narrowed, the other widened)."""
    import cv2

    h, w = image.shape[:2]
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    u = (xs - cx) / half
    src_x = cx + half * (u + amount * (1 - u ** 2) * (np.abs(u) < 1))
    return cv2.remap(image, src_x, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def test_a_swap_between_faces_of_other_size_and_pose_lands_features_on_features(pipe, astronaut, grace_hopper):
    import cv2

    import mgpe_toolkit.stages.encode_classical as enc

    small = cv2.resize(grace_hopper, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)  # a face of 120 px
    source, target = pipe.prepare(small), pipe.prepare(turned(astronaut, 230, 130, 0.35))
    if enc.face_mesh(source.image) is None:
        pytest.skip("no face mesh here (mediapipe not installed)")
    parsed = pipe.parse(pipe.swap(source, target).aligned).labels
    for name in ("l_eye", "r_eye", "nose", "mouth"):
        off = np.linalg.norm(centre(parsed, name) - centre(target.mask.labels, name))
        assert off < 3, (name, off)
    # A transfer of the skin (nose, brows) follows the meshes too (not one similarity: a second nose beside the
    # target's showed on held-out pairs).
    mixed = pipe.stage("encode").mix(pipe.encode(target), pipe.encode(source), ["skin"])
    assert mixed.codes["skin"].mesh_to is not None
    parsed = pipe.parse(pipe.transfer(source, target, ["skin"]).aligned).labels
    # The brows are the source's own (their shape and length, about 40 px here): their centres may differ by a few
    # pixels more than the nose's (l_brow 3.0-3.3 px, r_brow 1.4-1.5).
    for name, most in (("nose", 3), ("l_brow", 4), ("r_brow", 4)):
        off = np.linalg.norm(centre(parsed, name) - centre(target.mask.labels, name))
        assert off < most, (name, off)


GREEN = np.array([40, 170, 40])


def green(pixels: np.ndarray) -> np.ndarray:
    p = pixels.astype(int)
    return (p[..., 1] > p[..., 0] + 50) & (p[..., 1] > p[..., 2] + 50)


@pytest.fixture(scope="module")
def fringed(pipe, grace_hopper):
    """grace_hopper with a green fringe over her left eye and brow (labelled hair) and a few of its strands
    reaching past the labelled outline into the skin, as parsed outlines do."""
    face = pipe.prepare(grace_hopper)
    image, labels = face.image.copy(), face.mask.labels.copy()
    ys, xs = np.nonzero(np.isin(labels, [LABEL_INDEX["l_eye"], LABEL_INDEX["l_brow"]]))
    y0, y1, x0, x1 = ys.min() - 40, ys.max() + 6, xs.min() - 10, xs.max() + 10
    rng = np.random.default_rng(0)
    strands = np.clip(GREEN + rng.normal(0, 12, (y1 - y0, x1 - x0, 1)), 0, 255)
    image[y0:y1, x0:x1] = strands.astype(np.uint8)
    labels[y0:y1, x0:x1] = LABEL_INDEX["hair"]
    for x in range(x0 + 4, x1 - 4, 9):  # strands beyond the outline, labelled skin
        image[y1:y1 + 6, x:x + 2] = GREEN
    from mgpe_toolkit.types import FaceMask, PreparedFace

    return PreparedFace(image, FaceMask(labels))


def test_the_sources_fringe_is_not_carried_into_the_face(pipe, fringed, astronaut):
    import cv2

    target = pipe.prepare(astronaut)
    face = np.isin(target.mask.labels, [LABEL_INDEX[n] for n in ("skin", "nose", "l_eye", "r_eye", "l_brow",
                                                                    "r_brow", "u_lip", "l_lip", "mouth")])
    result = pipe.swap(fringed, target)
    assert green(fringed.image).sum() > 2000
    # The source's hair is green, and so is the result's: it may fade over the target's hairline, not further.
    hairline = cv2.dilate((target.mask.labels == LABEL_INDEX["hair"]).astype(np.uint8), np.ones((9, 9), np.uint8))
    face &= ~hairline.astype(bool)
    assert green(result.aligned[face]).sum() < 5  # no strand in the face: its skin there is the target's, recoloured
    assert (pipe.parse(result.aligned).labels == LABEL_INDEX["l_eye"]).sum() > 0.6 * (face & (
        target.mask.labels == LABEL_INDEX["l_eye"])).sum()  # the covered eye is an eye (the target's, said in a note)
    assert any("left_eye" in n for n in result.notes)
    # A transfer of skin and the uncovered eye brings no hair either.
    moved = pipe.transfer(fringed, target, ["skin", "right_eye"]).aligned
    assert green(moved[face]).sum() < 5


def test_the_targets_hair_over_its_face_stays_hair_on_top(pipe, astronaut, grace_hopper):
    """A target whose hair hangs over its forehead and eye: after swap+ those pixels are hair (the source's
    colour), not the source's skin."""
    import cv2

    from mgpe_toolkit.types import FaceMask, PreparedFace

    plain = pipe.prepare(astronaut)
    image, labels = plain.image.copy(), plain.mask.labels.copy()
    ys, xs = np.nonzero(labels == LABEL_INDEX["r_brow"])
    y0, y1, x0, x1 = ys.min() - 30, ys.max() + 14, xs.min() - 6, xs.max() + 12
    hair = labels == LABEL_INDEX["hair"]
    image[y0:y1, x0:x1] = np.median(image[hair], axis=0).astype(np.uint8)  # her own hair's colour, over the brow
    labels[y0:y1, x0:x1] = LABEL_INDEX["hair"]
    target = PreparedFace(image, FaceMask(labels))
    source = pipe.prepare(grace_hopper)
    result = pipe.swap(source, target).aligned
    lab = cv2.cvtColor(result, cv2.COLOR_RGB2LAB).astype(float)
    over = np.zeros(labels.shape, bool)
    over[y0 + 4:y1 - 4, x0 + 4:x1 - 4] = True
    rest_hair = (labels == LABEL_INDEX["hair"]) & ~over
    skin = labels == LABEL_INDEX["skin"]
    got, as_hair, as_skin = lab[over].mean(0), lab[rest_hair].mean(0), lab[skin].mean(0)
    assert np.linalg.norm(got - as_hair) < 0.5 * np.linalg.norm(got - as_skin), (got, as_hair, as_skin)
