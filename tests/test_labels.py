import numpy as np
import pytest

from mgpe_toolkit import labels as L
from mgpe_toolkit.data.synthetic import synthetic_portrait
from mgpe_toolkit.io import read_mask


def test_table_is_the_celebamask_order():
    assert L.LABELS[:6] == ("background", "skin", "nose", "eye_g", "l_eye", "r_eye")
    assert L.LABELS[13] == "hair" and L.LABELS[18] == "cloth" and L.NUM_CLASSES == 19
    assert len({tuple(c) for c in L.COLORS}) == 19


def test_helen_round_trips_every_label():
    helen = np.arange(11, dtype=np.uint8).reshape(1, 11)
    canon = L.from_helen(helen)
    assert [L.LABELS[v] for v in canon[0]] == ["background", "skin", "l_brow", "r_brow", "l_eye", "r_eye",
                                               "nose", "u_lip", "mouth", "l_lip", "hair"]
    assert np.array_equal(L.to_helen(canon), helen)


def test_to_helen_refuses_lossy_classes_unless_asked():
    m = np.array([[L.LABEL_INDEX["neck"], L.LABEL_INDEX["l_ear"], L.LABEL_INDEX["hat"]]], dtype=np.uint8)
    with pytest.raises(L.LossyConversionError, match="neck"):
        L.to_helen(m)
    assert L.to_helen(m, strict=False).tolist() == [[0, 0, 0]]  # Helen leaves head wear as background


def test_bisenet_round_trips_every_label_both_ways():
    every = np.arange(19, dtype=np.uint8).reshape(1, 19)
    assert np.array_equal(L.to_bisenet(L.from_bisenet(every)), every)
    assert np.array_equal(L.from_bisenet(L.to_bisenet(every)), every)
    # Name-preserving: BiSeNet's 17 is hair, ours is 13.
    assert L.from_bisenet(np.array([[17, 10]], np.uint8)).tolist() == [[13, 2]]


def test_converters_reject_values_outside_the_source_order():
    with pytest.raises(ValueError, match=r"\[11\]"):
        L.from_helen(np.array([[0, 11]], np.uint8))


def test_assign_sides_fixes_a_mirrored_sample():
    p = synthetic_portrait(1)
    mirrored = p.mask[:, ::-1].copy()  # after a flip the l_* classes sit on the right
    fixed = L.assign_sides(mirrored)
    swap = np.arange(19, dtype=np.uint8)
    for a, b in L.SIDE_PAIRS:
        swap[L.LABEL_INDEX[a]], swap[L.LABEL_INDEX[b]] = L.LABEL_INDEX[b], L.LABEL_INDEX[a]
    assert not np.array_equal(fixed, mirrored)
    assert np.array_equal(fixed, swap[mirrored])
    assert np.array_equal(L.assign_sides(p.mask), p.mask)  # already right: unchanged


def test_assign_sides_places_a_lone_eye_by_the_face_centre():
    m = np.zeros((10, 10), np.uint8)
    m[2:8, 2:8] = L.LABEL_INDEX["skin"]
    m[4, 6] = L.LABEL_INDEX["l_eye"]  # right of the face centre: must become r_eye
    assert L.assign_sides(m)[4, 6] == L.LABEL_INDEX["r_eye"]


def test_colorize_and_decolorize_are_inverse():
    m = np.arange(19, dtype=np.uint8).reshape(1, 19).repeat(3, 0)
    assert np.array_equal(L.decolorize(L.colorize(m)), m)
    bad = L.colorize(m)
    bad[1, 1] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\) at \(x 1, y 1\)"):
        L.decolorize(bad)


@pytest.mark.parametrize("res,expect", [(256, {"left_eye": (48, 32), "mouth": (144, 80), "skin": (256, 256)}),
                                        (128, {"left_eye": (24, 16), "mouth": (72, 40), "hair": (128, 128)})])
def test_component_crop_sizes_scale_with_resolution(res, expect):
    for name, size in expect.items():
        assert L.COMPONENTS[name].crop_size(res) == size


def test_component_crops_on_a_synthetic_face():
    p = synthetic_portrait(2)
    eye = L.component_crop(p.image, p.mask, "left_eye")
    assert eye.shape == (32, 48, 3)
    cx, cy = L.component_center(p.mask, "left_eye")
    assert abs(cx - p.landmarks[0, 0]) < 2 and abs(cy - p.landmarks[0, 1]) < 2
    hair = L.component_crop(p.image, p.mask, "hair")
    assert hair.shape == (256, 256, 3)
    assert (hair[p.mask != L.LABEL_INDEX["hair"]] == 0).all()
    assert (hair[p.mask == L.LABEL_INDEX["hair"]] == p.image[p.mask == L.LABEL_INDEX["hair"]]).all()


def test_missing_component_falls_back_to_template_centre_and_crops_stay_inside():
    m = np.zeros((128, 128), np.uint8)
    assert L.component_center(m, "mouth") == (64.0, 92.0)
    m[0:3, 0:3] = L.LABEL_INDEX["l_eye"]  # a corner eye: crop shifted inside the image
    assert L.crop_box(L.component_center(m, "left_eye"), (24, 16), (128, 128)) == (0, 0, 24, 16)


def test_helen_samples_convert_with_eyes_on_the_right_sides(helen_dir):
    for path in sorted((helen_dir / "labels").glob("*.png")):
        canon = L.from_helen(read_mask(path))
        xs_l = np.nonzero(canon == L.LABEL_INDEX["l_eye"])[1]
        xs_r = np.nonzero(canon == L.LABEL_INDEX["r_eye"])[1]
        assert xs_l.mean() < xs_r.mean(), path.name
        assert np.array_equal(L.to_helen(canon), read_mask(path))
