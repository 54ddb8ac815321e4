"""Travel packs (data.pack): a label cache's training split as stored crops + labels, read back as the cache
reads it, at the photo's own resolution, and resumable."""
from types import SimpleNamespace

import numpy as np
import pytest

from mgpe_toolkit.data.pack import (AlignedPack, PackedPhotos, fill_ignored, pack_parts, stored_size,
                                    write_pack_file, write_part)
from mgpe_toolkit.data.sets import Mixture, open_dataset
from mgpe_toolkit.errors import InputError, UsageError
from mgpe_toolkit.io import write_image
from mgpe_toolkit.labels import IGNORE, LABEL_INDEX as L, NOT_HAIR

CONTEXT, SIZE = 96, 64


def _cache(tmp_path, kind="pseudo", scale=1.0, n=3):
    """A label cache of `n` smooth photos whose context crops are the photo scaled by `scale` (crop px per photo
    px): labels are hair on the left, skin on the right, IGNORE in a band between."""
    root, labels = tmp_path / "photos", tmp_path / "labels"
    entries = {}
    side = int(round(CONTEXT / scale))
    yy, xx = np.mgrid[:side, :side]
    for i in range(n):
        photo = np.stack([(xx * 255 // side), (yy * 255 // side), np.full_like(xx, 40 * i)], -1).astype(np.uint8)
        write_image(root / "images" / f"p{i}.jpg", photo, quality=100)
        lab = np.full((CONTEXT, CONTEXT), L["skin"], np.uint8)
        lab[:, :CONTEXT // 2 - 3] = L["hair"]
        lab[:, CONTEXT // 2 - 3:CONTEXT // 2 + 3] = IGNORE
        write_image(labels / f"p{i}.png", lab)
        entries[f"p{i}.jpg"] = [[scale, 0.0, 0.0], [0.0, scale, 0.0]]
    return SimpleNamespace(root=root, entries=entries, kind=kind,
                           label_path=lambda rel: labels / rel.replace(".jpg", ".png"))


def _write(cache, out, **kw):
    return write_part(cache, cache.entries, out, size=SIZE, context_size=CONTEXT, source="test photos",
                      terms="test terms", **kw)


def test_stored_size_keeps_what_the_photo_has():
    assert stored_size(np.eye(2, 3), 368) == 368
    assert stored_size(2 * np.eye(2, 3), 368) == 184  # a small photo upsampled twice: stored at its own size
    assert stored_size(0.5 * np.eye(2, 3), 368) == 368  # a sharp photo: never above the crop


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_a_packed_part_reads_back_the_cache_crops_and_labels(tmp_path, scale):
    import cv2

    cache = _cache(tmp_path, scale=scale)
    index = _write(cache, tmp_path / "pack" / "wild")
    assert set(index["entries"].values()) == {stored_size(np.eye(2, 3) * scale, CONTEXT)}
    part = PackedPhotos(tmp_path / "pack" / "wild")
    assert len(part) == 3 and "test photos" in part.describe()
    for i, rel in enumerate(sorted(cache.entries)):
        s = part.load(i)
        photo = cv2.imread(str(cache.root / "images" / rel))[..., ::-1]
        expect = cv2.warpAffine(photo, np.asarray(cache.entries[rel]), (CONTEXT, CONTEXT), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        assert s.image.shape == (CONTEXT, CONTEXT, 3) and s.context == CONTEXT / SIZE
        inner = np.s_[4:-4, 4:-4]
        assert np.abs(s.image[inner].astype(int) - expect[inner]).mean() < 3
        assert np.array_equal(s.mask, cv2.imread(str(cache.label_path(rel)), cv2.IMREAD_GRAYSCALE))
    hair_only = PackedPhotos(tmp_path / "pack" / "wild", hair_only=True).load(0).mask
    assert set(np.unique(hair_only).tolist()) == {L["hair"], NOT_HAIR, IGNORE}


def test_an_aligned_pack_holds_the_same_aligned_pairs_in_fewer_bytes(tmp_path):
    cache = _cache(tmp_path)
    _write(cache, tmp_path / "full")
    index = _write(cache, tmp_path / "aligned", aligned=True)
    assert index["context_size"] == SIZE and set(index["entries"].values()) == {SIZE}
    full, aligned = AlignedPack(tmp_path / "full"), AlignedPack(tmp_path / "aligned")
    for i in range(len(full)):
        a, b = full.load(i), aligned.load(i)
        assert b.image.shape == (SIZE, SIZE, 3) and np.array_equal(a.mask, b.mask)
        assert np.abs(a.image.astype(int) - b.image).mean() < 2
    assert PackedPhotos(tmp_path / "aligned").load(0).context == 1.0
    size = lambda root: sum(f.stat().st_size for f in root.rglob("*.jpg"))  # noqa: E731
    assert size(tmp_path / "aligned") < 0.7 * size(tmp_path / "full")


def test_packing_again_keeps_what_is_there_and_a_new_quality_rewrites(tmp_path):
    cache = _cache(tmp_path)
    out = tmp_path / "pack" / "wild"
    _write(cache, out)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    _write(cache, out)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")} == stamp
    (out / "images" / "p1.jpg").unlink()  # a pack interrupted part way: the missing file is packed again
    _write(cache, out)
    assert (out / "images" / "p1.jpg").is_file()
    _write(cache, out, quality=60)
    assert all(p.stat().st_mtime_ns != stamp[p] for p in out.rglob("*.jpg"))


def test_a_pack_root_lists_its_parts_and_opens_as_aligned_pairs(tmp_path):
    _write(_cache(tmp_path / "a"), tmp_path / "pack" / "wild")
    _write(_cache(tmp_path / "b", kind="celebamask", n=2), tmp_path / "pack" / "faces")
    assert write_pack_file(tmp_path / "pack") == ["faces", "wild"]
    assert "test terms" in (tmp_path / "pack" / "README.md").read_text()
    assert [p.name for p in pack_parts(tmp_path / "pack")] == ["faces", "wild"]
    both = open_dataset(str(tmp_path / "pack"))
    assert isinstance(both, Mixture) and len(both) == 5
    one = open_dataset(str(tmp_path / "pack" / "faces"))
    s = one.load(0)
    assert isinstance(one, AlignedPack) and s.image.shape == (SIZE, SIZE, 3) and s.mask.shape == (SIZE, SIZE)
    assert IGNORE not in s.mask and set(np.unique(s.mask).tolist()) == {L["hair"], L["skin"]}
    with pytest.raises(UsageError, match="hair folder"):
        PackedPhotos(tmp_path / "pack" / "faces", hair_only=True)
    (tmp_path / "pack" / "faces" / "labels" / "p0.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="p0.png"):
        PackedPhotos(tmp_path / "pack" / "faces").load(0)
    import shutil

    shutil.rmtree(tmp_path / "pack" / "wild")
    with pytest.raises(UsageError, match="wild"):
        pack_parts(tmp_path / "pack")


def test_ignored_labels_take_the_nearest_known_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 19, (20, 30)).astype(np.uint8)
    labels[rng.random((20, 30)) < 0.4] = IGNORE
    filled = fill_ignored(labels)
    known = np.argwhere(labels != IGNORE)
    for y, x in np.argwhere(labels == IGNORE):
        d = ((known - (y, x)) ** 2).sum(1)
        nearest = {int(labels[tuple(k)]) for k in known[d == d.min()]}
        # DIST_L2 with a 5×5 mask is near-exact: the label is that of a known pixel at (about) the least distance.
        near = {int(labels[tuple(k)]) for k in known[d <= d.min() * 1.1 + 1]}
        assert int(filled[y, x]) in near, (y, x, nearest)
    assert np.array_equal(filled[labels != IGNORE], labels[labels != IGNORE])
    assert not fill_ignored(np.full((4, 4), IGNORE, np.uint8)).any()
