"""Runs that are killed, stopped, or cannot write: no lost files, no stray workers, no traceback."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mgpe_toolkit.io import claim, claim_holder, read_image, ready_output_dir, release, write_image

from run_cli import mgpe


def _children(pid: int) -> set[int]:
    """Every live descendant of pid (Linux /proc)."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(d.name)] = int(fields[1])
            except (OSError, IndexError):
                pass
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p}
        found |= kids
        todo += kids
    return found


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            if (Path("/proc") / str(p) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.add(p)
        except OSError:
            pass
    return out


def _outlive(pids: set[int], grace: float = 10) -> set[int]:
    """Those of pids still alive after a grace time (a worker notices its dead parent within a second)."""
    end = time.time() + grace
    while _alive(pids) and time.time() < end:
        time.sleep(0.2)
    return _alive(pids)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def many_photos(tmp_path, astronaut):
    import cv2

    raw = tmp_path / "raw"
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    for i in range(40):
        write_image(raw / f"p{i:02d}.png", small)
    return raw


def _batch_at_work(raw: Path, out: Path, n: int, timeout: float = 240) -> tuple[subprocess.Popen, set[int]]:
    """A `mgpe batch` with two workers, once it has written n outputs; and its worker processes."""
    proc = subprocess.Popen([sys.executable, "-m", "mgpe_toolkit", "batch", str(raw), str(out), "-m", "hair=skin",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if out.is_dir() and len(list(out.glob("[!.]*.png"))) >= n:
            kids = _children(proc.pid)
            assert kids, "the batch should run worker processes"
            return proc, kids
        time.sleep(0.1)
    pytest.fail(f"batch wrote fewer than {n} outputs (exit {proc.poll()})")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_leaves_no_workers_and_a_rerun_clears_its_temp_files(many_photos, tmp_path):
    out = tmp_path / "out"
    proc, kids = _batch_at_work(many_photos, out, 2)
    proc.kill()
    proc.wait()
    assert not _outlive(kids), "workers outlived their killed main process"

    # What a killed run may leave: a temporary file and a claim of a dead process; a live run's are kept.
    dead = _dead_pid()
    stale = out / f".p39.mgpe{dead}.abcd1234.tmp.png"
    stale.write_bytes(b"partial")
    (out / ".p38.png.claim").write_text(str(dead))
    live = out / f".p37.mgpe{os.getpid()}.abcd1234.tmp.png"
    live.write_bytes(b"in progress")
    done_before = {p.name for p in out.glob("[!.]*.png")}
    r = mgpe("batch", many_photos, out, "-m", "hair=skin", "--workers", "1")
    assert r.returncode == 0, r.stderr
    import re

    removed = re.search(r"removed (\d+) temporary file", r.stderr)
    assert removed and int(removed.group(1)) >= 2  # ours, plus the claims the killed workers held
    assert not stale.exists() and live.exists()
    assert not list(out.glob(".*.claim"))
    assert {p.name for p in out.glob("[!.]*.png")} == {f"p{i:02d}.png" for i in range(40)}
    for name in done_before:  # finished before the kill: kept, and whole
        assert read_image(out / name).shape == (256, 256, 3)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_stops_like_ctrl_c(many_photos, tmp_path):
    out = tmp_path / "out"
    proc, kids = _batch_at_work(many_photos, out, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted (SIGTERM)" in err and "rerun the same command" in err
    assert "Traceback" not in err
    assert not _outlive(kids)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files, no claims
    for p in out.glob("[!.]*.png"):
        assert read_image(p).shape == (256, 256, 3)


def test_disk_full_stops_cleanly_and_keeps_what_was_written(tmp_path, astronaut, monkeypatch):
    """A write that fails mid-run (ENOSPC) ends the run with one line; finished outputs stay, no temp files."""
    from typer.testing import CliRunner
    from PIL import Image

    from mgpe_toolkit.cli import app

    raw = tmp_path / "raw"
    for i in range(3):
        write_image(raw / f"p{i}.png", astronaut)
    out = tmp_path / "out"
    real_save, calls = Image.Image.save, []

    def save(self, fp, *a, **k):
        calls.append(fp)
        if len(calls) > 1:  # the first photo's crop is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", save)
    r = CliRunner().invoke(app, ["align", str(raw), str(out)])
    assert r.exit_code == 1, r.output
    assert "No space left on device" in r.output and "1 finished of 3 are kept" in r.output.replace("\n", " ")
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert sorted(p.name for p in out.iterdir()) == ["p0.json", "p0.png", "p1.json"]


def test_unwritable_output_folder_is_refused_before_work(tmp_path, astronaut, monkeypatch):
    import tempfile

    from mgpe_toolkit.errors import UsageError

    def refuse(*a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UsageError, match="cannot write into it .Read-only file system"):
        ready_output_dir(tmp_path / "out")


def test_a_file_as_output_folder_is_a_usage_error(tmp_path, astronaut):
    write_image(tmp_path / "raw" / "a.png", astronaut)
    (tmp_path / "afile").write_text("x")
    for cmd in ("align", "parse"):
        for out in ("afile", "afile/sub"):
            r = mgpe(cmd, tmp_path / "raw", tmp_path / out)
            assert r.returncode == 2 and "is a file, not a folder" in r.stderr and "Traceback" not in r.stderr


def test_claims_share_work_between_runs(tmp_path):
    out = tmp_path / "x.png"
    other = os.getppid()  # a live process that is not us
    assert claim(out, other) is None and claim_holder(out) == other
    assert claim(out, os.getpid()) == other  # held by a live run: not ours to take
    release(out)
    assert claim_holder(out) is None
    dead = _dead_pid()
    claim(out, dead)
    assert claim(out, os.getpid()) is None and claim_holder(out) == os.getpid()  # a killed run's claim is taken over


def test_non_images_are_counted(tmp_path, astronaut):
    write_image(tmp_path / "raw" / "a.png", astronaut)
    (tmp_path / "raw" / "notes.txt").write_text("hello")
    (tmp_path / "raw" / "clip.mp4").write_bytes(b"\0" * 10)
    r = mgpe("align", tmp_path / "raw", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    header, row = [ln for ln in r.stdout.splitlines() if "┃" in ln or "│" in ln][:2]
    cells = dict(zip([c.strip() for c in header.split("┃")[1:-1]], [c.strip() for c in row.split("│")[1:-1]]))
    assert cells["done"] == "1" and cells["not an image"] == "2"


def test_missing_inputs_are_usage_errors_everywhere(tmp_path, astronaut):
    write_image(tmp_path / "a.png", astronaut)
    a, nope = tmp_path / "a.png", tmp_path / "nope.png"
    for args in (["edit", "-m", "hair=skin", nope], ["edit", "--mask", nope, a], ["edit", "-m", "hair=skin", a,
                 "--source-mask", nope], ["swap+", nope, a], ["swap+", a, nope], ["transfer", a, "--from", nope,
                 "-c", "hair"], ["synth", nope, "--sources", tmp_path], ["paste-back", nope, "-o", tmp_path / "x.png"],
                 ["align", nope, tmp_path / "o"], ["parse", nope, tmp_path / "o"]):
        r = mgpe(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "nope.png: no such file" in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)


def test_a_source_mask_of_the_wrong_size_is_named(tmp_path, astronaut):
    from mgpe_toolkit.io import write_mask

    write_image(tmp_path / "a.png", astronaut)
    write_mask(tmp_path / "m.png", np.zeros((100, 80), np.uint8))
    r = mgpe("edit", "-m", "hair=skin", tmp_path / "a.png", "--source-mask", tmp_path / "m.png",
             "-o", tmp_path / "o.png")
    assert r.returncode == 1 and f"{tmp_path / 'm.png'}: mask is 80×100, its image" in r.stderr.replace("\n", "")
    assert not (tmp_path / "o.png").exists()


def test_grey_in_grey_out(astronaut, grace_hopper):
    from mgpe_toolkit import Pipeline

    grey = np.repeat((astronaut.astype(np.float32) @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None], 3, axis=2)
    pipe = Pipeline()
    face = pipe.prepare(grey)
    for result in (pipe.edit(face, ["hair->skin"]), pipe.swap(pipe.prepare(grace_hopper), face)):
        for img in (result.aligned, result.pasted):
            assert int(np.abs(img.astype(int) - img[..., :1]).max()) == 0
    colour = pipe.edit(pipe.prepare(astronaut), ["hair->skin"]).aligned  # a colour photo stays in colour
    assert int(np.abs(colour.astype(int) - colour[..., :1]).max()) > 50


@pytest.mark.parametrize("sidecar", ["", '{"matrix": [1', "singular"])
def test_an_unusable_sidecar_is_said_not_silently_ignored(tmp_path, astronaut, sidecar):
    import json

    r = mgpe("align", _photo(tmp_path, astronaut), tmp_path / "al")
    assert r.returncode == 0, r.stderr
    side = tmp_path / "al" / "a.json"
    if sidecar == "singular":
        data = json.loads(side.read_text())
        data["matrix"] = [[0, 0, 0], [0, 0, 0]]
        sidecar = json.dumps(data)
    side.write_text(sidecar)
    r = mgpe("edit", "-m", "hair=skin", tmp_path / "al" / "a.png", "-o", tmp_path / "e.png")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    text = r.stderr.replace("\n", "")
    assert "a.json is not" in text and "it was ignored" in text and "not into the photo it was cut from" in text
    r = mgpe("parse", tmp_path / "al" / "a.png", tmp_path / "p", "--coords", "original")
    assert r.returncode == 0 and "it was ignored" in r.stdout.replace("\n", "")


def _photo(tmp_path, image) -> Path:
    write_image(tmp_path / "a.png", image)
    return tmp_path / "a.png"
