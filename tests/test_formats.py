"""Mask files for other tools (`--format celebamask|bisenet`): their label order and their side convention."""

import numpy as np
import pytest

from mgpe_toolkit import labels as L
from mgpe_toolkit.io import read_image, read_mask, write_image
from run_cli import mgpe

CANON = L.LABEL_INDEX
BISENET = {n: i for i, n in enumerate(L.BISENET_LABELS)}


@pytest.mark.parametrize("fmt", L.MASK_FORMATS)
def test_every_format_round_trips_every_label(fmt):
    every = np.arange(L.NUM_CLASSES, dtype=np.uint8).reshape(1, -1)
    written = L.to_format(every, fmt)
    assert sorted(written[0].tolist()) == list(range(L.NUM_CLASSES))  # a permutation: nothing merged
    assert np.array_equal(L.from_format(written, fmt), every)
    assert np.array_equal(L.to_format(L.from_format(every, fmt), fmt), every)


def test_unknown_format_or_value_is_an_error():
    with pytest.raises(ValueError, match="celebamask"):
        L.to_format(np.zeros((2, 2), np.uint8), "helen")
    with pytest.raises(ValueError, match="19"):
        L.from_format(np.array([[19]], np.uint8), "bisenet")


def synthetic_face() -> np.ndarray:
    """Canonical mask: eye, brow and ear pairs, the l_ part at the smaller x; both lips."""
    m = np.full((40, 60), CANON["skin"], np.uint8)
    for part, y in (("eye", 15), ("brow", 10), ("ear", 20)):
        m[y:y + 3, 5:12] = CANON[f"l_{part}"]  # image left
        m[y:y + 3, 48:55] = CANON[f"r_{part}"]  # image right
    m[28:30, 25:35], m[31:33, 25:35] = CANON["u_lip"], CANON["l_lip"]
    return m


@pytest.mark.parametrize("fmt, names", [("celebamask", CANON), ("bisenet", BISENET)])
def test_sides_are_the_subjects_in_celebamask_and_bisenet(fmt, names):
    m = synthetic_face()
    out = L.to_format(m, fmt)
    for part, y in (("eye", 15), ("brow", 10), ("ear", 20)):
        # The part at the image's left is the subject's right one.
        assert (out[y:y + 3, 5:12] == names[f"r_{part}"]).all(), part
        assert (out[y:y + 3, 48:55] == names[f"l_{part}"]).all(), part
    # Upper and lower lip are not sides: they keep their names.
    assert (out[28:30, 25:35] == names["u_lip"]).all() and (out[31:33, 25:35] == names["l_lip"]).all()
    assert (out[0, :] == names["skin"]).all()
    assert np.array_equal(L.from_format(out, fmt), m)


def test_canonical_format_is_the_mask_itself():
    m = synthetic_face()
    assert np.array_equal(L.to_format(m, "canonical"), m) and np.array_equal(L.from_format(m, "canonical"), m)


@pytest.fixture(scope="module")
def parsed(tmp_path_factory, astronaut):
    """The aligned astronaut parsed by the default parser in every format, with previews."""
    root = tmp_path_factory.mktemp("formats")
    write_image(root / "astro.jpg", astronaut)
    assert mgpe("align", root / "astro.jpg", root / "aligned").returncode == 0
    out = {}
    for fmt in L.MASK_FORMATS:
        proc = mgpe("parse", root / "aligned", root / fmt, "--format", fmt, "--preview")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out[fmt] = root / fmt
    return out


def test_cli_formats_are_the_canonical_mask_converted(parsed):
    canonical = read_mask(parsed["canonical"] / "astro.png")
    assert (canonical == CANON["l_eye"]).any() and (canonical == CANON["r_eye"]).any()
    preview = read_image(parsed["canonical"] / "astro.preview.png")
    for fmt in ("celebamask", "bisenet"):
        written = read_mask(parsed[fmt] / "astro.png")
        assert np.array_equal(written, L.to_format(canonical, fmt)), fmt
        assert np.array_equal(L.from_format(written, fmt), canonical), fmt
        # Previews keep our colours: the same picture in every format.
        assert np.array_equal(read_image(parsed[fmt] / "astro.preview.png"), preview), fmt


def test_cli_celebamask_names_the_image_left_eye_r_eye(parsed):
    canonical = read_mask(parsed["canonical"] / "astro.png")
    written = read_mask(parsed["celebamask"] / "astro.png")
    xs = {n: np.nonzero(written == CANON[n])[1].mean() for n in ("l_eye", "r_eye")}
    assert xs["r_eye"] < xs["l_eye"]  # the subject's right eye lies on the image's left
    assert np.array_equal(written == CANON["r_eye"], canonical == CANON["l_eye"])


def test_bad_format_exits_2_with_one_line(tmp_path):
    proc = mgpe("parse", tmp_path, tmp_path / "o", "--format", "helen")
    assert proc.returncode == 2 and "--format" in proc.stderr and "celebamask" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
