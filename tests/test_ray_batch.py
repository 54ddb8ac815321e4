"""`mgpe batch --engine ray` on a local Ray (2 CPUs): the local engine's outputs, summary and exit code; resume;
a worker killed mid-write; lists of paths and URIs as SRC."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the `cluster` extra (Ray) is not installed")

from mgpe_toolkit.align import plan_jobs  # noqa: E402
from mgpe_toolkit.batch.local import BatchTask, run_batch  # noqa: E402
from mgpe_toolkit.batch.ray import RayOptions, RunnerSpec, complete, run_ray_batch
from mgpe_toolkit.batch.sources import plan_list  # noqa: E402
from mgpe_toolkit.io import read_image, write_image  # noqa: E402

from run_cli import mgpe  # noqa: E402

OP = "hair->skin@forehead"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # The kill hook below is defined here; Ray's workers cannot import this test module, so it travels by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut, grace_hopper):
    """12 files: 10 faces (two people, sizes and mirrorings varied, in two folders), a photo without a face and a
    corrupt JPEG."""
    import cv2
    import skimage.data

    root = tmp_path_factory.mktemp("photos")
    for i in range(5):
        s = 224 + 32 * i
        write_image(root / f"astro{i}.png", cv2.resize(astronaut, (s, s), interpolation=cv2.INTER_AREA))
        g = cv2.resize(grace_hopper, (int(s * grace_hopper.shape[1] / grace_hopper.shape[0]), s),
                       interpolation=cv2.INTER_AREA)
        write_image(root / "people" / f"grace{i}.jpg", g[:, ::-1].copy() if i % 2 else g)
    write_image(root / "coffee.png", skimage.data.coffee())
    (root / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    return root


def _jobs(src: Path, out: Path):
    return [(p, s.with_name(s.name + ".png")) for p, s in plan_jobs(src, out)]


def _pngs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))


def _statuses(outcomes) -> dict[str, str]:
    return {Path(o.source).name: o.status for o in outcomes}


def test_cli_ray_engine_gives_the_local_outputs_summary_and_exit_code(photos, tmp_path):
    local = mgpe("batch", photos, tmp_path / "loc", "-m", OP, "--workers", "2")
    on_ray = mgpe("batch", photos, tmp_path / "ray", "-m", OP, "--engine", "ray")
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr[-2000:]
    # The same summary, word for word (output folders of one length, so the titles centre alike).
    assert on_ray.stdout.replace(str(tmp_path / "ray"), "OUT") == local.stdout.replace(str(tmp_path / "loc"), "OUT")
    assert "coffee.png: no face found" in on_ray.stdout and "broken.jpg" in on_ray.stdout
    assert "│   10 │               0 │       1 │          1 │      0 │" in on_ray.stdout
    assert "throughput: 10 photos edited in" in on_ray.stderr
    assert _pngs(tmp_path / "ray") == _pngs(tmp_path / "loc") and len(_pngs(tmp_path / "ray")) == 10
    for name in _pngs(tmp_path / "loc"):  # the classical stages: pixel for pixel
        assert (read_image(tmp_path / "ray" / name) == read_image(tmp_path / "loc" / name)).all(), name


def test_a_second_run_skips_every_finished_photo(photos, tmp_path):
    task = BatchTask(kind="edit", ops=[OP])
    first = list(run_ray_batch(task, _jobs(photos, tmp_path / "o")))
    assert sorted(_statuses(first).values()) == ["done"] * 10 + ["no-face", "unreadable"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "o").rglob("*.png")}
    again = list(run_ray_batch(task, _jobs(photos, tmp_path / "o")))
    assert sorted(_statuses(again).values()) == ["no-face", "skipped", *["skipped"] * 9, "unreadable"]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "o").rglob("*.png")} == stamps
    # A truncated output (a copy cut short by hand, not by us) is not complete: it is redone.
    cut = tmp_path / "o" / "astro1.png"
    cut.write_bytes(cut.read_bytes()[:500])
    third = list(run_ray_batch(task, _jobs(photos, tmp_path / "o")))
    assert _statuses(third)["astro1.png"] == "done" and complete(cut)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import torch

    from mgpe_toolkit.export.onnx import export_onnx
    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.nets.framework import MaskGuidedFramework
    from mgpe_toolkit.weights import save_generator

    root = tmp_path_factory.mktemp("exports")
    torch.manual_seed(1)
    save_generator(MaskGuidedFramework(PRESETS["tiny"]), root / "mgpe-gan.safetensors", step=0)
    return export_onnx(root / "mgpe-gan.safetensors", root / "onnx")


def test_onnx_backend_on_an_actor_pool_matches_the_local_engine(photos, tmp_path, exported):
    from mgpe_toolkit.export.runtime import OnnxRunner

    task = BatchTask(kind="edit", ops=["grow:eyes:1"], backend="onnx", aligned_out=True)
    local = list(run_batch(task, _jobs(photos, tmp_path / "local"), runner=OnnxRunner(exported), workers=2))
    on_ray = list(run_ray_batch(task, _jobs(photos, tmp_path / "ray"), RayOptions(batch_size=2),
                                runner=RunnerSpec("onnx", exports=str(exported))))
    assert _statuses(on_ray) == _statuses(local)
    assert _pngs(tmp_path / "ray") == _pngs(tmp_path / "local") and len(_pngs(tmp_path / "ray")) == 20
    for name in _pngs(tmp_path / "local"):
        a, b = (read_image(tmp_path / d / name).astype(np.float64) / 255 for d in ("local", "ray"))
        assert np.abs(a - b).max() <= 1e-3, name


def _die_once_mid_write(out: Path, marker: Path) -> None:
    """Fault: on astro2's output, the first time, leave half a PNG where atomic writes put theirs and die at once
    (SIGKILL: no clean-up runs), as a worker whose node goes down mid-write would."""
    if out.name != "astro2.png" or marker.exists():
        return
    marker.write_text("killed once")
    out.parent.mkdir(parents=True, exist_ok=True)  # astro2 may be the run's first output
    (out.parent / f".astro2.mgpe{os.getpid()}.k1ll3d.tmp.png").write_bytes(b"\x89PNG\r\n\x1a\n half of it")
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_write_leaves_no_partial_file_and_a_rerun_completes(photos, tmp_path):
    import functools

    out = tmp_path / "o"
    task = BatchTask(kind="edit", ops=[OP])
    hook = functools.partial(_die_once_mid_write, marker=tmp_path / "killed")
    first = list(run_ray_batch(task, _jobs(photos, out), before_write=hook))
    assert (tmp_path / "killed").exists(), "the fault never fired"
    # Ray Data retries the dead worker's task on a new worker; the run's end clears the half-written file.
    assert sorted(_statuses(first).values()) == ["done"] * 10 + ["no-face", "unreadable"]
    assert not [p.name for p in out.rglob(".*")], "a partial or temporary file was left"
    rerun = list(run_ray_batch(task, _jobs(photos, out)))
    assert sorted(_statuses(rerun).values()) == ["no-face", *["skipped"] * 10, "unreadable"]
    assert _pngs(out) == sorted(["astro0.png", "astro1.png", "astro2.png", "astro3.png", "astro4.png",
                                 *(f"people/grace{i}.png" for i in range(5))])
    for name in _pngs(out):
        assert complete(out / name) and read_image(out / name).ndim == 3, name
    assert not [p.name for p in out.rglob(".*")], "a partial or temporary file was left"


def test_lists_of_paths_and_uris_as_source(photos, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "list.txt").write_text(f"# two photos\n{photos / 'astro0.png'}\npeople/grace1.jpg\n")
    (tmp_path / "people").mkdir()
    (tmp_path / "people" / "grace1.jpg").write_bytes((photos / "people" / "grace1.jpg").read_bytes())
    jobs, not_images = plan_list(str(tmp_path / "list.txt"), str(tmp_path / "o"))
    assert not_images == 0 and [o.relative_to(tmp_path / "o").as_posix() for _, o in jobs] == [
        f"{photos.name}/astro0.png", f"{tmp_path.name}/people/grace1.png"]  # the layout below the common folder
    pq.write_table(pa.table({"id": [1, 2], "path": [f"file://{photos}/astro1.png", f"file://{photos}/notes.txt"]}),
                   tmp_path / "list.parquet")
    jobs, not_images = plan_list(str(tmp_path / "list.parquet"), str(tmp_path / "p"))
    assert not_images == 1 and [(str(p), o.name) for p, o in jobs] == [(f"file://{photos}/astro1.png", "astro1.png")]
    outcomes = list(run_ray_batch(BatchTask(kind="edit", ops=[OP]), jobs))
    assert [o.status for o in outcomes] == ["done"] and complete(tmp_path / "p" / "astro1.png")
    jobs, _ = plan_list(f"file://{photos}", str(tmp_path / "u"))  # a folder URI: listed by pyarrow
    assert len(jobs) == 12 and ("people/grace3.png" in {o.relative_to(tmp_path / "u").as_posix() for _, o in jobs})
    from mgpe_toolkit.errors import UsageError

    (tmp_path / "empty.csv").write_text("path\n")
    with pytest.raises(UsageError, match="empty.csv: lists no photos"):
        plan_list(str(tmp_path / "empty.csv"), str(tmp_path / "e"))


def test_a_listed_photo_named_like_anothers_aligned_output_keeps_its_extension(tmp_path):
    """With --aligned-out, `a.png` writes `a.aligned.png` beside it: a listed photo `a.aligned.jpg` must not."""
    for name in ("a.png", "a.aligned.jpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "list.txt").write_text("a.png\na.aligned.jpg\n")
    jobs, _ = plan_list(str(tmp_path / "list.txt"), str(tmp_path / "o"), (".aligned",))
    assert [o.name for _, o in jobs] == ["a.png", "a.aligned_jpg.png"]
    jobs, _ = plan_list(str(tmp_path / "list.txt"), str(tmp_path / "o"))
    assert [o.name for _, o in jobs] == ["a.png", "a.aligned.png"]


def test_actor_plan_shares_cpus_and_reserves_a_gpus_feeder():
    """On CPUs a learned-stage actor reserves no core by default (its one thread shares the tasks' cores: a
    reserved core idled while the actor waited for faces); with a GPU it reserves the task's share to feed it;
    what the user asks for wins."""
    from mgpe_toolkit.batch.ray import ACTOR_CPUS, actor_plan

    assert ACTOR_CPUS == 0.0
    assert actor_plan(RayOptions(), cpus=2, gpus=0) == (1, 0.0, 1)
    assert actor_plan(RayOptions(), cpus=32, gpus=0) == (8, 0.0, 1)
    assert actor_plan(RayOptions(cpus_per_actor=4), cpus=32, gpus=0) == (8, 4, 4)
    assert actor_plan(RayOptions(gpus_per_actor=0.5, cpus_per_task=2), cpus=32, gpus=2) == (4, 2, 0)
    assert actor_plan(RayOptions(gpus_per_actor=1, cpus_per_actor=0.5, actors=3), cpus=8, gpus=4) == (3, 0.5, 0)


def test_warm_worker_loads_the_aligner_and_parser_once_per_process():
    """What a worker does before its first photo: the task's pipeline cached and its models loaded, then used by
    the photo's own task."""
    import skimage.data

    from mgpe_toolkit.batch.local import prepare_one
    from mgpe_toolkit.batch import ray as ray_batch

    task = BatchTask(kind="edit", ops=[OP], parser="mesh")
    ray_batch._CACHE.clear()
    assert ray_batch.warm_worker(task) == os.getpid()
    pipe = ray_batch._pipeline(task)
    assert len(ray_batch._CACHE) == 1 and "parse" in pipe._instances and "align" in pipe._instances
    aligner = pipe.stage("align")
    from mgpe_toolkit.stages import face_graphs

    assert aligner._loaded and face_graphs.session.cache_info().currsize >= 3, "the aligner's models were not loaded"
    photo = skimage.data.astronaut()
    face, target = prepare_one(task, ray_batch._pipeline(task), None, Path("astronaut.png"), load=lambda _: photo)
    assert face.mask.labels.shape == target.shape
    assert pipe.stage("align") is aligner and len(ray_batch._CACHE) == 1


def test_ray_client_addresses_are_refused_in_one_line(photos, tmp_path):
    """Ray Data does not run through Ray Client: `--address ray://...` fails before any work with a one-line
    error that says what to do instead, and writes nothing."""
    r = mgpe("batch", str(photos), str(tmp_path / "out"), "-m", OP, "--engine", "ray",
             "--address", "ray://127.0.0.1:10001")
    assert r.returncode == 2, r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Ray Client" in error[0] and "--address auto" in error[0]
    assert "Traceback" not in r.stderr and not list(tmp_path.rglob("*.png"))
