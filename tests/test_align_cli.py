"""`mgpe align` as a user runs it: a folder of real photos, a non-face, a corrupt file, resume, several faces."""
import json

import numpy as np
import pytest

from mgpe_toolkit.align import apply_affine, template
from mgpe_toolkit.io import read_image, write_image
from run_cli import mgpe



@pytest.fixture(scope="module")
def raw(tmp_path_factory, astronaut):
    import matplotlib.cbook
    import skimage.data

    root = tmp_path_factory.mktemp("raw")
    write_image(root / "astro.jpg", astronaut)
    grace = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    write_image(root / "people" / "grace.png", grace)
    write_image(root / "coffee.png", skimage.data.coffee())
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_align_a_folder(raw, tmp_path):
    out = tmp_path / "aligned"
    proc = mgpe("align", raw, out)
    assert proc.returncode == 1, proc.stderr  # some inputs failed, the others are done
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "astro.json", "astro.png", "people/grace.json", "people/grace.png"]
    assert f"{raw / 'coffee.png'}: no face found" in proc.stdout
    assert f"{raw / 'broken.jpg'}: truncated image file" in proc.stdout
    side = json.loads((out / "astro.json").read_text())
    assert side["source_size"] == [512, 512] and side["aligner"] == "mediapipe" and side["source_path"].endswith("astro.jpg")
    eyes = apply_affine(np.array(side["matrix"]), np.array(side["landmarks"])[:2])
    assert np.abs(eyes - template()[:2]).max() < 4
    assert read_image(out / "astro.png").shape == (256, 256, 3)
    assert "Traceback" not in proc.stderr

    # Resume: finished photos are skipped and left untouched; --overwrite redoes them.
    stamp = (out / "astro.png").stat().st_mtime_ns
    again = mgpe("align", raw, out)
    assert again.returncode == 1 and (out / "astro.png").stat().st_mtime_ns == stamp
    assert "│    0 │               2 │" in again.stdout
    assert mgpe("align", raw / "astro.jpg", out, "--overwrite").returncode == 0
    assert (out / "astro.png").stat().st_mtime_ns != stamp


def test_all_faces_and_size(tmp_path, astronaut):
    import cv2
    import matplotlib.cbook

    grace = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    grace = cv2.resize(grace, (grace.shape[1] * 512 // grace.shape[0], 512))
    write_image(tmp_path / "two.png", np.hstack([astronaut, grace]))
    proc = mgpe("align", tmp_path / "two.png", tmp_path / "out", "--all-faces", "--size", 128)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    faces = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert faces == ["two_0.png", "two_1.png"]
    assert read_image(tmp_path / "out" / "two_0.png").shape == (128, 128, 3)
    xs = [json.loads((tmp_path / "out" / f"two_{i}.json").read_text())["landmarks"][0][0] for i in (0, 1)]
    assert min(xs) < 512 < max(xs)  # one face from each half


def test_missing_input_is_a_usage_error(tmp_path):
    proc = mgpe("align", tmp_path / "nope", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope'}: no such file or folder"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert mgpe("align", empty, tmp_path / "out").returncode == 2
    assert not (tmp_path / "out").exists()


def test_an_aligner_that_raises_fails_one_photo_not_the_run(tmp_path, astronaut):
    from mgpe_toolkit.align import align_one

    class Flaky:
        def align(self, image, *, size=256, all_faces=False):
            raise RuntimeError("graph exploded")

    write_image(tmp_path / "a.png", astronaut)
    outcome = align_one(Flaky(), tmp_path / "a.png", tmp_path / "out" / "a")
    assert outcome.status == "failed" and outcome.error == "aligner failed: RuntimeError: graph exploded"
    assert not (tmp_path / "out").exists()
