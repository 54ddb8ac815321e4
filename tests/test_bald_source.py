"""A source face without hair (a bald head, a headscarf): swap+ keeps the target's hair and says so, transfer and
batch --transfer name the file, synth skips that source and goes on with the others."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from mgpe_toolkit import Pipeline
from mgpe_toolkit.cli import app
from mgpe_toolkit.io import write_image
from mgpe_toolkit.labels import LABEL_INDEX

HAIR = LABEL_INDEX["hair"]


def _bald(face):
    face.mask.labels[face.mask.labels == HAIR] = LABEL_INDEX["background"]
    return face


@pytest.fixture
def bald_grace(monkeypatch, grace_hopper):
    """grace_hopper (600×512) parses without hair, as a bald head would."""
    real = Pipeline.prepare

    def prepare(self, image, *a, **k):
        face = real(self, image, *a, **k)
        return _bald(face) if image.shape[:2] == grace_hopper.shape[:2] else face

    monkeypatch.setattr(Pipeline, "prepare", prepare)


def test_swap_from_a_bald_face_keeps_the_targets_hair(astronaut, grace_hopper):
    pipe = Pipeline()
    a, b = _bald(pipe.prepare(grace_hopper)), pipe.prepare(astronaut)
    assert (b.mask.labels == HAIR).sum() > 500
    result = pipe.swap(a, b)
    assert any("no hair" in n and "target's is kept" in n for n in result.notes)
    hair = b.mask.labels == HAIR
    own = np.abs(result.aligned[hair].astype(int) - b.image[hair].astype(int)).mean()
    assert own < 15, f"the target's hair should be reproduced, mean difference {own:.1f}"
    face = np.isin(b.mask.labels, [LABEL_INDEX["skin"], LABEL_INDEX["nose"]])
    assert np.abs(result.aligned[face].astype(int) - b.image[face].astype(int)).mean() > own  # the face did change


def test_cli_transfer_and_batch_name_the_bald_source(tmp_path, astronaut, grace_hopper, bald_grace):
    write_image(tmp_path / "bald.png", grace_hopper)
    write_image(tmp_path / "raw" / "astro.png", astronaut)
    r = CliRunner().invoke(app, ["transfer", str(tmp_path / "raw" / "astro.png"), "--from", str(tmp_path / "bald.png"),
                                 "-c", "hair", "-o", str(tmp_path / "t.png")])
    assert r.exit_code == 1 and f"{tmp_path / 'bald.png'}: has no hair" in r.output.replace("\n", "")
    assert not (tmp_path / "t.png").exists()
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "raw"), str(tmp_path / "out"), "--transfer", "hair",
                                 "--from", str(tmp_path / "bald.png"), "--workers", "1"])
    assert r.exit_code == 2 and "bald.png: has no hair" in r.output.replace("\n", "")
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "raw"), str(tmp_path / "out"), "--swap-from",
                                 str(tmp_path / "bald.png"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "no hair in its mask: the target's is kept" in r.output.replace("\n", "")
    assert (tmp_path / "out" / "astro.png").is_file()


def test_cli_synth_skips_a_bald_source_and_names_it(tmp_path, astronaut, grace_hopper, bald_grace):
    from mgpe_toolkit.io import read_image, write_mask

    pipe = Pipeline()
    write_mask(tmp_path / "target.png", pipe.prepare(astronaut).mask.labels)
    write_image(tmp_path / "src" / "a_bald.png", grace_hopper)
    write_image(tmp_path / "src" / "b_astro.png", astronaut)
    r = CliRunner().invoke(app, ["synth", str(tmp_path / "target.png"), "--sources", str(tmp_path / "src"),
                                 "-n", "2", "-o", str(tmp_path / "out")])
    text = r.output.replace("\n", "")
    assert "a_bald.png: it has no hair" in text and "target.png needs it" in text
    assert r.exit_code == 1  # fewer faces than -n asked for
    assert read_image(tmp_path / "out" / "synth_00.png").shape == (256, 256, 3)
    assert not (tmp_path / "out" / "synth_01.png").exists()
