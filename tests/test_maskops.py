import numpy as np
import pytest

from mgpe_toolkit.errors import MaskOpError
from mgpe_toolkit.io import write_mask
from mgpe_toolkit.labels import LABEL_INDEX as I
from mgpe_toolkit.maskops import apply_ops, parse_op, parse_ops

SK, HA, LE, RE, BR, RB, UL, LL, MO, NO = (I[n] for n in ("skin", "hair", "l_eye", "r_eye", "l_brow", "r_brow",
                                                          "u_lip", "l_lip", "mouth", "nose"))


def face() -> np.ndarray:
    """A 12×12 face: hair rows 0-2, skin below, brows row 4, eyes row 5, lips rows 8-9."""
    m = np.zeros((12, 12), np.uint8)
    m[0:3, 1:11] = HA
    m[3:11, 2:10] = SK
    m[4, 3:5], m[4, 7:9] = BR, RB
    m[5, 3:5], m[5, 7:9] = LE, RE
    m[8, 4:8], m[9, 4:8] = UL, LL
    return m


def test_relabel_everywhere():
    m = face()
    out = apply_ops(m, ["hair->skin"])
    assert not (out == HA).any()
    assert (out[m == HA] == SK).all()
    assert np.array_equal(out[m != HA], m[m != HA])


def test_relabel_at_forehead_touches_only_the_forehead():
    m = face()
    m[6:8, 1] = HA  # hair beside the cheek, below the brows
    out = apply_ops(m, ["hair->skin@forehead"])
    assert (out[0:3, 2:10] == SK).all()  # above the brows, within the face's width
    assert (out[0:3, [1, 10]] == HA).all()  # beside it: the hair at the temples stays
    assert (out[6:8, 1] == HA).all()


def test_the_forehead_ends_at_the_hairline_and_follows_a_curve():
    m = np.full((64, 64), HA, np.uint8)  # a fringe down to row 28
    m[28:60, 12:52] = SK
    m[30:32, 18:28], m[30:32, 36:46] = BR, RB
    m[34:36, 20:26], m[34:36, 38:44] = LE, RE
    m[36:45, 30:34] = NO  # the nose's base 15 rows below the brows: the hairline 15 rows above them
    out = apply_ops(m, ["hair->skin@forehead"])
    turned = (out == SK) & (m == HA)
    assert turned[24:28, 14:50].all() and not turned[:14].any()  # up to the hairline, not the crown
    assert not turned[:, :12].any() and not turned[:, 52:].any()  # within the face's width
    assert 0 < turned[16].sum() < turned[27].sum()  # rounded: narrower near the hairline


def test_relabel_in_a_relative_box():
    out = apply_ops(face(), ["hair->skin@0:0.5,0:1"])
    assert (out[0:3, 1:6] == SK).all() and (out[0:3, 6:11] == HA).all()


def test_component_names_and_groups():
    out = apply_ops(face(), ["mouth->skin", "eyes->skin"])
    assert not np.isin(out, [UL, LL, LE, RE]).any()
    assert apply_ops(face(), ["left_eye->hair"])[5, 3] == HA


def test_grow_left_eye():
    m = face()
    out = apply_ops(m, ["grow:left_eye:1"])
    expect = m.copy()
    for y, x in [(4, 3), (4, 4), (6, 3), (6, 4), (5, 2), (5, 5)]:  # the 4-neighbours of the 1×2 eye
        expect[y, x] = LE
    assert np.array_equal(out, expect)


def test_grow_keeps_lip_labels_apart():
    out = apply_ops(face(), ["grow:mouth:1"])
    assert out[7, 5] == UL and out[10, 5] == LL


def test_shrink_fills_with_surroundings():
    m = face()
    out = apply_ops(m, ["shrink:hair:1"])
    assert (out == HA).sum() == 8 and (out[1, 2:10] == HA).all()
    assert out[0, 1] == 0 and out[1, 10] == 0  # ends next to the background took it
    assert out[2, 5] == SK  # the bottom row took the skin below it


def test_move_shifts_and_refills():
    m = face()
    out = apply_ops(m, ["move:l_eye:1,-1"])
    assert out[4, 4] == LE and out[4, 5] == LE
    assert out[5, 3] != LE and out[5, 4] != LE
    assert (out == LE).sum() == 2


def test_move_off_the_image_clips():
    out = apply_ops(face(), ["move:hair:0,-2"])
    assert (out == HA).sum() == 10 and (out[0, 1:11] == HA).all()


def test_scale_about_the_centre():
    m = np.zeros((21, 21), np.uint8)
    m[9:12, 9:12] = LE
    out = apply_ops(m, ["scale:l_eye:3"])
    ys, xs = np.nonzero(out == LE)
    # 3 px scaled by 3 about centre 10 spans 5.5..14.5: rows and columns 6..14.
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (6, 14, 6, 14)
    assert (out == LE).sum() == 81
    small = apply_ops(out, ["scale:l_eye:0.34"])
    assert 1 <= (small == LE).sum() <= 9


def test_from_takes_the_shape_from_another_mask(tmp_path):
    other = face()
    other[8, 4:8] = 0
    other[8, 3:9] = UL  # a wider upper lip
    other[9:11, 4:8] = LL  # a thicker lower lip
    path = tmp_path / "smile.mask.png"
    write_mask(path, other)
    op = parse_op(f"from:mouth:{path}")
    out = op.apply(face())
    assert np.array_equal(np.isin(out, [UL, LL, MO]), np.isin(other, [UL, LL, MO]))
    assert out[8, 3] == UL and out[10, 5] == LL


def test_from_resizes_a_mask_of_another_size(tmp_path):
    big = np.kron(face(), np.ones((2, 2), np.uint8))
    write_mask(tmp_path / "big.png", big)
    assert np.array_equal(apply_ops(face(), [f"from:mouth:{tmp_path / 'big.png'}"]), face())


def test_ops_apply_in_order_and_leave_the_input_alone():
    m = face()
    before = m.copy()
    a = apply_ops(m, ["hair->skin", "grow:left_eye:1"])
    b = apply_ops(m, ["grow:left_eye:1", "hair->skin"])
    assert np.array_equal(m, before)
    assert np.array_equal(a, b)  # independent ops commute
    assert not np.array_equal(apply_ops(m, ["l_eye->skin", "grow:l_eye:1"]), apply_ops(m, ["grow:l_eye:1", "l_eye->skin"]))


@pytest.mark.parametrize("op,message", [
    ("", "empty op"),
    ("hair->", "relabel needs SRC->DST"),
    ("hiar->skin", "unknown name 'hiar'"),
    ("hair->mouth", "name one label (inner_mouth, u_lip, l_lip)"),
    ("hair->skin@top", "neither x0:x1,y0:y1 nor one of forehead"),
    ("hair->skin@0.6:0.2,0:1", "0 <= x0 < x1 <= 1"),
    ("grow:left_eye", "grow needs grow:NAME:PX"),
    ("grow:left_eye:x", "PX must be a whole number of pixels, got 'x'"),
    ("shrink:hair:0", "PX must be positive"),
    ("move:hair:3", "move needs DX,DY"),
    ("move:hair:1.5,2", "DX must be a whole number"),
    ("scale:hair:big", "F must be a number"),
    ("scale:hair:-1", "F must lie in (0, 16]"),
    ("bend:hair:3", "unknown verb 'bend'"),
    ("hair", "expected SRC->DST or VERB:NAME:ARG"),
    ("from:mouth:/no/such.png", "/no/such.png: no such file"),
])
def test_malformed_ops_are_precise_errors(op, message):
    with pytest.raises(MaskOpError) as err:
        parse_op(op)
    assert message in str(err.value)
    assert str(err.value).startswith(f"bad mask op {op.strip()!r}")


def test_from_file_without_the_component_is_refused(tmp_path):
    write_mask(tmp_path / "bald.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(MaskOpError, match="holds no mouth pixels"):
        parse_op(f"from:mouth:{tmp_path / 'bald.png'}")


def test_parse_ops_fails_before_any_work():
    with pytest.raises(MaskOpError, match="grow:eyes:-"):
        parse_ops(["hair->skin", "grow:eyes:-"])


def test_an_op_cut_by_a_shell_redirection_says_so():
    with pytest.raises(MaskOpError, match=r"the shell read '>\.\.\.' as a redirection.*'hair->skin'.*hair=DST"):
        parse_op("hair-")


def test_src_equals_dst_is_a_relabel():
    m = np.array([[I["hair"], I["skin"]], [I["hair"], I["background"]]], np.uint8)
    assert np.array_equal(parse_op("hair=skin").apply(m), parse_op("hair->skin").apply(m))
    assert parse_op("hair=skin@forehead").region is not None


def test_pixel_arguments_are_bounded_by_the_largest_mask():
    for bad in ("grow:eyes:100000", "shrink:lips:4097", "move:mouth:99999999999999999999,0", "move:mouth:0,-5000"):
        with pytest.raises(MaskOpError, match="larger than any mask"):
            parse_op(bad)


def test_a_large_grow_is_quick_and_exact():
    import time

    m = np.zeros((256, 256), np.uint8)
    m[120:128, 90:110] = I["l_eye"]
    t = time.perf_counter()
    grown = parse_op("grow:eyes:127").apply(m)
    assert time.perf_counter() - t < 5
    # Within 127 pixels of some eye pixel, by brute force.
    eye = np.argwhere(m == I["l_eye"])
    grid = np.argwhere(np.ones_like(m, bool))
    near = (((grid[:, None, :] - eye[None, :, :]) ** 2).sum(-1) <= 127 ** 2).any(1).reshape(m.shape)
    assert np.array_equal(grown == I["l_eye"], near)
    assert (parse_op("shrink:eyes:4096").apply(m) == I["l_eye"]).sum() == 0
