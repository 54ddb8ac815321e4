import numpy as np
import pytest

from mgpe_toolkit.align import apply_affine, fit_similarity, template


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


def test_mediapipe_finds_no_face_in_a_blank_wall():
    from mgpe_toolkit import Pipeline

    wall = np.full((300, 300, 3), 128, np.uint8)
    assert Pipeline().align(wall) == []


def test_paste_back_changes_only_the_region(astronaut):
    from mgpe_toolkit.align import align_from_landmarks, paste_back
    from mgpe_toolkit.stages.align_mediapipe import MediapipeAligner

    face = MediapipeAligner().align(astronaut)[0]
    region = np.zeros((256, 256), bool)
    region[60:220, 50:210] = True
    edited = face.image.copy()
    edited[region] = (0, 255, 0)
    out = paste_back(astronaut, edited, face.alignment, region)
    changed = np.any(out != astronaut, axis=-1)
    # Every changed pixel maps inside the region; far outside it the photo is byte-identical.
    ys, xs = np.nonzero(changed)
    back = apply_affine(face.alignment.matrix, np.stack([xs, ys], 1))
    assert back[:, 0].min() > 48 and back[:, 0].max() < 212 and back[:, 1].min() > 58 and back[:, 1].max() < 222
    assert changed.sum() > 0.8 * (160 * 160) / np.abs(np.linalg.det(face.alignment.matrix[:, :2]))
    # Deep inside, the edit shows at full strength; the identity edit changes nothing at all.
    cx, cy = apply_affine(face.alignment.inverse(), np.array([[130.0, 140.0]]))[0].round().astype(int)
    assert out[cy, cx, 1] > 240 and out[cy, cx, 0] < 15
    same = paste_back(astronaut, face.image, face.alignment, np.zeros((256, 256), bool))
    assert np.array_equal(same, astronaut)
    assert align_from_landmarks(astronaut, face.alignment.landmarks).image.shape == (256, 256, 3)
