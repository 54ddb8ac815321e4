"""mediapipe's face models as shipped ONNX graphs: the numpy pre/post-processing, parity with mediapipe itself
(skipped where it is not installed), the conversion script, and running without mediapipe at all."""
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mgpe_toolkit.stages import face_graphs as fg

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = ROOT / "models" / fg.GRAPH_DIR


def five_points_at_256(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Photo landmarks (5, 2) in the pixels of a 256² aligned crop (matrix: photo -> crop)."""
    return landmarks @ matrix[:, :2].T + matrix[:, 2]


def test_anchor_grids_match_the_detectors_outputs():
    assert fg.anchors(fg.DETECTORS["short"]).shape == (896, 2)
    assert fg.anchors(fg.DETECTORS["full"]).shape == (2304, 2)
    short = fg.anchors(fg.DETECTORS["short"])
    assert np.allclose(short[0], [1 / 32, 1 / 32]) and np.allclose(short[1], short[0])  # two per 16² cell
    assert np.allclose(short[512], [1 / 16, 1 / 16]) and (short[512:518] == short[512]).all()  # six per 8² cell


def test_weighted_nms_averages_overlapping_boxes_by_score():
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.7, 0.7, 0.9, 0.9]])
    points = np.stack([np.full((6, 2), v) for v in (0.3, 0.32, 0.8)])
    faces = fg.weighted_nms(boxes, points, np.array([0.9, 0.6, 0.8]))
    assert [round(f.score, 2) for f in faces] == [0.9, 0.8]
    assert np.allclose(faces[0].box[0], (0.1 * 0.9 + 0.12 * 0.6) / 1.5)
    assert np.allclose(faces[0].keypoints, (0.3 * 0.9 + 0.32 * 0.6) / 1.5)
    assert np.allclose(faces[1].box, boxes[2])


def test_the_face_crop_levels_the_eyes():
    """The rotated crop (45° for eyes on a diagonal, 1.5 x the box) takes the eyes (keypoints 0 -> 1) to one row,
    left to right."""
    keypoints = np.array([[0.4, 0.4], [0.5, 0.5], *[[0.45, 0.5]] * 4])
    face = fg.Detection(box=np.array([0.3, 0.3, 0.6, 0.6]), keypoints=keypoints, score=0.9)
    rect = fg.face_rect(face, 200, 200)
    assert np.isclose(rect.rotation, np.pi / 4) and np.isclose(rect.w, 1.5 * 60)
    m = fg.crop_matrix(rect, 192, 192)
    eyes = np.array([[80.0, 80.0], [100.0, 100.0]]) @ m[:, :2].T + m[:, 2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-3 and eyes[0, 0] < eyes[1, 0]


def test_graphs_ship_with_licence_and_card():
    for name in fg.GRAPHS.values():
        assert (GRAPHS / name).is_file(), name
    assert "Apache License" in (GRAPHS / "LICENSE").read_text()
    card = (GRAPHS / "README.md").read_text()
    assert "convert.py" in card and "0.10.21" in card
    assert fg.graphs_problem() is None


def test_align_and_parse_run_without_mediapipe(tmp_path, astronaut):
    """With `import mediapipe` made to fail, the default pipeline aligns, meshes and parses the astronaut."""
    from mgpe_toolkit.io import write_image

    write_image(tmp_path / "a.png", astronaut)
    code = ("import sys; sys.modules['mediapipe'] = None\n"
            "from mgpe_toolkit import Pipeline\nfrom mgpe_toolkit.io import read_image\n"
            "from mgpe_toolkit.stages.encode_classical import face_mesh\n"
            "pipe = Pipeline(parse='mesh')\n"
            f"face = pipe.align(read_image({str(tmp_path / 'a.png')!r}))[0]\n"
            "mask = pipe.parse(face.image)\n"
            "print(face.alignment.aligner, sorted(set(mask.labels.ravel().tolist())).__len__(), "
            "face_mesh(face.image).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    aligner, n_labels, mesh_shape = out.stdout.split(maxsplit=2)
    assert aligner == "mediapipe" and int(n_labels) >= 8 and mesh_shape.strip() == "(478, 2)"


def test_a_missing_graph_is_one_clear_error(monkeypatch, astronaut):
    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.errors import UsageError

    monkeypatch.setattr(fg, "graph_path", lambda name: None)
    with pytest.raises(UsageError, match="no face_detection_short_range.onnx in .*convert.py"):
        Pipeline().align(astronaut)


def test_a_face_rolled_45_degrees_is_still_found(astronaut):
    """The detector's keypoints turn the mesh's crop: a face rolled by 45° lands its eyes where the upright
    face's eyes, rolled the same, lie."""
    import cv2

    from mgpe_toolkit import Pipeline

    pipe = Pipeline()
    upright = pipe.align(astronaut)[0].alignment.landmarks
    h, w = astronaut.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 45, 1.0)
    rolled = cv2.warpAffine(astronaut, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
    found = pipe.align(rolled)[0].alignment.landmarks
    expected = upright @ turn[:, :2].T + turn[:, 2]
    assert np.abs(found[:2] - expected[:2]).max() < 4, (found[:2], expected[:2])


@pytest.mark.parametrize("which", ["astronaut", "grace_hopper"])
def test_landmarks_match_mediapipes_own(which, request):
    """Five landmarks of the ONNX graphs against mediapipe 0.10.21's solutions on the demo photos: within
    0.5 px at 256² (the issue's bound), mesh points within 1 px there."""
    mp_mesh = pytest.importorskip("mediapipe.python.solutions.face_mesh")
    from mgpe_toolkit.align import align_from_landmarks
    from mgpe_toolkit.stages.align_mediapipe import MESH_FACES, MESH_MIN_SCORE, five_points_from_mesh, meshes

    photo = np.ascontiguousarray(request.getfixturevalue(which)[..., :3])
    h, w = photo.shape[:2]
    with mp_mesh.FaceMesh(static_image_mode=True, max_num_faces=MESH_FACES, refine_landmarks=True,
                          min_detection_confidence=MESH_MIN_SCORE) as graph:
        res = graph.process(photo)
    ref = np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark])
    ours = meshes(photo)[0]
    matrix = align_from_landmarks(photo, five_points_from_mesh(ref), 256).alignment.matrix
    err5 = np.linalg.norm(five_points_at_256(five_points_from_mesh(ours), matrix)
                          - five_points_at_256(five_points_from_mesh(ref), matrix), axis=1)
    err = np.linalg.norm(five_points_at_256(ours, matrix) - five_points_at_256(ref, matrix), axis=1)
    assert err5.mean() <= 0.5 and err.mean() < 1.0, (err5, err.mean())


def test_person_mask_matches_mediapipes_selfie_model(astronaut):
    selfie = pytest.importorskip("mediapipe.python.solutions.selfie_segmentation")
    import cv2

    image = np.ascontiguousarray(cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA))
    with selfie.SelfieSegmentation(model_selection=0) as graph:
        ref = graph.process(image).segmentation_mask
    ours = fg.person_mask(image)
    assert ours.shape == (256, 256) and np.abs(ours - ref).mean() < 0.01 and ((ours > 0.5) != (ref > 0.5)).mean() < 0.005


def test_the_conversion_script_rebuilds_the_shipped_graphs(tmp_path):
    """models/mediapipe-face/convert.py, rerun from the mediapipe 0.10.21 wheel, writes the committed bytes."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("tflite")
    out = subprocess.run([sys.executable, str(GRAPHS / "convert.py"), "--out", str(tmp_path)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in fg.GRAPHS.values():
        digest = [hashlib.sha256((d / name).read_bytes()).hexdigest() for d in (tmp_path, GRAPHS)]
        assert digest[0] == digest[1], name
