"""An edit changes only the pixels whose label changed, plus a narrow feathered band: the rest of the photo,
inside the face too, keeps its bytes (a sharp 1024² portrait stays sharp)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.labels import LABEL_INDEX
from mgpe_toolkit.pipeline import EDIT_BAND, edit_weight, local_weight, restore_detail


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


def sharp_portrait(astronaut, size: int) -> np.ndarray:
    """The astronaut at size², with a fine noise texture: every pixel carries detail a resampling would blur."""
    img = cv2.resize(astronaut, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    noise = np.random.default_rng(0).integers(-12, 13, (size, size, 1))
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def photo_pixels(face, region: np.ndarray, shape) -> np.ndarray:
    """An aligned-crop region (bool) in photo coordinates."""
    warped = cv2.warpAffine(region.astype(np.float32), face.alignment.inverse(), (shape[1], shape[0]),
                            flags=cv2.INTER_LINEAR)
    return warped > 0


def test_local_weight_is_one_on_the_change_and_fades_over_the_band():
    changed = np.zeros((256, 256), bool)
    changed[100:110, 100:110] = True
    w = local_weight(changed)
    assert (w[changed] == 1).all()
    band = EDIT_BAND * 256
    assert w[105, 110] > 0.5 and w[105, 110 + int(band) + 2] == 0
    assert (w[:90] == 0).all() and not local_weight(np.zeros((8, 8), bool)).any()


def test_growing_the_eyes_of_a_sharp_1024_portrait_leaves_the_rest_byte_identical(pipe, astronaut):
    photo = sharp_portrait(astronaut, 1024)
    face = pipe.prepare(photo)
    result = pipe.edit(face, ["grow:eyes:1"])
    changed = result.pasted != photo
    assert changed.any(), "the edit changed nothing"
    eyes = np.isin(face.mask.labels, [LABEL_INDEX["l_eye"], LABEL_INDEX["r_eye"]])
    near_eyes = cv2.dilate(eyes.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)  # 4 crop px around
    assert not changed.any(-1)[~photo_pixels(face, near_eyes, photo.shape)].any()
    # The face box keeps its detail: its Laplacian energy is nearly the photo's.
    ys, xs = np.nonzero(np.isin(face.mask.labels, [LABEL_INDEX[n] for n in ("l_eye", "r_eye", "nose", "mouth")]))
    inv = face.alignment.inverse()
    (x0, y0), (x1, y1) = (np.array([[xs.min(), ys.min()], [xs.max(), ys.max()]]) @ inv[:, :2].T + inv[:, 2]).astype(int)
    lap = lambda a: cv2.Laplacian(cv2.cvtColor(a[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()  # noqa: E731
    assert lap(result.pasted) > 0.9 * lap(photo)  # 0.95 measured; the old crop-wide paste kept about 0.3
    assert (result.pasted[y0:y1, x0:x1] == photo[y0:y1, x0:x1]).all(-1).mean() > 0.8


def test_the_aligned_result_keeps_the_face_outside_the_change(pipe, astronaut):
    face = pipe.prepare(astronaut)
    result = pipe.edit(face, ["hair->background"])
    untouched = edit_weight(face.mask.labels, result.mask.labels) == 0
    assert (result.aligned[untouched] == face.image[untouched]).all()
    assert (result.aligned[~untouched] != face.image[~untouched]).any()


def test_a_hair_transfer_changes_nothing_outside_the_hair_and_its_band(pipe, astronaut, grace_hopper):
    target, source = pipe.prepare(astronaut), pipe.prepare(grace_hopper)
    result = pipe.transfer(source, target, ["hair"])
    hair = target.mask.labels == LABEL_INDEX["hair"]
    allowed = photo_pixels(target, local_weight(hair) > 0, astronaut.shape)
    changed = (result.pasted != astronaut).any(-1)
    assert changed.any() and not changed[~allowed].any()


@pytest.mark.parametrize("size", [2048, 200])
def test_large_and_small_photos_edit(pipe, astronaut, size):
    photo = sharp_portrait(astronaut, size)
    result = pipe.edit(pipe.prepare(photo), ["hair->skin"])
    assert result.pasted.shape == photo.shape and (result.pasted != photo).any()
    assert (result.pasted == photo).all(-1).mean() > 0.5  # the backdrop, clothes and most of the face untouched


def test_the_native_size_follows_the_face_in_the_photo(pipe, astronaut):
    from mgpe_toolkit.align import native_size, template
    from mgpe_toolkit.pipeline import MAX_SIZE

    big, small = pipe.prepare(sharp_portrait(astronaut, 1024), size="native"), pipe.prepare(astronaut[::3, ::3],
                                                                                            size="native")
    s = big.image.shape[0]
    assert 256 < s <= MAX_SIZE and s % 32 == 0 and big.mask.labels.shape == (s, s) and big.alignment.size == s
    assert small.image.shape[0] == 256  # a small face is not blown up
    # The same alignment, scaled: the five landmarks land on the template of the larger crop.
    m = big.alignment.matrix
    assert np.abs(big.alignment.landmarks @ m[:, :2].T + m[:, 2] - template(s)).max() < 0.06 * s
    assert native_size(big.alignment, 4096) >= s and native_size(big.alignment, 320) == 320


def eye_box_sharpness(face, result, photo) -> float:
    eyes = np.isin(face.mask.labels, [LABEL_INDEX["l_eye"], LABEL_INDEX["r_eye"]])
    ys, xs = np.nonzero(photo_pixels(face, eyes, photo.shape))
    box = np.s_[ys.min() - 8:ys.max() + 8, xs.min() - 8:xs.max() + 8]
    lap = lambda a: cv2.Laplacian(cv2.cvtColor(a[box], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()  # noqa: E731
    return lap(result.pasted) / lap(photo)


def test_an_edit_at_the_native_size_keeps_the_eyes_sharp_where_256_blurs_them(pipe, astronaut):
    photo = sharp_portrait(astronaut[20:300, 110:390], 1024)  # the face about 600 px wide, as in CelebA-HQ
    kept = {}
    for size in (256, "native"):
        face = pipe.prepare(photo, size=size)
        assert face.image.shape[0] == 256 if size == 256 else face.image.shape[0] >= 512
        kept[size] = eye_box_sharpness(face, pipe.edit(face, ["grow:eyes:1"]), photo)
    # Measured 0.79 at 256 and 0.88 native; what is left is the regenerated eye pixels, resampled from the photo.
    assert kept["native"] > 0.84 and kept["native"] > kept[256] + 0.05, kept


@pytest.mark.parametrize("first", ["big", "small"])
def test_swap_between_a_1024_and_a_256_face_works_both_ways(pipe, astronaut, grace_hopper, first):
    photos = {"big": sharp_portrait(astronaut, 1024), "small": cv2.resize(grace_hopper, (256, 256))}
    source, target = photos[first], photos["small" if first == "big" else "big"]
    a, b = pipe.prepare(source, size="native"), pipe.prepare(target, size="native")
    result = pipe.swap(a, b)
    assert result.pasted.shape == target.shape and result.aligned.shape == b.image.shape
    assert (result.pasted != target).any(-1).mean() > 0.02


def edge_moves(labels: np.ndarray) -> np.ndarray:
    """Row-to-row moves (px) of the skin's left edge, where it moves at all: a smooth edge moves 1 px at a time
    along a diagonal, a mask blown up from a smaller crop in stair steps of the blow-up factor."""
    rows = [int(np.argmax(r)) for r in labels == LABEL_INDEX["skin"] if r.any()]
    d = np.abs(np.diff(rows))
    return d[(d > 0) & (d < 20)]


def test_the_mask_at_the_native_size_has_no_stair_steps(pipe, astronaut):
    face = pipe.prepare(sharp_portrait(astronaut[20:300, 110:390], 1024), size="native")
    s = face.image.shape[0]
    blown_up = cv2.resize(pipe.prepare(face.photo, size=256).mask.labels, (s, s), interpolation=cv2.INTER_NEAREST)
    native, stairs = edge_moves(face.mask.labels), edge_moves(blown_up)
    assert (stairs >= 2).mean() > 0.9  # the check sees stairs where they are
    assert len(native) > 100 and (native >= 2).mean() < 0.3, np.bincount(native)


def test_an_upsampled_mask_follows_the_photo_edges_not_the_network_blur():
    from mgpe_toolkit.stages.parse_unet import best_class, refine_edges

    # A photo whose dark/bright edge waves along x = 260 + 2.5 sin(y / 9), and the logits of a network that saw it at
    # half the size (a straight, soft boundary at x = 260, upsampled): the refined boundary is the photo's.
    s = 512
    y, x = np.mgrid[:s, :s].astype(np.float32)
    edge = 260 + 2.5 * np.sin(y / 9)
    photo = np.repeat(np.where(x < edge, 50, 190).astype(np.uint8)[..., None], 3, axis=2)
    photo = np.clip(photo + np.random.default_rng(1).integers(-4, 5, photo.shape), 0, 255).astype(np.uint8)
    logits = np.zeros((19, s, s), np.float32)
    logits[0], logits[1] = -2, 2  # four classes: left, right and two that nowhere win
    logits[LABEL_INDEX["skin"]] = (x - 260) / 3
    logits[LABEL_INDEX["hair"]] = -(x - 260) / 3
    truth = np.where(x < edge, LABEL_INDEX["hair"], LABEL_INDEX["skin"])
    plain, refined = best_class(logits), refine_edges(photo, logits)
    assert set(np.unique(refined)) == {LABEL_INDEX["hair"], LABEL_INDEX["skin"]}
    wrong_plain, wrong_refined = (plain != truth).mean(), (refined != truth).mean()
    assert wrong_plain > 0.002 and wrong_refined < 0.4 * wrong_plain, (wrong_plain, wrong_refined)  # 0.0032, 0.0008


def test_the_parser_snaps_every_boundary_on_a_face_larger_than_its_own(pipe, astronaut):
    from mgpe_toolkit.stages.parse_unet import REFINERS, UNetParser, one_face

    unet = UNetParser()
    face = pipe.prepare(sharp_portrait(astronaut, 1024), size=512).image
    logits = unet.logits(face)
    edges = one_face(REFINERS["edges"](face, logits))
    assert (edges != one_face(REFINERS["hair"](face, logits))).mean() > 0.001  # the two differ on this face
    assert (unet.parse(face).labels == edges).all()
    small = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
    assert (unet.parse(small).labels == one_face(REFINERS["hair"](small, unet.logits(small)))).all()


class LowResFuser:
    """A fuser that renders at 64² as a learned one renders at its trained side: the face it fuses onto, with a flat
    red patch where it changed something, upscaled."""
    resolution = 64

    def fuse(self, foreground, background, target, background_mask=None):
        small = cv2.resize(background, (64, 64), interpolation=cv2.INTER_AREA)
        small[20:30, 20:30] = (200, 30, 30)
        return cv2.resize(small, background.shape[1::-1], interpolation=cv2.INTER_CUBIC)


def laplacian_var(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_a_low_resolution_render_takes_back_the_photo_detail_only_where_it_left_the_photo_be(astronaut):
    pipe = Pipeline()
    face = pipe.prepare(sharp_portrait(astronaut, 1024), size=512)
    pipe._instances["fuse"] = LowResFuser()
    out = pipe.swap(face, face).aligned
    render = LowResFuser().fuse(None, face.image, None)
    kept, patch = (slice(300, 420), slice(150, 360)), (slice(168, 232), slice(168, 232))  # 8 px inside the patch
    # Where the render left the face be, its detail is the photo's (the plain upscale keeps a small share of it).
    assert laplacian_var(render[kept]) < 0.2 * laplacian_var(face.image[kept])
    assert laplacian_var(out[kept]) > 0.8 * laplacian_var(face.image[kept])
    assert np.abs(out[kept].astype(int) - face.image[kept]).mean() < 4
    # Where it painted something else, none of the photo's texture comes through.
    assert np.abs(out[patch].astype(int) - render[patch]).max() <= 2
    # A render at the face's own size is returned as it is.
    assert restore_detail(render, face.image, 512) is render and restore_detail(render, face.image, None) is render
