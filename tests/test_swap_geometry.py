"""Swap+ geometry from the face mesh (issue 37): the source's skin is warped piecewise along both faces' meshes,
so its features land on the target's."""
from __future__ import annotations

import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.labels import LABEL_INDEX
from mgpe_toolkit.stages.generate_classical import mesh_warp


def test_mesh_warp_puts_each_source_point_on_its_target_point():
    rng = np.random.default_rng(0)
    s = 256
    src = rng.uniform(60, 200, (60, 2))
    dst = 1.05 * src - 6 + 5 * np.sin(src[:, ::-1] / 25)  # another face: scaled and smoothly bent
    yy, xx = np.mgrid[:s, :s]
    ramp = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)  # each pixel holds its own coordinates
    shift = np.array([[1, 0, 10.0], [0, 1, -5.0]])  # beyond the mesh: this similarity, source -> target
    warped, region = mesh_warp(ramp, np.ones((s, s), bool), src, dst, shift)
    from scipy.ndimage import map_coordinates

    seen = np.stack([map_coordinates(warped[..., c].astype(float), dst[:, ::-1].T, order=1) for c in (0, 1)], 1)
    assert np.abs(seen - src).max() < 1.2  # the map is exact on a grid of 2-px steps, linear between
    # One continuous map over the whole crop (the mesh joined to the similarity beyond it): no tear, no hole.
    ramp_x, ramp_y = warped[..., 0].astype(int), warped[..., 1].astype(int)
    assert np.abs(np.diff(ramp_x, axis=1)).max() <= 3 and np.abs(np.diff(ramp_y, axis=0)).max() <= 3
    assert region[60:200, 60:200].all()
    # Beyond the mesh the similarity takes over: a corner shows about what it maps there, (x - 10, y + 5).
    assert np.abs(warped[250, 5, :2].astype(int) - (0, 255)).max() <= 8


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


def centre(labels: np.ndarray, name: str) -> np.ndarray:
    ys, xs = np.nonzero(labels == LABEL_INDEX[name])
    return np.array([xs.mean(), ys.mean()])


def test_a_swap_lands_the_source_nose_on_the_target_nose(pipe, astronaut, grace_hopper):
    import mgpe_toolkit.stages.encode_classical as enc

    source, target = pipe.prepare(grace_hopper), pipe.prepare(astronaut)
    codes = pipe.stage("encode").swap_codes(pipe.encode(source), pipe.encode(target))
    if codes.codes["skin"].mesh_to is None:
        pytest.skip("no face mesh here (mediapipe not installed)")
    result = pipe.swap(source, target)
    off = {}
    off["mesh"] = np.linalg.norm(centre(pipe.parse(result.aligned).labels, "nose") - centre(target.mask.labels, "nose"))
    saved = enc.face_mesh
    enc.face_mesh = lambda image: None  # the similarity alone
    try:
        plain = pipe.swap(source, target)
    finally:
        enc.face_mesh = saved
    off["similarity"] = np.linalg.norm(centre(pipe.parse(plain.aligned).labels, "nose")
                                       - centre(target.mask.labels, "nose"))
    assert off["mesh"] < 3 and off["mesh"] <= off["similarity"] + 0.5, off
