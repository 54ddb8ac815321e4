"""Parser training on photos in the wild: pseudo-labels from hair masks, the person split, the augmentations."""
import json

import cv2
import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.io import write_image
from mgpe_toolkit.labels import IGNORE
from mgpe_toolkit.labels import LABEL_INDEX as L
from mgpe_toolkit.train.augmentation import WindowJitter, wild, window
from mgpe_toolkit.train.pseudo import (CONTEXT_SIZE, CachedPhotos, LabelCache, build_cache, cache_is_complete,
                                       held_out, person_of)
from run_cli import mgpe


def test_people_not_photos_are_held_out():
    assert person_of("George_W_Bush_0012.jpg") == "George_W_Bush" and person_of("Madonna.jpg") == "Madonna"
    assert held_out("Ann_Smith_0001.jpg") == held_out("Ann_Smith_0042.jpg")
    names = [f"Person_{i}_0001.jpg" for i in range(2000)]
    share = np.mean([held_out(n) for n in names])
    assert 0.12 < share < 0.18


@pytest.fixture(scope="module")
def hair_folder(tmp_path_factory, astronaut, grace_hopper):
    """An lfw-hair-like folder: two photos of a person in the training split, one of a held-out person; hair
    masks drawn from the parser's own hair."""
    from mgpe_toolkit.parse import parse_image

    root = tmp_path_factory.mktemp("wild")
    pipe = Pipeline()
    kept = next(f"Kept_Person{i}" for i in range(500) if not held_out(f"Kept_Person{i}_0001.jpg"))
    gone = next(f"Held_Person{i}" for i in range(500) if held_out(f"Held_Person{i}_0001.jpg"))
    for name, photo in ((f"{kept}_0001", astronaut), (f"{kept}_0002", np.ascontiguousarray(astronaut[:, ::-1])),
                        (f"{gone}_0001", grace_hopper)):
        hair = parse_image(pipe, photo, context=True).photo_labels == L["hair"]
        write_image(root / "images" / f"{name}.jpg", photo)
        write_image(root / "hair" / f"{name}.png", hair.astype(np.uint8) * 255)
    return root


def test_pseudo_labels_of_a_hair_folder(hair_folder, tmp_path, astronaut):
    cache = build_cache(hair_folder, tmp_path / "cache")
    assert cache_is_complete(hair_folder, tmp_path / "cache") and len(cache.entries) == 3
    train, held = CachedPhotos(cache, "train"), CachedPhotos(cache, "heldout")
    assert len(train) == 2 and len(held) == 1 and "Held_Person" in held.names[0]
    s = train.load(0)
    assert s.image.shape == (CONTEXT_SIZE, CONTEXT_SIZE, 3) and s.mask.shape == s.image.shape[:2]
    assert s.context == CONTEXT_SIZE / 256
    # The context crop's centre is the aligned crop.
    from mgpe_toolkit.io import read_image

    aligned = Pipeline().align(read_image(hair_folder / "images" / train.names[0]))[0].image
    off = (CONTEXT_SIZE - 256) // 2
    assert np.abs(s.image[off:off + 256, off:off + 256].astype(int) - aligned).mean() < 2
    present = set(np.unique(s.mask).tolist())
    for name in ("background", "skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip", "hair"):
        assert L[name] in present, name
    unsure = (s.mask == IGNORE).mean()
    assert 0.02 < unsure < 0.45
    # Hair comes from the hand-made mask: inside it, away from its edge, the label is hair.
    name = train.names[0]
    drawn = cv2.imread(str(hair_folder / "hair" / name.replace(".jpg", ".png")), cv2.IMREAD_GRAYSCALE)
    hair = cv2.warpAffine(drawn, np.asarray(cache.entries[name]), (CONTEXT_SIZE, CONTEXT_SIZE),
                          flags=cv2.INTER_NEAREST) > 127
    core = cv2.erode(hair.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert (s.mask[core] == L["hair"]).mean() > 0.97
    assert (s.mask[~hair] == L["hair"]).sum() == 0
    # A second build has nothing to do; the cache opens without mediapipe.
    label_file = cache.label_path(name)
    stamp = label_file.stat().st_mtime_ns
    build_cache(hair_folder, tmp_path / "cache")
    assert label_file.stat().st_mtime_ns == stamp
    assert LabelCache.open(hair_folder, tmp_path / "cache").entries == cache.entries


def test_train_parser_on_a_hair_folder_and_synthetic_portraits(hair_folder, tmp_path):
    run = tmp_path / "run"
    proc = mgpe("train", "parser", "--data", hair_folder, "--data", "synthetic:8", "--out", run, "--steps", "3",
                "--size", "64", "--base", "4", "--batch", "2", "--checkpoint-every", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    card = json.loads((run / "parser-unet.json").read_text())
    assert card["steps"] == 3 and card["config"]["augment"] == "wild"
    assert "2 photos of 1 people (train split)" in card["data"] and "synthetic portraits: 8" in card["data"]
    assert (run / "pseudo-labels" / hair_folder.name / "index.json").is_file()
    losses = [json.loads(line)["loss/parser_ce"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(np.isfinite(losses))
    # Fine-tuning from those weights, recorded in the card: the same width, or a wider net (widened first).
    for base in (4, 8):
        tuned = tmp_path / f"tuned{base}"
        proc = mgpe("train", "parser", "--data", "synthetic:8", "--out", tuned, "--steps", "2", "--size", "64",
                    "--base", str(base), "--batch", "2", "--init", run / "parser-unet.safetensors")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        card = json.loads((tuned / "parser-unet.json").read_text())
        assert "parser-unet.safetensors" in card["initialised_from"] and card["unet"]["base"] == base
        assert ("widened from base 4" in card["initialised_from"]) == (base == 8)
    wrong = mgpe("train", "parser", "--data", "synthetic:8", "--out", tmp_path / "w", "--steps", "2", "--size", "64",
                 "--base", "4", "--init", tuned / "parser-unet.safetensors")
    assert wrong.returncode != 0 and "parser-unet.safetensors" in wrong.stdout + wrong.stderr


def test_a_window_at_the_aligned_framing_is_the_centre_of_a_context_crop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (CONTEXT_SIZE, CONTEXT_SIZE, 3), dtype=np.uint8)
    mask = rng.integers(0, 19, (CONTEXT_SIZE, CONTEXT_SIZE), dtype=np.uint8)
    off = (CONTEXT_SIZE - 256) // 2
    out, labels = window(img, mask, CONTEXT_SIZE / 256, 256)
    assert np.array_equal(out, img[off:off + 256, off:off + 256])
    assert np.array_equal(labels, mask[off:off + 256, off:off + 256])
    same, same_mask = window(img[:256, :256], mask[:256, :256], 1.0, 256)
    assert np.array_equal(same, img[:256, :256]) and np.array_equal(same_mask, mask[:256, :256])


def test_random_windows_zoom_out_and_mark_invented_pixels_ignore():
    img = np.full((256, 256, 3), 100, np.uint8)
    mask = np.full((256, 256), L["skin"], np.uint8)
    out, labels = window(img, mask, 1.0, 128, np.random.default_rng(1), WindowJitter(scale=(0.6, 0.61)))
    assert out.shape == (128, 128, 3) and labels.shape == (128, 128)
    assert (labels == IGNORE).mean() > 0.3 and set(np.unique(labels).tolist()) == {L["skin"], IGNORE}
    assert (labels[54:74, 54:74] == L["skin"]).all()


def test_wild_damage_is_seeded_and_can_be_grey():
    rng0 = np.random.default_rng(5)
    img = rng0.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.full((64, 64), L["hair"], np.uint8)
    a = wild(img, mask, np.random.default_rng(3))
    b = wild(img, mask, np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    outs = [wild(img, mask, np.random.default_rng(s)) for s in range(60)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 and m.shape == mask.shape for o, m in outs)
    assert any((o[..., 0] == o[..., 1]).all() and (o[..., 1] == o[..., 2]).all() for o, _ in outs)
    occluded = [m for _, m in outs if (m == IGNORE).any()]
    assert occluded and all(set(np.unique(m).tolist()) == {L["hair"], IGNORE} for m in occluded)
    assert sum(not np.array_equal(o, img) for o, _ in outs) > 50
