"""Parser training on real labels of every class: a celebamask folder aligned into a cache (sides re-assigned),
hair folders as a partial label (hair vs not hair), and the loss that reads both."""
import json

import numpy as np
import pytest
import torch

from mgpe_toolkit import Pipeline
from mgpe_toolkit.io import write_image
from mgpe_toolkit.labels import IGNORE, NOT_HAIR, SWAP_SIDES, to_format
from mgpe_toolkit.labels import LABEL_INDEX as L
from mgpe_toolkit.metrics.segmentation import Confusion
from mgpe_toolkit.data.sets import Mixture, flip_sample
from mgpe_toolkit.train.losses import partial_cross_entropy
from mgpe_toolkit.train.pseudo import CONTEXT_SIZE, CachedPhotos, LabelCache, build_cache, cache_is_complete, held_out
from mask_checks import centroid
from run_cli import mgpe


@pytest.fixture(scope="module")
def parsed(astronaut, grace_hopper):
    """The two photos with the default parser's masks in their own coordinates."""
    from mgpe_toolkit.parse import parse_image

    pipe = Pipeline()
    return [(photo, parse_image(pipe, photo, context=True).photo_labels) for photo in (astronaut, grace_hopper)]


def _name(held: bool, start: int = 0) -> str:
    return next(f"{i:032x}" for i in range(start, start + 500) if held_out(f"{i:032x}.jpg") == held)


@pytest.fixture(scope="module")
def celebamask_folder(tmp_path_factory, parsed):
    """A celebamask-mini-like folder: masks in CelebAMask-HQ's order and sides (the subject's left at the larger
    x); the second training portrait has its eyes named the other way round, as about 7% of the real ones do."""
    root = tmp_path_factory.mktemp("celebamask")
    (astronaut, a_mask), (hopper, h_mask) = parsed
    swapped = to_format(a_mask, "celebamask")
    eyes = np.isin(swapped, (L["l_eye"], L["r_eye"]))
    swapped[eyes] = SWAP_SIDES[swapped[eyes]]  # the eyes named by the viewer, as a careless annotator does
    names = [_name(False), _name(False, 600), _name(True)]
    for name, photo, mask in ((names[0], astronaut, to_format(a_mask, "celebamask")), (names[1], astronaut, swapped),
                              (names[2], hopper, to_format(h_mask, "celebamask"))):
        write_image(root / "images" / f"{name}.jpg", photo)
        write_image(root / "masks" / f"{name}.png", mask)
    return root


def test_a_celebamask_folder_is_aligned_with_its_masks_and_sides_reassigned(celebamask_folder, tmp_path, parsed):
    cache = build_cache(celebamask_folder, tmp_path / "cache", kind="celebamask")
    assert cache.kind == "celebamask" and len(cache.entries) == 3
    assert cache_is_complete(celebamask_folder, tmp_path / "cache", "celebamask")
    assert not cache_is_complete(celebamask_folder, tmp_path / "cache", "pseudo")
    train, held = CachedPhotos(cache, "train"), CachedPhotos(cache, "heldout")
    assert len(train) == 2 and len(held) == 1 and "hand-made masks of every class" in train.describe()
    # The aligned crop (the context crop's centre) holds the photo's own mask, warped: it agrees with the parser
    # run on the aligned face, and l_ is the viewer's left in both portraits, whatever the file called it.
    aligned = Pipeline().parse(Pipeline().align(parsed[0][0])[0].image).labels
    off = (CONTEXT_SIZE - 256) // 2
    masks = [train.load(i).mask for i in range(2)]
    assert np.array_equal(masks[0], masks[1])
    centre = masks[0][off:off + 256, off:off + 256]
    assert (centre == aligned).mean() > 0.9
    assert centroid(centre, "l_eye")[0] < 128 < centroid(centre, "r_eye")[0]
    assert centroid(centre, "l_brow")[0] < 128 < centroid(centre, "r_brow")[0]
    assert set(np.unique(masks[0]).tolist()) <= set(range(19)) | {IGNORE}
    assert LabelCache.open(celebamask_folder, tmp_path / "cache").kind == "celebamask"


def test_a_mask_with_a_label_beyond_celebamask_is_reported_not_cached(celebamask_folder, tmp_path):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(celebamask_folder, root)
    bad = next((root / "masks").iterdir())
    write_image(bad, np.full((512, 512), 40, np.uint8))
    said = []
    cache = build_cache(root, tmp_path / "cache", kind="celebamask", warn=said.append)
    assert len(cache.entries) == 2 and len(said) == 1 and bad.name in said[0] and "value 40" in said[0]


def test_hair_only_labels_and_mirroring_keep_not_hair(tmp_path, parsed):
    root = tmp_path / "wild"
    name = "Ann_Other_0001"
    photo, mask = parsed[0]
    write_image(root / "images" / f"{name}.jpg", photo)
    write_image(root / "hair" / f"{name}.png", (mask == L["hair"]).astype(np.uint8) * 255)
    cache = build_cache(root, tmp_path / "cache")
    full, partial = CachedPhotos(cache, "all").load(0), CachedPhotos(cache, "all", hair_only=True).load(0)
    assert set(np.unique(partial.mask).tolist()) == {L["hair"], NOT_HAIR, IGNORE}
    assert np.array_equal(partial.mask == L["hair"], full.mask == L["hair"])
    assert np.array_equal(partial.mask == IGNORE, full.mask == IGNORE)
    _, flipped = flip_sample(partial.image, partial.mask)
    assert np.array_equal(flipped, partial.mask[:, ::-1])
    with pytest.raises(Exception, match="hair folder"):
        CachedPhotos(LabelCache(root, tmp_path, {}, "celebamask"), "all", hair_only=True)


def test_a_balanced_mixture_draws_each_part_equally_often():
    class Part:
        def __init__(self, n, tag):
            self.n, self.tag = n, tag

        def __len__(self):
            return self.n

        def load(self, i):
            assert 0 <= i < self.n
            return (self.tag, i)

        def describe(self):
            return self.tag

    mix = Mixture([Part(2, "a"), Part(6, "b")], balanced=True)
    assert len(mix) == 12 and [mix.load(i) for i in range(6)] == [("a", 0), ("a", 1)] * 3
    assert mix.load(11) == ("b", 5) and "equally often" in mix.describe()
    assert len(Mixture([Part(2, "a"), Part(6, "b")])) == 8


def test_the_partial_loss_reads_classes_and_not_hair():
    torch.manual_seed(0)
    logits = torch.randn(1, 19, 2, 3, requires_grad=True)
    weight = torch.rand(19) + 0.5
    y = torch.tensor([[[L["skin"], L["hair"], IGNORE], [NOT_HAIR, NOT_HAIR, L["l_eye"]]]])
    total, summed = partial_cross_entropy(logits, y, weight)
    p = logits.softmax(1)[0]
    expect = -(weight[L["skin"]] * p[L["skin"], 0, 0].log() + weight[L["hair"]] * p[L["hair"], 0, 1].log()
               + weight[L["l_eye"]] * p[L["l_eye"], 1, 2].log())
    expect = expect - weight[0] * ((1 - p[L["hair"], 1, 0]).log() + (1 - p[L["hair"], 1, 1]).log())
    assert torch.allclose(total, expect, rtol=1e-5)
    assert torch.allclose(summed, weight[L["skin"]] + weight[L["hair"]] + weight[L["l_eye"]] + 2 * weight[0])
    total.backward()
    g = logits.grad[0]
    # Not hair lowers hair alone, and raises the other classes in proportion; an ignored pixel teaches nothing.
    assert (g[L["hair"], 1, :2] > 0).all() and (g[:, 0, 2] == 0).all()
    others = torch.cat([g[:L["hair"], 1, 0], g[L["hair"] + 1:, 1, 0]])
    assert (others < 0).all()


def test_f1_per_class():
    c = Confusion(("a", "b", "c")).add(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]))
    assert c.f1() == {"a": 0.5, "b": 2 * 2 / (2 * 2 + 1 + 1)}


def _hair_folder(root, parsed):
    """An lfw-hair-like folder of one photo (a person in the training split)."""
    photo, mask = parsed[0]
    write_image(root / "images" / "Ann_Other_0001.jpg", photo)
    write_image(root / "hair" / "Ann_Other_0001.png", (mask == L["hair"]).astype(np.uint8) * 255)
    return root


def test_train_parser_on_celebamask_and_hair_only(celebamask_folder, tmp_path, parsed):
    hair = _hair_folder(tmp_path / "wild", parsed)
    run = tmp_path / "run"
    proc = mgpe("train", "parser", "--data", celebamask_folder, "--labels", "celebamask", "--data", hair,
                "--hair-labels", "hair-only", "--balance", "--out", run, "--steps", "3", "--size", "64", "--base", "4",
                "--batch", "2", "--checkpoint-every", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    card = json.loads((run / "parser-unet.json").read_text())
    assert "2 photos (train split)" in card["data"] and "hair vs not hair" in card["data"], card["data"]
    assert (run / "pseudo-labels" / f"{celebamask_folder.name}.celebamask" / "index.json").is_file()
    losses = [json.loads(line)["loss/parser_ce"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(np.isfinite(losses))
    wrong = mgpe("train", "parser", "--data", hair, "--labels", "celebamask", "--out", tmp_path / "w", "--steps", "1",
                 "--hair-labels", "some")
    assert wrong.returncode != 0 and "--hair-labels" in wrong.stdout + wrong.stderr


def test_a_travel_pack_trains_the_parser_and_the_networks_without_photos_or_caches(celebamask_folder, tmp_path,
                                                                                    parsed):
    import shutil

    from mgpe_toolkit.data.pack import PackedPhotos

    hair = _hair_folder(tmp_path / "wild", parsed)
    pack, caches = tmp_path / "pack", tmp_path / "caches"
    proc = mgpe("train", "pack", "--data", celebamask_folder, "--data", hair, "--out", pack, "--pseudo-labels", caches)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    faces = celebamask_folder.name
    assert json.loads((pack / "pack.json").read_text())["parts"] == sorted([faces, "wild"])
    assert "non-commercial" in (pack / "README.md").read_text()
    cached = CachedPhotos(LabelCache.open(celebamask_folder, caches / f"{faces}.celebamask"), "train")
    packed = PackedPhotos(pack / faces)
    assert packed.names == cached.names and len(packed) == 2  # the held-out portrait is not packed
    for i in range(2):
        a, b = packed.load(i), cached.load(i)
        assert np.array_equal(a.mask, b.mask) and np.abs(a.image.astype(int) - b.image).mean() < 4
    # The pack alone, moved elsewhere, trains both networks.
    moved = tmp_path / "moved"
    shutil.move(pack, moved)
    shutil.rmtree(caches)
    run = tmp_path / "run"
    proc = mgpe("train", "parser", "--data", moved, "--hair-labels", "hair-only", "--balance", "--out", run,
                "--steps", "2", "--size", "64", "--base", "4", "--batch", "2", "--checkpoint-every", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    card = json.loads((run / "parser-unet.json").read_text())
    assert "packed in" in card["data"] and "hair vs not hair" in card["data"], card["data"]
    gan = tmp_path / "gan"
    proc = mgpe("train", "--config", "tiny", "--data", moved / faces, "--out", gan, "--steps", "2", "--set", "batch=2",
                "--set", "lambda_gp=0", "--device", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (gan / "mgpe-gan.safetensors").is_file() and "aligned pairs packed" in proc.stdout + proc.stderr


def test_calibrate_takes_back_a_pushed_class_and_writes_its_card(celebamask_folder, tmp_path, astronaut):
    """Shipped weights with the nose's logit raised (as a class-weighted loss raises rare classes) draw a larger
    nose; calibrated on portraits whose masks that parser drew, they draw the nose they drew before."""
    from mgpe_toolkit.stages.parse_unet import UNetParser
    from mgpe_toolkit.weights import read_safetensors, shipped_parser, write_safetensors
    from mgpe_toolkit.train.calibrate import with_offsets

    state, meta = read_safetensors(shipped_parser(), "unet")
    push = np.zeros(19, np.float32)
    push[L["nose"]] = 1.5
    pushed = tmp_path / "pushed" / "parser-unet.safetensors"
    write_safetensors(pushed, with_offsets(state, push), meta)
    out = tmp_path / "cal"
    proc = mgpe("train", "calibrate", "--weights", pushed, "--data", celebamask_folder, "--out", out,
                "--pseudo-labels", tmp_path / "caches")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    card = json.loads((out / "parser-unet.json").read_text())
    offsets = card["calibration"]["offsets"]
    others = np.median([v for k, v in offsets.items() if k != "nose"])
    assert -2.0 <= offsets["nose"] - others <= -0.8, offsets
    assert offsets["l_eye"] == offsets["r_eye"] and "2 photos (train split)" in card["calibration"]["data"]
    assert card["calibration"]["command"].startswith("mgpe train calibrate")
    face = Pipeline().align(astronaut)[0].image
    weights = {"shipped": shipped_parser(), "pushed": pushed, "calibrated": out / "parser-unet.safetensors"}
    nose = {name: (UNetParser(w, refine="none").parse(face).labels == L["nose"]).sum() for name, w in weights.items()}
    assert nose["pushed"] > 1.1 * nose["shipped"]
    assert abs(nose["calibrated"] - nose["shipped"]) < 0.5 * (nose["pushed"] - nose["shipped"]), nose
    same = mgpe("train", "calibrate", "--weights", out / "parser-unet.safetensors", "--data", celebamask_folder,
                "--out", out)
    assert same.returncode != 0 and "overwrite" in same.stdout + same.stderr
