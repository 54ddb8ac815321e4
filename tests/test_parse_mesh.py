"""The zero-weight `mesh` parser (the fallback) on real faces: geometry of the parts, hair, and accuracy on Helen samples."""
import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.errors import NoFaceError
from mgpe_toolkit.labels import LABEL_INDEX as L
from mask_checks import centroid
from mgpe_toolkit.labels import component_center


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(parse="mesh")


@pytest.fixture(scope="module")
def astro_parsed(pipe, astronaut):
    face = pipe.align(astronaut)[0]
    return face.image, pipe.parse(face.image).labels


def test_mesh_is_chosen_by_name(pipe):
    assert pipe.implementation_name("parse") == "mesh"


def test_astronaut_parts_sit_where_faces_have_them(astro_parsed):
    _, m = astro_parsed
    assert m.shape == (256, 256) and m.dtype == np.uint8
    present = set(np.unique(m).tolist())
    for name in ("background", "skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip", "hair"):
        assert L[name] in present, name
    (lex, ley), (rex, rey) = centroid(m, "l_eye"), centroid(m, "r_eye")
    assert lex < 128 < rex and abs(ley - rey) < 6
    # Aligned to the template: eyes near (96, 120) and (159, 120), mouth centre near (128, 186).
    assert abs(lex - 96.5) < 8 and abs(rex - 159.5) < 8 and abs(ley - 120) < 8
    nose_y = centroid(m, "nose")[1]
    mouth_y = centroid(m, "u_lip", "l_lip", "mouth")[1]
    assert ley < nose_y < mouth_y and abs(component_center(m, "mouth")[1] - 186) < 10
    brow_y = centroid(m, "l_brow", "r_brow")[1]
    assert brow_y < ley
    # Hair: above the brows, over the forehead's width; none below the mouth in the middle of the face.
    hair_ys, hair_xs = np.nonzero(m == L["hair"])
    assert np.percentile(hair_ys, 10) < brow_y - 20
    assert hair_xs.min() < lex and hair_xs.max() > rex
    assert not (m[200:, 110:146] == L["hair"]).any()
    # Skin surrounds the nose; the corners of the crop are background (the flag and the wall).
    assert m[int(nose_y), 85] == L["skin"] and m[int(nose_y), 170] == L["skin"]
    assert (m[:20, :20] == L["background"]).all() and (m[:20, -20:] == L["background"]).all()


def test_hair_colour_is_the_astronauts_hair(astro_parsed):
    img, m = astro_parsed
    hair = img[m == L["hair"]].astype(float).mean(0)
    skin = img[m == L["skin"]].astype(float).mean(0)
    bg = img[m == L["background"]].astype(float).mean(0)
    # Her hair is a mid brown: darker than her skin, unlike the bright backdrop.
    assert hair.sum() < skin.sum() and np.abs(hair - bg).sum() > 60


def test_mirrored_face_mirrors_the_mask(pipe, astro_parsed):
    img, m = astro_parsed
    flipped = pipe.parse(np.ascontiguousarray(img[:, ::-1])).labels
    from mgpe_toolkit.labels import assign_sides

    back = assign_sides(flipped[:, ::-1])
    for name in ("l_eye", "r_eye", "nose"):
        a, b = m == L[name], back == L[name]
        assert (a & b).sum() / (a | b).sum() > 0.6, name


def test_no_face_raises(pipe):
    import skimage.data

    with pytest.raises(NoFaceError):
        pipe.stage("parse").parse(skimage.data.coffee()[:256, :256])


def test_accuracy_on_helen_samples(helen_dir, pipe):
    """Issue #3's targets (README figure: 0.929 accuracy, hair IoU 0.817, lips merged)."""
    from mask_checks import helen_confusion

    total = helen_confusion(pipe, helen_dir)
    iou = total.iou()
    assert total.accuracy >= 0.92, total.accuracy
    assert iou["hair"] >= 0.80 and iou["lips"] > 0.85 and iou["skin"] > 0.83, iou


def test_a_patterned_headscarf_is_hat_and_hair_is_not(helen_dir, pipe, astronaut, grace_hopper):
    from mgpe_toolkit.io import read_image

    scarf = pipe.parse(read_image(helen_dir / "images" / "4.png")).labels
    assert (scarf == L["hat"]).mean() > 0.1 and (scarf == L["hair"]).sum() == 0
    for face in (pipe.align(astronaut)[0].image, pipe.align(grace_hopper)[0].image,
                 read_image(helen_dir / "images" / "1033.png")):
        labels = pipe.parse(face).labels
        assert (labels == L["hat"]).sum() == 0 and (labels == L["hair"]).mean() > 0.05
