"""Editing on real photos (astronaut, grace_hopper): edit, transfer, swap+, synth — API, CLI and errors."""

import cv2
import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.errors import MgpeError
from mgpe_toolkit.io import read_image, read_mask, write_image, write_mask
from mgpe_toolkit.labels import COMPONENTS, LABEL_INDEX as L, component_mask, face_hair_region
from run_cli import mgpe



def lab_mean(img, region):
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2LAB).astype(float)[region].mean(0)


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


@pytest.fixture(scope="module")
def grace():
    import matplotlib.cbook

    return read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="module")
def faces(pipe, astronaut, grace):
    return pipe.prepare(astronaut), pipe.prepare(grace)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut, grace):
    root = tmp_path_factory.mktemp("photos")
    write_image(root / "astro.png", astronaut)
    write_image(root / "grace.png", grace)
    return root


def photo_region(face, *masks):
    region = np.zeros(face.mask.labels.shape, bool)
    for m in masks:
        region |= face_hair_region(m)
    h, w = face.photo.shape[:2]
    back = cv2.warpAffine(region.astype(np.uint8), face.alignment.inverse(), (w, h), flags=cv2.INTER_LINEAR)
    return cv2.dilate(back, np.ones((5, 5), np.uint8)).astype(bool)


def test_edit_hair_to_skin_turns_the_forehead_hair_into_skin(pipe, faces):
    a, _ = faces
    res = pipe.edit(a, ["hair->skin@forehead"])
    changed = (a.mask.labels == L["hair"]) & (res.mask.labels == L["skin"])
    assert changed.sum() > 1000
    skin = component_mask(a.mask.labels, "skin") & ~changed
    skin_colour = lab_mean(a.image, skin)
    before = np.linalg.norm(lab_mean(a.image, changed) - skin_colour)
    after = np.linalg.norm(lab_mean(res.aligned, changed) - skin_colour)
    assert after < 0.4 * before, (before, after)
    # Pasted back: outside the face+hair region the photo is untouched, inside it changed.
    region = photo_region(a, a.mask.labels, res.mask.labels)
    assert np.array_equal(res.pasted[~region], a.photo[~region])
    assert (res.pasted[region] != a.photo[region]).any()
    assert res.stages == {"encode": "classical", "generate": "classical", "fuse": "classical"}


def test_edit_grow_eyes_makes_them_bigger_in_the_mask_and_image(pipe, faces):
    a, _ = faces
    res = pipe.edit(a, ["grow:eyes:2"])
    assert (res.mask.labels == L["l_eye"]).sum() > 1.3 * (a.mask.labels == L["l_eye"]).sum()
    eye = component_mask(res.mask.labels, "left_eye")
    assert (res.aligned[eye] != a.image[eye]).any()
    far = ~cv2.dilate(face_hair_region(res.mask.labels).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.array_equal(res.aligned[far], a.image[far])


def test_transfer_hair_takes_the_sources_hair_colour(pipe, faces):
    a, g = faces
    res = pipe.transfer(a, g, ["hair"])  # grace with the astronaut's (brown) hair colour
    hair_t = component_mask(g.mask.labels, "hair")
    src, tgt, out = lab_mean(a.image, component_mask(a.mask.labels, "hair")), lab_mean(g.image, hair_t), \
        lab_mean(res.aligned, hair_t)
    assert np.linalg.norm(out - src) < np.linalg.norm(out - tgt)
    for name in ("left_eye", "right_eye", "mouth"):
        region = component_mask(g.mask.labels, name)
        assert np.abs(lab_mean(res.aligned, region) - lab_mean(g.image, region)).max() < 12, name


def test_swap_puts_the_sources_face_on_the_target_photo(pipe, faces):
    a, g = faces
    res = pipe.swap(a, g)  # the astronaut's face and hair onto grace's photo
    # (Not the lips: the astronaut's mouth is open, grace's closed, and a closed mouth stays closed in the source's
    # lip colour.)
    face = np.isin(g.mask.labels, [L["skin"], L["nose"], L["l_eye"], L["r_eye"]])
    face &= cv2.erode(face.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    # Grace Hopper's eyeglasses cover her face and stay on top of the swapped face (as the target's hair would);
    # the face's detail is compared below them.
    glasses = g.mask.labels == L["eye_g"]
    assert glasses.sum() > 1000 and np.abs(res.aligned[glasses].astype(int) - g.image[glasses]).mean() < 12
    face[:np.nonzero(glasses)[0].max() + 4] = False
    assert face.sum() > 3000

    def detail(img):
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(float)
        return (grey - cv2.GaussianBlur(grey, (0, 0), 4))[face]

    def similarity(x, y):
        return np.corrcoef(detail(x), detail(y))[0, 1]

    # The result's fine detail is the source's, not the target's (the light is the target's: issue 17).
    assert similarity(res.aligned, a.image) > similarity(res.aligned, g.image)
    assert similarity(res.aligned, a.image) > 2 * similarity(g.image, a.image)
    region = photo_region(g, g.mask.labels, res.mask.labels)
    assert np.array_equal(res.pasted[~region], g.photo[~region])


def test_synth_makes_distinct_faces_that_follow_the_target_mask(pipe, faces):
    a, g = faces
    target = a.mask.labels
    results = pipe.synth(target, [a, g])
    assert len(results) == 2 and not np.array_equal(results[0].aligned, results[1].aligned)
    # Judged by the `mesh` parser, as the README's figure is. The learned default parser reads the classical
    # stages' hair painted from grace_hopper as backdrop and skin (0.65): it does not look like hair (issue 17).
    judge = Pipeline(parse="mesh")
    for r in results:
        parsed = judge.parse(r.aligned).labels
        face = face_hair_region(target) | face_hair_region(parsed)
        accuracy = (parsed == target)[face].mean()
        assert accuracy > 0.75, accuracy


def test_a_component_missing_from_the_source_is_a_clear_error_or_the_targets(pipe, faces):
    a, g = faces
    from mgpe_toolkit.types import PreparedFace, FaceMask

    bald = PreparedFace(g.image, FaceMask(np.where(g.mask.labels == L["hair"], L["skin"], g.mask.labels).astype(np.uint8)))
    with pytest.raises(MgpeError, match="no hair"):
        pipe.transfer(bald, a, ["hair"])
    assert any("no hair" in n for n in pipe.swap(bald, a).notes)  # swap+ keeps the target's hair (test_bald_source)


def test_cli_edit_writes_result_mask_and_aligned(photos, tmp_path, astronaut):
    out = tmp_path / "o.png"
    proc = mgpe("edit", "--mask-op", "hair->skin@forehead", photos / "astro.png", "-o", out,
                "--save-mask", tmp_path / "m.png", "--aligned-out", tmp_path / "al.png")
    assert proc.returncode == 0, proc.stderr
    result = read_image(out)
    assert result.shape == astronaut.shape and (result != astronaut).any()
    assert read_mask(tmp_path / "m.png").shape == (256, 256) and (tmp_path / "m.preview.png").is_file()
    assert read_image(tmp_path / "al.png").shape == (256, 256, 3)
    # The saved mask, edited further in "an image editor", drives a second edit.
    m = read_mask(tmp_path / "m.png")
    m[m == L["l_lip"]] = L["skin"]
    write_mask(tmp_path / "painted.png", m, preview=True)
    proc = mgpe("edit", "--mask", tmp_path / "painted.preview.png", photos / "astro.png", "-o", tmp_path / "o2.png")
    assert proc.returncode == 0, proc.stderr


def test_cli_edits_a_large_face_at_its_own_resolution(tmp_path, astronaut):
    photo = cv2.resize(astronaut[20:300, 110:390], (1024, 1024), interpolation=cv2.INTER_CUBIC)
    write_image(tmp_path / "big.png", photo)
    sides = {}
    for size in ("native", "256"):
        proc = mgpe("edit", "--mask-op", "grow:eyes:1", tmp_path / "big.png", "--size", size, "-o",
                    tmp_path / f"o{size}.png", "--aligned-out", tmp_path / f"a{size}.png")
        assert proc.returncode == 0, proc.stderr
        assert read_image(tmp_path / f"o{size}.png").shape == photo.shape
        sides[size] = read_image(tmp_path / f"a{size}.png").shape[0]
    assert sides["256"] == 256 and 512 <= sides["native"] <= 768, sides
    proc = mgpe("edit", "--mask-op", "grow:eyes:1", tmp_path / "big.png", "--size", "100")
    assert proc.returncode == 2 and "--size must be native or a multiple of 32" in proc.stderr


def test_cli_swap_transfer_synth(photos, tmp_path):
    proc = mgpe("swap+", photos / "astro.png", photos / "grace.png", "-o", tmp_path / "s.png")
    assert proc.returncode == 0, proc.stderr
    proc = mgpe("transfer", photos / "grace.png", "--from", photos / "astro.png", "-c", "hair,mouth",
                "-o", tmp_path / "t.png")
    assert proc.returncode == 0, proc.stderr
    assert read_image(tmp_path / "t.png").shape == read_image(photos / "grace.png").shape
    write_mask(tmp_path / "target.png", read_mask(tmp_path / "target.png") if False else
               Pipeline().prepare(read_image(photos / "astro.png")).mask.labels)
    proc = mgpe("synth", tmp_path / "target.png", "--sources", photos, "-n", "2", "-o", tmp_path / "syn",
                "--grid", tmp_path / "grid.png")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == ["synth_00.png", "synth_01.png"]
    assert read_image(tmp_path / "grid.png").shape[1] == 3 * 192


def test_cli_errors_are_one_line_and_leave_no_output(photos, tmp_path):
    import skimage.data

    write_image(tmp_path / "coffee.png", skimage.data.coffee())
    (tmp_path / "broken.png").write_bytes(b"nope")
    cases = [
        (["edit", "-m", "hair->skin", tmp_path / "coffee.png"], 1, "coffee.png: no face found"),
        (["edit", "-m", "hair->skin", tmp_path / "broken.png"], 1, "broken.png"),
        (["edit", "-m", "grow:eyes", photos / "astro.png"], 2, "bad mask op"),
        (["edit", photos / "astro.png"], 2, "--mask-op"),
        (["transfer", photos / "astro.png", "--from", photos / "grace.png", "-c", "nose"], 2, "not a component"),
        (["swap+", photos / "astro.png", photos / "grace.png", "--shape", "both"], 2, "--shape"),
    ]
    for argv, code, text in cases:
        proc = mgpe(*argv, "-o", tmp_path / "out.png", cwd=tmp_path)
        assert proc.returncode == code, (argv, proc.stderr)
        assert text in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out.png").exists()
    # A target mask whose eyes the source lacks.
    a = Pipeline().prepare(read_image(photos / "astro.png"))
    no_eyes = np.where(np.isin(a.mask.labels, COMPONENTS["left_eye"].indices), L["skin"], a.mask.labels)
    write_mask(tmp_path / "src.png", no_eyes.astype(np.uint8))
    write_mask(tmp_path / "tgt.png", a.mask.labels)
    write_image(tmp_path / "face.png", a.image)
    proc = mgpe("edit", "--aligned", tmp_path / "face.png", "--source-mask", tmp_path / "src.png",
                "--mask", tmp_path / "tgt.png", "-o", tmp_path / "out.png")
    assert proc.returncode == 1 and "no left_eye" in proc.stderr and not (tmp_path / "out.png").exists()


def test_outputs_are_checked_before_the_work_and_a_failing_extra_never_loses_the_result(pipe, photos, tmp_path):
    import time

    for args, named in ((["-o", tmp_path / "big.txt"], "--out"), (["--save-mask", tmp_path / "m.jpg"], "--save-mask"),
                        (["-o", tmp_path], "--out"), (["--aligned-out", tmp_path / "a.gif"], "--aligned-out")):
        t = time.perf_counter()
        proc = mgpe("edit", "--mask-op", "hair->skin", photos / "astro.png", *args)
        assert proc.returncode == 2 and named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert time.perf_counter() - t < 15
    assert not list(tmp_path.glob("*.txt")) and not list(tmp_path.glob("*.jpg"))
    # A secondary output that cannot be written (a file now stands where its folder should be): the result stays.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = tmp_path / "result.png"
    import typer
    from rich.console import Console

    from mgpe_toolkit.cli.edit import write_result

    face = pipe.prepare(read_image(photos / "astro.png"))
    result = pipe.edit(face, ["hair->skin"])
    with pytest.raises(typer.Exit) as exit_info:
        write_result(result, out, None, Console(), save_mask=str(blocker / "m.png"))
    assert exit_info.value.exit_code == 1
    assert read_image(out).shape == result.pasted.shape
