import os

import numpy as np
import pytest
from PIL import Image

from mgpe_toolkit import io
from mgpe_toolkit.errors import InputError
from mgpe_toolkit.labels import colorize


def gradient(h=24, w=32):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], -1).astype(np.uint8)


@pytest.mark.parametrize("suffix,lossless", [(".png", True), (".bmp", True), (".tiff", True), (".webp", False),
                                             (".jpg", False)])
def test_formats_round_trip(tmp_path, suffix, lossless):
    img = gradient()
    path = io.write_image(tmp_path / f"g{suffix}", img)
    back = io.read_image(path)
    assert back.shape == (24, 32, 3) and back.dtype == np.uint8
    if lossless:
        assert np.array_equal(back, img)
    else:
        assert np.abs(back.astype(int) - img).mean() < 6


def test_exif_orientation_is_applied(tmp_path):
    img = gradient()
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    pil.save(tmp_path / "r.jpg", exif=exif, quality=98)
    back = io.read_image(tmp_path / "r.jpg")
    assert back.shape == (32, 24, 3)
    assert np.abs(back.astype(int) - np.rot90(img, -1)).mean() < 6


def test_rgba_grey_palette_and_16bit_become_rgb8(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, ..., 3] = 255  # top half opaque red, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = io.read_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [200, 0, 0] and out[3, 3].tolist() == [255, 255, 255]

    Image.fromarray(np.full((3, 3), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert (io.read_image(tmp_path / "g.png") == 77).all()

    Image.fromarray(gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "p.png")
    p = io.read_image(tmp_path / "p.png")
    assert p.shape == (24, 32, 3) and np.abs(p.astype(int) - gradient()).mean() < 25

    grey16 = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369)  # 0..65535
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    g = io.read_image(tmp_path / "g16.png")
    assert g[0, 0].tolist() == [0, 0, 0] and g[3, 3].tolist() == [255, 255, 255] and g[1, 2, 0] == 102

    import cv2
    rgb16 = (gradient().astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])
    c = io.read_image(tmp_path / "c16.png")
    assert c.dtype == np.uint8 and np.abs(c.astype(int) - gradient()).max() <= 1


def test_truncated_file_is_a_one_line_error(tmp_path):
    io.write_image(tmp_path / "ok.jpg", (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        io.read_image(tmp_path / "cut.jpg")
    assert str(err.value) == f"{tmp_path / 'cut.jpg'}: truncated image file"


@pytest.mark.parametrize("content,problem", [(b"not an image at all", "not a readable image"), (b"", "not a readable image")])
def test_corrupt_file_is_named(tmp_path, content, problem):
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(InputError, match=problem) as err:
        io.read_image(tmp_path / "bad.png")
    assert str(tmp_path / "bad.png") in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        io.read_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="is a folder"):
        io.read_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(io, "MAX_PIXELS", 20_000)
    with pytest.raises(InputError, match="decompression bomb"):
        io.read_image(tmp_path / "big.png")
    monkeypatch.setattr(io, "MAX_PIXELS", 80_000)  # under 2x the limit Pillow only warns: still refused
    with pytest.raises(InputError, match="decompression bomb"):
        io.read_image(tmp_path / "big.png")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.png"
    io.write_image(target, gradient())
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_write_image_refuses_unknown_suffix_without_leaving_files(tmp_path):
    with pytest.raises(InputError, match="unsupported output format"):
        io.write_image(tmp_path / "x.gifx", gradient())
    assert os.listdir(tmp_path) == []


def test_masks_round_trip_with_preview(tmp_path):
    m = np.arange(19, dtype=np.uint8).reshape(1, 19).repeat(2, 0)
    path = io.write_mask(tmp_path / "a.mask.png", m, preview=True)
    assert np.array_equal(io.read_mask(path), m)
    prev = io.read_image(io.preview_path(path))
    assert io.preview_path(path).name == "a.mask.preview.png"
    assert np.array_equal(prev, colorize(m))
    assert np.array_equal(io.read_mask(io.preview_path(path)), m)  # a painted colour mask reads back too


def test_palette_mask_reads_indices(tmp_path):
    m = np.array([[0, 13], [1, 4]], np.uint8)
    pil = Image.fromarray(m, "P")
    pil.putpalette(colorize(np.arange(19, dtype=np.uint8)[None])[0].flatten().tolist())
    pil.save(tmp_path / "p.png")
    assert np.array_equal(io.read_mask(tmp_path / "p.png"), m)


def test_bad_masks_are_refused(tmp_path):
    Image.fromarray(np.full((2, 2), 40, np.uint8)).save(tmp_path / "hi.png")
    with pytest.raises(InputError, match="holds value 40"):
        io.read_mask(tmp_path / "hi.png")
    io.write_image(tmp_path / "photo.png", gradient())
    with pytest.raises(InputError, match="not a label mask: colour"):
        io.read_mask(tmp_path / "photo.png")
    with pytest.raises(ValueError):
        io.write_mask(tmp_path / "x.png", np.full((2, 2), 19, np.uint8))


def test_sidecar_json_round_trip(tmp_path):
    from mgpe_toolkit.types import Alignment

    a = Alignment(matrix=np.array([[0.5, 0.1, 3.0], [-0.1, 0.5, 4.0]]), size=256, landmarks=np.arange(10.0).reshape(5, 2),
                  score=0.9, source_path="x.jpg", source_size=(640, 480), aligner="mediapipe")
    io.write_json(tmp_path / "x.json", a.to_json())
    b = Alignment.from_json(io.read_json(tmp_path / "x.json"))
    assert np.allclose(b.matrix, a.matrix) and b.source_size == (640, 480) and b.aligner == "mediapipe"
    assert np.allclose(b.inverse() @ np.array([3.0, 4.0, 1.0]), [0, 0])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        io.read_json(tmp_path / "bad.json")


def test_list_images_walks_recursively(tmp_path):
    for rel in ("a.jpg", "sub/b.PNG", "sub/deep/c.webp", "notes.txt", ".hidden.png"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in io.list_images(tmp_path)] == ["a.jpg", "sub/b.PNG", "sub/deep/c.webp"]


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from mgpe_toolkit.io import write_image

    p = write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_a_bad_max_pixels_setting_is_a_one_line_error(tmp_path, astronaut):
    import os
    import subprocess
    import sys

    from mgpe_toolkit.io import write_image

    write_image(tmp_path / "a.png", astronaut)
    env = {**os.environ, "MGPE_MAX_PIXELS": "abc"}
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "parse", str(tmp_path / "a.png"), str(tmp_path / "o")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "MGPE_MAX_PIXELS='abc'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
