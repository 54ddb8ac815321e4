"""Issue 16: `align --all-faces` finds every small face of a 3×3 group photo once, aligned onto the template.

The group photo is built from real faces: the astronaut, Grace Hopper and seven Helen samples, each scaled to a
given distance between the eyes and blended into a textured 900² canvas.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mgpe_toolkit.align import apply_affine, template
from mgpe_toolkit.io import write_image
from run_cli import mgpe

# Eye centres (image left, image right) in the two bundled photos, measured once with the default aligner.
ASTRONAUT_EYES = ((203.6, 101.4), (246.8, 103.7))
GRACE_EYES = ((222.2, 190.8), (306.3, 188.3))
SMALL = (24.0, 40.0)  # eye distances of the faces (boxes of ~60-100 px); the full pass misses some
MEDIUM = (40.0, 60.0)  # found by the full pass and by the tiles: merged, never twice


def group_sources(helen: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Nine (photo, (2, 2) eye centres) pairs: the astronaut, Grace Hopper and the first seven Helen samples
    (their eyes from the label maps)."""
    import cv2
    import matplotlib.cbook
    import skimage.data

    from mgpe_toolkit.io import read_image

    sources = [(skimage.data.astronaut(), np.array(ASTRONAUT_EYES)),
               (read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
                np.array(GRACE_EYES))]
    for path in sorted((helen / "images").glob("*.png"))[:7]:
        labels = cv2.imread(str(helen / "labels" / path.name), cv2.IMREAD_UNCHANGED)
        sources.append((read_image(path), np.array([np.argwhere(labels == c).mean(0)[::-1] for c in (4, 5)])))
    return sources


def group_photo(helen: Path, eyes: tuple[float, float] = SMALL, *, side: int = 900,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A side² photo of nine faces in a 3×3 layout, eye distances spread over `eyes` (px) in random order.

    Returns the photo and the (9, 2) eye midpoints of the pasted faces."""
    import cv2

    rng = np.random.default_rng(seed)
    canvas = cv2.resize(rng.uniform(100, 160, (6, 6, 3)).astype(np.float32), (side, side),
                        interpolation=cv2.INTER_CUBIC)  # smooth colour blotches and grain
    canvas += rng.normal(0, 6, canvas.shape).astype(np.float32)
    cell = side / 3
    mids = []
    for i, ((photo, src_eyes), d) in enumerate(zip(group_sources(helen), rng.permutation(np.linspace(*eyes, 9)))):
        f = d / np.linalg.norm(src_eyes[1] - src_eyes[0])
        cx, cy = cell * (i % 3 + 0.5) + rng.uniform(-25, 25), cell * (i // 3 + 0.5) + rng.uniform(-25, 25)
        mid = np.array([cx, cy - 0.13 * d])  # eyes a little above the centre of the pasted oval
        m = np.array([[f, 0, 0], [0, f, 0]])
        m[:, 2] = mid - f * src_eyes.mean(0)
        warped = cv2.warpAffine(photo, m, (side, side), flags=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        mask = np.zeros((side, side), np.float32)
        cv2.ellipse(mask, (round(cx), round(cy)), (round(1.7 * d), round(2.1 * d)), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.15 * d)[..., None]
        canvas = canvas * (1 - mask) + warped * mask
        mids.append(mid)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), np.array(mids)


def check_faces(alignments, mids: np.ndarray) -> None:
    """One alignment per pasted face, its eyes within 8 px of the template's in the 256² crop."""
    found = np.array([a.landmarks[:2].mean(0) for a in alignments])
    assert len(found) == len(mids)
    nearest = np.linalg.norm(found[:, None] - mids[None], axis=-1).argmin(1)
    assert sorted(nearest) == list(range(len(mids)))  # each pasted face once: no duplicates, none missed
    assert np.linalg.norm(found - mids[nearest], axis=-1).max() < 6
    for a in alignments:
        eyes = apply_affine(a.matrix, a.landmarks[:2]) * (256 / a.size)
        assert np.abs(eyes - template()[:2]).max() < 8


@pytest.mark.parametrize("eyes", [SMALL, MEDIUM], ids=["small", "medium"])
def test_all_faces_finds_each_small_face_once(helen_dir, eyes):
    from mgpe_toolkit import Pipeline

    pipe = Pipeline()
    photo, mids = group_photo(helen_dir, eyes)
    faces = pipe.align(photo, all_faces=True)
    check_faces([f.alignment for f in faces], mids)
    scales = [abs(np.linalg.det(f.alignment.matrix[:, :2])) for f in faces]
    assert scales == sorted(scales)  # largest face first: the smallest photo -> crop scale
    assert len(pipe.align(photo)) == 1


def test_cli_all_faces_writes_each_small_face(helen_dir, tmp_path):
    from mgpe_toolkit.types import Alignment

    photo, mids = group_photo(helen_dir)
    write_image(tmp_path / "in" / "group.png", photo)
    proc = mgpe("align", "--all-faces", tmp_path / "in", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(f"group_{i}.{ext}" for i in range(9) for ext in ("json", "png"))
    check_faces([Alignment.from_json(json.loads((tmp_path / "out" / f"group_{i}.json").read_text())) for i in range(9)],
                mids)
