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


def test_a_small_face_beside_the_largest_does_not_take_its_place(astronaut, grace_hopper):
    """The mesh on the crop about the largest face also sees a small neighbour; it used to settle on the
    neighbour, so the photo was aligned to the wrong person."""
    import cv2

    from mgpe_toolkit import Pipeline

    pipe = Pipeline()
    photo = astronaut.copy()
    small = cv2.resize(grace_hopper, None, fx=0.3 * 512 / grace_hopper.shape[1], fy=0.3 * 512 / grace_hopper.shape[1])
    box = pipe.stage("align").detect(small)[0][0]
    x0, y0 = (np.array([300, 200]) - (box[:2] + box[2:]) / 2).astype(int)
    photo[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small[:512 - y0, :512 - x0]
    alone = pipe.align(astronaut)[0].alignment.landmarks
    both = pipe.align(photo, all_faces=True)
    assert len(both) == 2
    face = pipe.align(photo)[0].alignment.landmarks
    assert np.abs(face - alone).max() < 3  # the astronaut, not Grace Hopper beside her
    assert np.abs(both[0].alignment.landmarks - alone).max() < 3


def test_boxes_rank_by_what_lies_inside_the_photo(monkeypatch):
    """A face cut by the photo's edge can have a larger box than the face in the middle; and the short-range
    model's faces join the full-range model's."""
    from mgpe_toolkit.stages.align_mediapipe import MediapipeAligner

    al = MediapipeAligner()
    al._load()
    found = {id(al._detectors[0]): [(np.array([-0.3, 0.2, 0.25, 0.75]), 0.9)],  # 0.55 wide, half outside
             id(al._detectors[1]): [(np.array([0.35, 0.3, 0.75, 0.7]), 0.9)]}  # 0.40 wide, all inside
    monkeypatch.setattr(MediapipeAligner, "_run", staticmethod(lambda detector, image: found[id(detector)]))
    boxes = [box for box, _ in al.detect(np.zeros((100, 100, 3), np.uint8))]
    assert len(boxes) == 2 and np.allclose(boxes[0], [35, 30, 75, 70])


@pytest.mark.parametrize("name", ["Kimi_Raikkonen_0001", "Princess_Masako_0001", "Terry_Stotts_0001",
                                  "Azmi_Bishara_0001", "William_Bulger_0001"])
def test_the_face_in_the_middle_of_an_lfw_photo_is_the_one_aligned(name):
    """LFW centres the named person; these photos have someone else at the edge, or a face beside the
    named one that the mesh used to settle on."""
    from mask_checks import LFW
    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.io import read_image

    path = LFW / "images" / f"{name}.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    eyes = Pipeline().align(read_image(path))[0].alignment.landmarks[:2].mean(0)
    assert np.abs(eyes - [125, 115]).max() < 30, eyes


def test_nearest_mesh_picks_the_face_whose_eyes_are_nearest():
    from mgpe_toolkit.stages.align_mediapipe import IRIS_CENTRES, nearest_mesh

    def face(x, y):
        pts = np.zeros((478, 2))
        pts[list(IRIS_CENTRES)] = (x, y)
        return pts

    mesh = nearest_mesh([face(180, 90), face(100, 45), face(20, 50)], np.array([100.0, 47.0]))
    assert np.allclose(mesh[IRIS_CENTRES[0]], [100, 45])
    assert nearest_mesh([], np.zeros(2)) is None


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
