"""`mgpe parse` as a user runs it: photos, aligned crops with and without sidecars, previews, resume, errors."""

import numpy as np
import pytest

from mgpe_toolkit.io import read_image, read_mask, write_image
from mgpe_toolkit.labels import LABEL_INDEX as L
from mgpe_toolkit.labels import colorize
from run_cli import mgpe



@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut):
    import skimage.data

    root = tmp_path_factory.mktemp("photos")
    write_image(root / "astro.jpg", astronaut)
    write_image(root / "sub" / "coffee.png", skimage.data.coffee())
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_photos_get_masks_in_their_own_coordinates(photos, tmp_path, astronaut):
    out = tmp_path / "masks"
    proc = mgpe("parse", photos, out, "--preview")
    assert proc.returncode == 1, proc.stderr  # coffee has no face, broken.png is unreadable
    assert "coffee.png: no face found" in proc.stdout and "broken.png" in proc.stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "astro.png", "astro.preview.png"]  # nothing partial for the failures, no sub/ folder made
    m = read_mask(out / "astro.png")
    assert m.shape == astronaut.shape[:2]
    # The face sits in the photo's upper middle (x 150..220, y 40..130); the suit and the corners are not face.
    ys, xs = np.nonzero(m == L["skin"])
    assert 150 < np.median(xs) < 230 and 50 < np.median(ys) < 130
    assert (m[400:, :] != L["skin"]).all() and m[0, 0] == L["background"]
    preview = read_image(out / "astro.preview.png")
    assert np.array_equal(preview, colorize(m))
    # Resume: finished outputs are skipped, the failures are retried and reported again.
    again = mgpe("parse", photos, out, "--preview")
    assert again.returncode == 1 and "│    0 │               1 │" in again.stdout


def test_aligned_inputs_stay_aligned_and_can_go_back_to_the_photo(photos, tmp_path, astronaut):
    aligned = tmp_path / "aligned"
    assert mgpe("align", photos / "astro.jpg", aligned).returncode == 0
    masks = tmp_path / "masks"
    proc = mgpe("parse", aligned, masks)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = read_mask(masks / "astro.png")
    assert m.shape == (256, 256) and (m == L["l_eye"]).any()
    back = tmp_path / "back"
    assert mgpe("parse", aligned, back, "--coords", "original").returncode == 0
    assert read_mask(back / "astro.png").shape == astronaut.shape[:2]


def test_an_aligned_crop_without_sidecar_is_recognised(photos, tmp_path):
    aligned = tmp_path / "aligned"
    mgpe("align", photos / "astro.jpg", aligned)
    (aligned / "astro.json").unlink()
    out = tmp_path / "masks"
    assert mgpe("parse", aligned, out).returncode == 0
    assert read_mask(out / "astro.png").shape == (256, 256) and not (out / "astro.aligned.png").exists()


def test_photo_with_aligned_coords_writes_the_crop_and_sidecar(photos, tmp_path):
    out = tmp_path / "m"
    assert mgpe("parse", photos / "astro.jpg", out, "--coords", "aligned").returncode == 0
    assert read_mask(out / "astro.png").shape == (256, 256)
    assert read_image(out / "astro.aligned.png").shape == (256, 256, 3) and (out / "astro.aligned.json").is_file()


def test_bad_arguments_exit_2(tmp_path, photos):
    assert mgpe("parse", tmp_path / "nope", tmp_path / "o").returncode == 2
    proc = mgpe("parse", photos, tmp_path / "o", "--coords", "sideways")
    assert proc.returncode == 2 and "--coords" in proc.stderr
    proc = mgpe("parse", photos, tmp_path / "o", "--parser", "nosuch")
    assert proc.returncode == 2 and "nosuch" in proc.stderr


def test_paste_back_changes_only_face_and_hair(photos, tmp_path, astronaut):
    from mgpe_toolkit.labels import face_hair_region
    from mgpe_toolkit.parse import mask_to_photo
    from mgpe_toolkit.types import Alignment
    from mgpe_toolkit.io import read_json

    aligned = tmp_path / "aligned"
    mgpe("align", photos / "astro.jpg", aligned)
    edited = read_image(aligned / "astro.png")
    edited[..., 2] //= 2  # a visible edit everywhere in the crop
    write_image(aligned / "astro.png", edited)
    mgpe("parse", aligned, tmp_path / "masks")
    out = tmp_path / "pasted.png"
    proc = mgpe("paste-back", aligned / "astro.png", "-o", out, "--mask", tmp_path / "masks" / "astro.png",
                "--photo", photos / "astro.jpg")
    assert proc.returncode == 0, proc.stderr
    result, original = read_image(out), read_image(photos / "astro.jpg")
    region = mask_to_photo(face_hair_region(read_mask(tmp_path / "masks" / "astro.png")).astype(np.uint8),
                           Alignment.from_json(read_json(aligned / "astro.json")), (512, 512)).astype(bool)
    changed = (result != original).any(-1)
    assert changed.sum() > 0.5 * region.sum()  # the edit arrived
    import cv2
    grown = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not changed[~grown].any()  # everything outside the face+hair region is byte-identical
    assert result[region].astype(int)[:, 2].mean() < original[region].astype(int)[:, 2].mean() - 20


def test_paste_back_errors_are_one_line(tmp_path, astronaut):
    proc = mgpe("paste-back", tmp_path / "none.png", "-o", tmp_path / "o.png")
    assert proc.returncode == 2 and "none.png: no such file" in proc.stderr and "Traceback" not in proc.stderr
    write_image(tmp_path / "crop.png", astronaut)
    proc = mgpe("paste-back", tmp_path / "crop.png", "-o", tmp_path / "o.png")
    assert proc.returncode == 2 and "no alignment sidecar" in proc.stderr and "Traceback" not in proc.stderr


def test_layouts_that_would_lose_photos_are_refused_before_any_work(tmp_path, astronaut):
    src = tmp_path / "photos"
    write_image(src / "astronaut.png", astronaut)
    before = (src / "astronaut.png").read_bytes()
    for cmd in (["align", src, src], ["parse", src, src, "--overwrite"], ["parse", src, src / "masks"],
                ["align", src / "astronaut.png", src], ["batch", src, src, "--mask-op", "hair->skin", "--overwrite"],
                ["parse", src, tmp_path]):
        proc = mgpe(*cmd)
        assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr, (cmd, proc.stderr)
    assert sorted(p.name for p in src.iterdir()) == ["astronaut.png"]
    assert (src / "astronaut.png").read_bytes() == before


def test_photos_that_share_a_name_get_one_output_each(tmp_path, astronaut):
    src = tmp_path / "photos"
    write_image(src / "face.png", astronaut)
    write_image(src / "face.jpg", astronaut[:, ::-1])
    write_image(src / "my.photo.png", astronaut)
    out = tmp_path / "masks"
    proc = mgpe("parse", src, out, "--coords", "aligned")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keep their extension" in proc.stderr and "face.jpg → face_jpg" in proc.stderr
    masks = sorted(p.name for p in out.glob("*.png") if ".aligned" not in p.name)
    assert masks == ["face_jpg.png", "face_png.png", "my.photo.png"]
    a, b = read_mask(out / "face_png.png"), read_mask(out / "face_jpg.png")
    assert (a[:, ::-1] != b).mean() < 0.2 and (a != b).mean() > 0.01  # each from its own photo


def test_every_format_the_reader_takes_is_walked(tmp_path, astronaut):
    from PIL import Image

    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "a.ppm")
    Image.fromarray(astronaut.mean(-1).astype(np.uint8)).save(src / "b.pgm")
    Image.fromarray(astronaut).convert("P").save(src / "c.gif")
    proc = mgpe("parse", src, tmp_path / "masks")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.png", "b.png", "c.png"]
    for name in ("a.png", "b.png", "c.png"):
        assert (read_mask(tmp_path / "masks" / name) == L["hair"]).sum() > 5000, name


def test_original_coordinates_of_an_aligned_crop_without_sidecar_are_its_own(photos, tmp_path):
    aligned = tmp_path / "aligned"
    mgpe("align", photos / "astro.jpg", aligned)
    (aligned / "astro.json").unlink()
    auto, original = tmp_path / "auto", tmp_path / "original"
    assert mgpe("parse", aligned, auto).returncode == 0
    proc = mgpe("parse", aligned, original, "--coords", "original")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert np.array_equal(read_mask(auto / "astro.png"), read_mask(original / "astro.png"))


def test_a_mask_blown_up_into_a_large_photo_keeps_smooth_edges():
    """A 256² crop's mask in a photo where each crop pixel spans 4: a slanted edge moves about a pixel per row
    (nearest-neighbour would make 4-pixel steps); at about 1:1 the warp is nearest-neighbour, exactly."""
    import cv2

    from mgpe_toolkit.parse import mask_to_photo

    yy, xx = np.mgrid[0:256, 0:256]
    mask = np.where(xx < 0.5 * yy + 60, L["hair"], L["skin"]).astype(np.uint8)
    mask[:, 200:] = 0
    to_crop = np.array([[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]])  # photo -> crop
    big = mask_to_photo(mask, to_crop, (1100, 1024))
    assert big.shape == (1024, 1100) and set(np.unique(big)) == {0, L["skin"], L["hair"]}
    edge = (big[100:900, :700] == L["hair"]).sum(1)  # the hair's width per row
    assert np.abs(np.diff(edge)).max() <= 2 and abs(edge[-1] - edge[0] - 400) < 8
    assert (big[:1016, 804:] == 0).all() and (big[:1016, :790] != 0).all()  # the crop ends at 1024
    same = np.array([[1.1, 0.0, 5.0], [0.0, 1.1, -3.0]])
    inverse = cv2.invertAffineTransform(same)
    assert (mask_to_photo(mask, same, (240, 240)) ==
            cv2.warpAffine(mask, inverse, (240, 240), flags=cv2.INTER_NEAREST)).all()
