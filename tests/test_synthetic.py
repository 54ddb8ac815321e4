import numpy as np

from mgpe_toolkit.data.synthetic import synthetic_portrait
from mgpe_toolkit.labels import LABEL_INDEX as I
from mgpe_toolkit.labels import NUM_CLASSES


def test_every_class_appears_across_a_few_seeds():
    seen = set()
    for seed in range(8):
        seen |= set(np.unique(synthetic_portrait(seed).mask).tolist())
    assert seen == set(range(NUM_CLASSES))


def test_seeded_and_sized():
    a, b = synthetic_portrait(5), synthetic_portrait(5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, synthetic_portrait(6).image)
    small = synthetic_portrait(5, size=96)
    assert small.image.shape == (96, 96, 3) and small.mask.shape == (96, 96) and small.mask.dtype == np.uint8


def test_options_force_accessories():
    p = synthetic_portrait(0, glasses=True, hat=True, earrings=False, necklace=False, open_mouth=True)
    present = set(np.unique(p.mask).tolist())
    assert {I["eye_g"], I["hat"], I["mouth"]} <= present and not {I["ear_r"], I["neck_l"]} & present


def test_mask_is_pixel_exact_to_the_image():
    """Colour is flat inside each label (noise only) and jumps where the label changes."""
    for seed in range(4):
        p = synthetic_portrait(seed, glasses=False)
        img = p.image.astype(int)
        same = p.mask[:, 1:] == p.mask[:, :-1]
        textured = np.isin(p.mask, [I["hair"], I["l_eye"], I["r_eye"]])
        flat = same & ~textured[:, 1:] & ~textured[:, :-1]
        step = np.abs(img[:, 1:] - img[:, :-1]).sum(-1)
        assert np.median(step[flat]) < 20  # noise of std 4 per channel
        assert np.median(step[~same]) > 5 * np.median(step[flat])


def test_landmarks_sit_on_their_parts():
    for seed in range(4):
        p = synthetic_portrait(seed)
        (lx, ly), (rx, ry) = p.landmarks[:2].round().astype(int)
        assert p.mask[ly, lx] == I["l_eye"] and p.mask[ry, rx] == I["r_eye"] and lx < rx
        assert np.abs(p.landmarks[:2] - [(96.5, 120), (159.5, 120)]).max() < 15  # near the alignment template
