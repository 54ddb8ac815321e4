import numpy as np
import pytest

from mgpe_toolkit.align import apply_affine, fit_similarity, template
from mgpe_toolkit.data.synthetic import synthetic_portrait


def test_fit_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, t = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = fit_similarity(src, src @ rot.T + t)
    assert np.allclose(m, np.hstack([rot, t[:, None]]))
    with pytest.raises(ValueError, match="coincide"):
        fit_similarity(np.ones((5, 2)), src)


def test_template_scales_with_size():
    assert np.allclose(template(512), template(256) * 2)


def test_mediapipe_aligns_the_astronaut_onto_the_template(astronaut):
    from mgpe_toolkit import Pipeline

    faces = Pipeline().align(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.image.shape == (256, 256, 3) and f.alignment.aligner == "mediapipe" and f.alignment.score > 0.5
    eyes = apply_affine(f.alignment.matrix, f.alignment.landmarks[:2])
    assert np.abs(eyes - template()[:2]).max() < 4


def test_mediapipe_finds_no_face_in_a_synthetic_wall():
    from mgpe_toolkit import Pipeline

    wall = np.full((300, 300, 3), 128, np.uint8)
    assert Pipeline().align(wall) == []
    assert synthetic_portrait(0).image.shape == (256, 256, 3)
