"""Hostile inputs, round two (issue 38): outputs that are inputs or each other, pipes, unwritable or corrupt
caches, ASCII terminals, help text, output names that collide within a run, and concurrent batch runs. Each is
refused before any work, or handled, with every input file left as it was."""
import hashlib
import json
import os

import numpy as np
import pytest

from mgpe_toolkit.io import output_clash, read_image, same_file, write_image
from mgpe_toolkit.types import Alignment
from run_cli import mgpe


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("p.png", "q.png"):
        write_image(tmp_path / name, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    write_image(tmp_path / "m.png", np.zeros((64, 64), np.uint8))
    write_image(tmp_path / "face.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    side = Alignment(np.array([[0.5, 0, 0], [0, 0.5, 0]]), 32, np.zeros((5, 2)), source_path=str(tmp_path / "p.png"),
                     source_size=(64, 64))
    (tmp_path / "face.json").write_text(json.dumps(side.to_json()))
    os.link(tmp_path / "p.png", tmp_path / "p-link.png")
    return tmp_path


@pytest.mark.parametrize("args, said", [
    (("edit", "-m", "hair->skin", "{d}/p.png", "-o", "{d}/p.png"), "is the input IMAGE"),
    (("edit", "-m", "hair->skin", "{d}/p.png", "-o", "{d}/p-link.png"), "is the input IMAGE"),
    (("edit", "-m", "hair->skin", "{d}/p.png", "-o", "{d}/sub/../m.png", "--source-mask", "{d}/m.png"),
     "is the input --source-mask"),
    (("edit", "-m", "hair->skin", "{d}/p.png", "--save-mask", "{d}/r.png", "-o", "{d}/r.png"),
     "one would overwrite the other"),
    (("edit", "-m", "hair->skin", "{d}/p.png", "-o", "{d}/m.preview.png", "--save-mask", "{d}/m2.png"), None),
    (("edit", "-m", "hair->skin", "{d}/p.png", "-o", "{d}/m.preview.png", "--save-mask", "{d}/m.png"),
     "--save-mask's preview"),
    (("edit", "-m", "hair->skin", "{d}/face.png", "-o", "{d}/p.png"), "IMAGE's photo"),
    (("swap+", "{d}/p.png", "{d}/q.png", "-o", "{d}/p.png"), "is the input SOURCE"),
    (("transfer", "{d}/q.png", "--from", "{d}/p.png", "-c", "hair", "--aligned-out", "{d}/q.png"),
     "is the input TARGET"),
    (("paste-back", "{d}/face.png", "-o", "{d}/p.png", "--region", "all"), "is the input the photo"),
    (("synth", "{d}/m.png", "--sources", "{d}", "-o", "{d}"), "is the --sources folder"),
    (("synth", "{d}/m.png", "--sources", "{d}", "-o", "{d}/out", "--grid", "{d}/m.png"), "is the input MASK"),
])
def test_an_output_that_is_an_input_or_another_output_is_refused(files, args, said):
    before = _digests(files)
    proc = mgpe(*(a.replace("{d}", str(files)) for a in args))
    text = proc.stdout + proc.stderr
    if said is None:  # the preview of m2.png is m2.preview.png: no clash, so this run goes on to the photo
        assert "overwrite" not in text and "is the input" not in text, text
        return
    assert proc.returncode == 2 and said in text and len(text.strip().splitlines()) == 1, text
    assert _digests(files) == before


@pytest.mark.parametrize("args, label", [
    (("edit", "-m", "hair->skin", "{d}/p.png", "-o", "{d}/q.png"), "--out"),
    (("swap+", "{d}/p.png", "{d}/face.png", "--aligned-out", "{d}/q.png"), "--aligned-out"),
    (("transfer", "{d}/p.png", "--from", "{d}/face.png", "-c", "hair", "-o", "{d}/m.png"), "--out"),
    (("paste-back", "{d}/face.png", "-o", "{d}/q.png", "--region", "all"), "--out"),
])
def test_an_output_named_onto_an_existing_file_is_refused_without_overwrite(files, args, label):
    before = _digests(files)
    proc = mgpe(*(a.replace("{d}", str(files)) for a in args))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and f"{label} " in text and "exists; pass --overwrite" in text, text
    assert len(text.strip().splitlines()) == 1 and _digests(files) == before


def test_overwrite_replaces_a_named_output_and_a_derived_one_is_replaced_anyway(tmp_path, astronaut):
    write_image(tmp_path / "a.png", astronaut)
    write_image(tmp_path / "old.png", np.zeros((8, 8, 3), np.uint8))
    proc = mgpe("edit", "-m", "hair->skin", str(tmp_path / "a.png"), "-o", str(tmp_path / "old.png"), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert read_image(tmp_path / "old.png").shape == astronaut.shape
    for _ in range(2):  # the default name is this command's own result: a rerun replaces it
        proc = mgpe("edit", "-m", "hair->skin", str(tmp_path / "a.png"), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.edit.png").is_file()


def test_output_clash_compares_resolved_paths_and_inodes(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    assert same_file(tmp_path / "a.png", tmp_path / "b.png")
    assert same_file(tmp_path / "new.png", tmp_path / "." / "new.png")
    assert not same_file(tmp_path / "a.png", tmp_path / "new.png")
    assert output_clash([("--out", tmp_path / "c.png"), ("--aligned-out", tmp_path / "d.png")],
                        [("IMAGE", tmp_path / "a.png")]) is None
    assert "IMAGE" in output_clash([("--out", tmp_path / "b.png")], [("IMAGE", tmp_path / "a.png")])


def test_help_prints_ops_literally_not_as_emoji():
    import re

    from typer.main import get_command

    from mgpe_toolkit.cli import app

    proc = mgpe("edit", "--help")
    flat = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "grow:eyes:2" in flat and "scale:mouth:1.2" in flat, proc.stdout
    emoji = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")
    group = get_command(app)
    from click.testing import CliRunner

    for name in group.commands:  # every command's help, rendered as a user's terminal renders it
        result = CliRunner().invoke(group, [name, "--help"], terminal_width=200)
        assert result.exit_code == 0 and not emoji.search(result.output), (name, result.output)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("photo") / "a.png"
    write_image(path, astronaut)
    return path


def _parse_with_cache(cache, photo, out):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "mgpe_toolkit", "parse", str(photo), str(out)], capture_output=True,
                          text=True, env=env)


@pytest.mark.parametrize("cache", ["/proc", "file"])
def test_an_unwritable_graph_cache_costs_a_rebuild_not_the_run(tmp_path, photo, cache):
    if cache == "file":
        cache = tmp_path / "not-a-folder"
        cache.write_text("x")
    proc = _parse_with_cache(cache, photo, tmp_path / "masks")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "masks" / "a.png").is_file()
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "cannot be written" in notes[0] and "Traceback" not in proc.stderr, proc.stderr


def test_a_corrupt_cached_graph_is_rebuilt_and_replaced(tmp_path, photo):
    cache = tmp_path / "cache"
    first = _parse_with_cache(cache, photo, tmp_path / "m1")
    assert first.returncode == 0 and "note:" not in first.stderr, first.stderr
    graphs = sorted((cache / "mgpe").glob("*.onnx"))
    assert graphs
    for i, g in enumerate(graphs):
        g.write_bytes(b"" if i == 0 else b"not a graph")
    again = _parse_with_cache(cache, photo, tmp_path / "m2")
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert (tmp_path / "m1" / "a.png").read_bytes() == (tmp_path / "m2" / "a.png").read_bytes()
    third = _parse_with_cache(cache, photo, tmp_path / "m3")
    assert third.returncode == 0 and "note:" not in third.stderr, third.stderr
    assert all(g.stat().st_size > 1000 for g in graphs)


@pytest.mark.parametrize("args", [
    ("edit", "-m", "hair->skin", "{d}/pipe.png"),
    ("edit", "--mask", "{d}/pipe.png", "{d}/a.png"),
    ("edit", "-m", "from:hair:{d}/pipe.png", "{d}/a.png"),
])
def test_a_fifo_given_as_an_input_is_refused_not_waited_on(tmp_path, photo, args):
    import shutil
    import subprocess
    import sys

    shutil.copy(photo, tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe.png")
    cmd = [sys.executable, "-m", "mgpe_toolkit", *(a.replace("{d}", str(tmp_path)) for a in args),
           "-o", str(tmp_path / "out.png")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "not a regular file" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out.png").exists()


def test_a_fifo_in_a_folder_is_counted_not_waited_on(tmp_path, photo):
    import shutil
    import subprocess
    import sys

    (tmp_path / "raw").mkdir()
    shutil.copy(photo, tmp_path / "raw" / "a.png")
    os.mkfifo(tmp_path / "raw" / "b.png")
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "align", str(tmp_path / "raw"), str(tmp_path / "al")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and (tmp_path / "al" / "a.png").is_file(), proc.stderr
    import re

    # done 1, skipped 0, no face 0, unreadable 0, failed 0, not an image 1 (the pipe)
    assert "not an image" in proc.stdout and re.search(r"│\s+1 │(\s+0 │){4}\s+1 │", proc.stdout), proc.stdout


def test_a_batch_run_does_not_redo_a_photo_another_run_finished_after_planning(tmp_path, photo):
    from mgpe_toolkit.batch.local import BatchTask, run_batch
    from mgpe_toolkit.io import claim_holder

    out = tmp_path / "out"
    jobs = [(photo, out / "a.png"), (photo, out / "b.png")]
    task = BatchTask(kind="edit", ops=["hair->skin"], parser="mesh")
    outcomes = run_batch(task, jobs)
    first = next(outcomes)  # a.png: planned and done by this run
    assert first.status == "done"
    write_image(out / "b.png", np.zeros((8, 8, 3), np.uint8))  # another run finishes b.png meanwhile
    stamp = (out / "b.png").stat().st_mtime_ns
    second = next(outcomes)
    assert second.status == "skipped" and "another run finished it" in second.note
    assert (out / "b.png").stat().st_mtime_ns == stamp and claim_holder(out / "b.png") is None


def test_a_file_name_the_terminal_cannot_encode_prints_escaped(tmp_path, photo):
    import shutil
    import subprocess
    import sys

    shutil.copy(photo, tmp_path / "portrait-é.png")
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "edit", "-m", "grow:eyes:1",
                           str(tmp_path / "portrait-é.png"), "-o", str(tmp_path / "résultat.png")], capture_output=True, text=True, env=env,
                          encoding="ascii", errors="replace")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "r\\xe9sultat.png" in proc.stdout and (tmp_path / "résultat.png").is_file(), proc.stdout


@pytest.mark.parametrize("args, second, expected", [
    (("parse", "--preview"), "a.preview.jpg",
     {"a.png", "a.preview.png", "a.preview_jpg.png", "a.preview_jpg.preview.png"}),
    (("batch", "--mask-op", "grow:eyes:1", "--aligned-out"), "a.aligned.jpg",
     {"a.png", "a.aligned.png", "a.aligned_jpg.png", "a.aligned_jpg.aligned.png"}),
])
def test_a_photo_named_like_another_photos_second_output_keeps_both(tmp_path, astronaut, args, second, expected):
    (tmp_path / "raw").mkdir()
    write_image(tmp_path / "raw" / "a.png", astronaut)
    write_image(tmp_path / "raw" / second, np.ascontiguousarray(astronaut[:, ::-1]))
    proc = mgpe(args[0], tmp_path / "raw", tmp_path / "out", *args[1:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".png"} == expected
