"""Classical swaps take the target photo's light and white balance (issue 17: no pasted-in face)."""
from __future__ import annotations

import cv2
import numpy as np

from mgpe_toolkit import Pipeline
from mgpe_toolkit.labels import COMPONENTS


def _skin_lab(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    skin = np.isin(labels, list(COMPONENTS["skin"].indices))
    return cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)[skin].mean(0)


def test_a_face_from_other_light_takes_the_targets(astronaut):
    pipe = Pipeline()
    target = pipe.prepare(astronaut)
    cast = np.clip(astronaut.astype(np.float32) * [0.55, 0.6, 0.9], 0, 255).astype(np.uint8)  # dim, blue light
    source = pipe.prepare(cast)
    want = _skin_lab(target.image, target.mask.labels)
    before = _skin_lab(source.image, source.mask.labels)
    got = _skin_lab(pipe.swap(source, target).aligned, target.mask.labels)
    assert np.abs(before - want).max() > 15  # the cast is strong
    assert abs(got[0] - want[0]) < 6 and np.abs(got[1:] - want[1:]).max() < 4, (got, want)


def test_a_grey_face_in_a_colour_photo_gets_its_colour(astronaut, grace_hopper):
    pipe = Pipeline()
    grey = np.repeat(cv2.cvtColor(grace_hopper, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    target = pipe.prepare(astronaut)
    result = pipe.swap(pipe.prepare(grey), target).aligned
    want = _skin_lab(target.image, target.mask.labels)
    got = _skin_lab(result, target.mask.labels)
    assert np.abs(got[1:] - want[1:]).max() < 4, (got, want)  # skin-coloured, not grey


def test_revealed_backdrop_is_neither_black_nor_the_removed_hair(astronaut):
    from mgpe_toolkit.labels import LABEL_INDEX

    pipe = Pipeline()
    face = pipe.prepare(astronaut)
    result = pipe.edit(face, ["hair->background"]).aligned
    revealed = face.mask.labels == LABEL_INDEX["hair"]
    assert revealed.sum() > 2000
    px = result[revealed].astype(int)
    assert (px.max(-1) > 40).all()  # no black hole
    backdrop = cv2.cvtColor(face.image, cv2.COLOR_RGB2LAB)[face.mask.labels == LABEL_INDEX["background"]].mean(0)
    hair = cv2.cvtColor(face.image, cv2.COLOR_RGB2LAB)[revealed].mean(0)
    got = cv2.cvtColor(result, cv2.COLOR_RGB2LAB)[revealed].mean(0)
    assert np.linalg.norm(got - backdrop) < 0.3 * np.linalg.norm(hair - backdrop)  # the backdrop's, not the hair's
    changed = np.abs(result.astype(int) - face.image.astype(int)).max(-1) > 20
    assert changed[revealed].mean() > 0.9  # nothing of the hair is copied back


def test_grown_skin_is_shaded_towards_its_outline(astronaut):
    """The generator's skin grown into former hair darkens towards the outline (measured before fusing, where
    nothing of the backdrop is blended in)."""
    from mgpe_toolkit.labels import LABEL_INDEX
    from mgpe_toolkit.maskops import apply_ops, parse_ops
    from mgpe_toolkit.types import FaceMask

    drops = {}
    for shade in (False, True):
        pipe = Pipeline(options={"generate": {"shade": shade}})
        face = pipe.prepare(astronaut)
        target = apply_ops(face.mask.labels, parse_ops(["hair->skin"]))
        fg = pipe.stage("generate").generate(pipe.encode(face), FaceMask(target))
        grown = face.mask.labels == LABEL_INDEX["hair"]
        skin = np.isin(target, list(COMPONENTS["skin"].indices)).astype(np.uint8)
        dist = cv2.distanceTransform(skin, cv2.DIST_L2, 5)
        light = cv2.cvtColor(fg, cv2.COLOR_RGB2LAB)[..., 0].astype(float)
        rim, inner = light[grown & (dist < 4)], light[grown & (dist > 24)]
        assert len(rim) > 200 and len(inner) > 200
        drops[shade] = inner.mean() - rim.mean()
    assert drops[True] > drops[False] + 20, drops  # a head, not a flat cut-out
