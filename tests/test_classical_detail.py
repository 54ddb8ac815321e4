"""Classical fills and recolourings without speckle, halos or whitened lips, and swaps between crops of two sizes
(issue 17: edits that read as photographs)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.labels import LABEL_INDEX

LIPS = [LABEL_INDEX["u_lip"], LABEL_INDEX["l_lip"]]


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


def _white(image: np.ndarray, region: np.ndarray) -> float:
    """The share of `region` that is teeth-white: light and without colour."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)[region]
    return float(((lab[:, 0] > 190) & (np.abs(lab[:, 1:] - 128).max(1) < 10)).mean())


def test_lips_take_the_sources_lip_colour_not_its_teeth(pipe, astronaut, grace_hopper):
    source, target = pipe.prepare(astronaut), pipe.prepare(grace_hopper)  # an open smile; closed lips
    teeth = source.mask.labels == LABEL_INDEX["mouth"]
    assert teeth.sum() > 200
    source.image[teeth] = (245, 243, 238)  # white teeth, to be mistaken for lip colour
    lips = np.isin(target.mask.labels, LIPS)
    result = pipe.transfer(source, target, ["mouth"]).aligned
    assert _white(result, lips) < 0.02, _white(result, lips)
    assert np.abs(result.astype(int) - target.image.astype(int))[lips].mean() > 5  # and they did change


def test_the_lips_outline_keeps_its_colour(pipe, astronaut, grace_hopper):
    """The labelled outline of lips is a band of skin: recoloured, it would draw a halo round the new lips."""
    source, target = pipe.prepare(astronaut), pipe.prepare(grace_hopper)
    lips = np.isin(target.mask.labels, LIPS).astype(np.uint8)
    outline = lips.astype(bool) & ~cv2.erode(lips, np.ones((3, 3), np.uint8)).astype(bool)
    core = cv2.erode(lips, np.ones((9, 9), np.uint8)).astype(bool)
    change = np.abs(pipe.transfer(source, target, ["mouth"]).aligned.astype(int) - target.image.astype(int)).sum(-1)
    assert change[core].mean() > 15  # the lips did change
    assert change[outline].mean() < 0.5 * change[core].mean()


def test_a_backdrop_with_text_is_filled_without_speckle(pipe, astronaut):
    """Letters and edges in the backdrop are structure, not grain: the revealed backdrop stays smooth and no
    coloured noise appears in it."""
    photo = astronaut.copy()
    photo[10:120, 330:500:6] = 20  # thin dark strokes in the backdrop above the head, right of the hair
    face = pipe.prepare(photo)
    hair = face.mask.labels == LABEL_INDEX["hair"]
    result = pipe.edit(face, ["hair->background"]).aligned
    inside = cv2.erode(hair.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    lab = cv2.cvtColor(result, cv2.COLOR_RGB2LAB).astype(np.float32)
    fine = lab - cv2.GaussianBlur(lab, (0, 0), 1.5)
    assert inside.sum() > 2000
    assert fine[..., 0][inside].std() < 2, fine[..., 0][inside].std()  # grain like the plain backdrop's
    assert fine[..., 1:][inside].std() < 0.6, fine[..., 1:][inside].std()  # no coloured speckle


def test_swap_between_crops_of_two_sizes(pipe, astronaut, grace_hopper):
    source = pipe.prepare(grace_hopper, size=512)  # e.g. an aligned 512² face onto a photo aligned at 256²
    target = pipe.prepare(astronaut)
    result = pipe.swap(source, target)
    assert result.aligned.shape == target.image.shape
    assert np.array_equal(result.mask.labels, target.mask.labels)
    skin = target.mask.labels == LABEL_INDEX["skin"]
    skin[:int(np.nonzero(target.mask.labels == LABEL_INDEX["l_eye"])[0].mean())] = False  # (the forehead by her
    # hairline is the astronaut's own skin in grace's colours: grace's there is under her cap)
    detail = lambda img: (img.astype(np.float32) - cv2.GaussianBlur(img, (0, 0), 2).astype(np.float32)).mean(-1)
    # grace's lined face: near her own detail at 256² (13.1; the light of the target scales it by about the square
    # root of its gain), about twice the astronaut's smooth skin (5.7)
    own = pipe.prepare(grace_hopper)
    own_skin = own.mask.labels == LABEL_INDEX["skin"]
    own_skin[:int(np.nonzero(own.mask.labels == LABEL_INDEX["l_eye"])[0].mean())] = False
    carried = detail(result.aligned)[skin].std()
    assert carried > 0.75 * detail(own.image)[own_skin].std() and carried > 1.8 * detail(target.image)[skin].std()
    same_size = pipe.swap(own, target).aligned  # as if the source were cut at 256²
    assert np.abs(result.aligned.astype(int) - same_size.astype(int))[skin].mean() < 10


def test_a_dark_face_lit_like_a_fair_photo_keeps_its_detail_near_its_own_contrast():
    """Harmonising a dark face (L* about 39) onto a photo whose skin is fair (L* about 73): the face's mean lightness
    becomes the photo's, its texture (pixels about the mean) grows by about the square root of that gain, not by the
    whole gain (which drew its highlights as silver patches)."""
    from mgpe_toolkit.stages.fuse_classical import harmonise

    rng = np.random.default_rng(0)
    side = 128
    labels = np.zeros((side, side), np.uint8)
    labels[24:104, 24:104] = LABEL_INDEX["skin"]
    skin = labels == LABEL_INDEX["skin"]

    def face(lightness: float, spread: float) -> np.ndarray:
        lab = np.full((side, side, 3), 128, np.float32)
        lab[..., 0] = lightness + spread * rng.standard_normal((side, side))
        lab[..., 1], lab[..., 2] = 140, 145
        return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)

    dark, fair = face(100, 8), face(185, 2)  # OpenCV's 8-bit L: L* 39 and 73
    out = harmonise(dark, fair, labels, labels, skin)
    light = lambda img: cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)[30:98, 30:98]  # noqa: E731
    before, after = light(dark), light(out)
    gain = after.mean() / before.mean()
    assert abs(after.mean() - light(fair).mean()) < 8 and gain > 1.7
    assert 1.2 < after.std() / before.std() < 0.8 * gain, (after.std(), before.std(), gain)
