"""`mgpe batch --engine ray`: the same folder edit spread over a Ray cluster by Ray Data, for archives that
outgrow one machine.

The stages are the local engine's own per-photo functions; Ray Data schedules them: read + align + parse as CPU tasks,
the learned stages (encode, generate, fuse) as a pool of actors that each load the export once, paste back +
atomic write as CPU tasks. With the classical stages Ray fuses the three steps into one task per photo. Every
photo ends as the same Outcome the local engine yields, so `drive` prints the same summary and exit code.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import InputError, OutputError, UsageError
from ..types import Outcome
from .local import (BatchTask, edit_classical, learned_faces, local_results, paste_learned, prepare_one,
                    split_finished, write_result)
ACTOR_MEMORY = 512 * 2**20  # bytes each learned-stage actor reserves
# The CPUs a learned-stage actor on CPUs reserves unless told: none. Its one onnxruntime thread then shares the
# cores with the tasks, as the local engine's workers share them. Reserving a core idled it while the actor waited
# for faces: on 2 cores that left one core to the CPU stages (bench_ray.py, ONNX, Ray's later runs: 19-22% slower
# than the local engine; with none, +3%). Heavy models get more actors from the pool (up to one per 4 CPUs) or a
# reservation (--cpus-per-actor).
ACTOR_CPUS = 0.0
_PNG_END = b"IEND\xaeB`\x82"  # the last chunk of every whole PNG


class RayRunLost(OutputError):
    """Ray gave up on part of the run (a node lost, a task out of retries): like a full disk, it stops the run with
    what was written kept, and a rerun goes on."""

    def __init__(self, problem: str):
        super().__init__("the Ray run", problem)
        self.args = (f"Ray lost part of the run ({problem})",)

    def __str__(self) -> str:
        return self.args[0]


@dataclass
class RayOptions:
    """Where and how the Ray engine runs. `address` None starts a local Ray (or joins one already started in this
    process); "auto" (or the head's HOST:PORT) joins the cluster this machine is part of. Not Ray Client
    (ray://): Ray Data does not run through it."""

    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_actor: float = 0.0  # > 0: learned-stage actors ask for this share of a GPU each
    # None: with GPUs, cpus_per_task; on CPUs, 0: the actor's one thread shares the tasks' cores (see ACTOR_CPUS)
    cpus_per_actor: float | None = None
    actors: int = 0  # most learned-stage actors (0: one per GPU share, or one per 4 CPUs)
    batch_size: int = 0  # faces per learned-stage call (0: 8 with GPUs, 1 on CPUs, as default_batch_size)


@dataclass
class RunnerSpec:
    """How each actor builds its learned stages; a recipe, so only paths cross the cluster, never sessions."""

    backend: str  # onnx | torch
    exports: str | None = None
    weights: str | None = None
    providers: str = "auto"

    def load(self, threads: int = 0):
        from ..export.runtime import OnnxRunner, TorchRunner

        if self.backend == "onnx":
            return OnnxRunner(self.exports or "exports", self.providers, threads=threads)
        return TorchRunner(self.weights)


# -- what to edit -----------------------------------------------------------------------------------------------
def complete(out: Path) -> bool:
    """Whether an output is present and whole (a PNG ends with its IEND chunk), so resuming can skip it."""
    try:
        with open(out, "rb") as f:
            f.seek(-len(_PNG_END), os.SEEK_END)
            return f.read() == _PNG_END
    except OSError:
        return False


# -- the stages, as Ray Data runs them on rows ------------------------------------------------------------------
# A row: photo (path or URI), out, status ("" while in progress, else an Outcome status), error, note, outputs
# (newline-separated), stop (the output a failed write names: it stops the run) and payload (the pickled
# PreparedFace + target mask, then the results). Strings and bytes only, so every block has one Arrow schema.
_CACHE: dict = {}


def _pipeline(task: BatchTask):
    """This worker process's Pipeline for the task (loading an aligner and parser once per process, not per photo)."""
    from ..pipeline import Pipeline

    key = (task.aligner, task.parser)
    if key not in _CACHE:
        _CACHE[key] = Pipeline(align=task.aligner, parse=task.parser, encode="classical", generate="classical",
                               fuse="classical")
    return _CACHE[key]


def _load(photo: str | Path):
    """read_image for a path or a URI pyarrow's filesystems read (s3://, gs://, hdfs://, file://)."""
    import tempfile

    from ..io import read_image

    if not isinstance(photo, str):
        return read_image(photo)
    from pyarrow import fs as pafs

    try:
        filesystem, where = pafs.FileSystem.from_uri(photo)
        with filesystem.open_input_file(where) as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(photo, "no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(photo, f"cannot read it ({str(exc).splitlines()[0]})") from None
    with tempfile.NamedTemporaryFile(suffix=Path(where).suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return read_image(tmp.name)
        except InputError as exc:
            raise InputError(photo, exc.problem) from None


def warm_worker(task: BatchTask) -> int:
    """Ready one worker process before photos reach it: Ray Data's modules imported, the aligner's and parser's
    models loaded. Returns the process id. A stage that cannot load is left for the photos' own tasks to report,
    file by file."""
    import numpy as np
    import ray.data  # noqa: F401  (what the run's tasks import first)

    try:
        pipe = _pipeline(task)
        pipe.stage("parse")
        pipe.align(np.zeros((64, 64, 3), np.uint8))
    except Exception:
        pass
    return os.getpid()


def _photo(row: dict):
    return row["photo"] if "://" in row["photo"] else Path(row["photo"])


def _ended(row: dict, outcome: Outcome) -> dict:
    return dict(row, status=outcome.status, error=outcome.error or "", note=outcome.note or "",
                outputs="\n".join(str(p) for p in outcome.outputs), stop="", payload=b"")


def prepare_row(row: dict, task: BatchTask, source) -> dict:
    """CPU task: read, align and parse one photo."""
    photo = _photo(row)
    prepared = prepare_one(task, _pipeline(task), source, photo, load=_load)
    if isinstance(prepared, Outcome):
        return _ended(row, prepared)
    return dict(row, status="", error="", note="", outputs="", stop="", payload=pickle.dumps(prepared, protocol=5))


def classical_row(row: dict, task: BatchTask, source) -> dict:
    """CPU task: the classical edit of one prepared face (its aligned result and paste-back)."""
    if row["status"]:
        return row
    face, target = pickle.loads(row["payload"])
    result = edit_classical(task, _pipeline(task), source, _photo(row), face, target)
    if isinstance(result, Outcome):
        return _ended(row, result)
    note = "; ".join(result.notes)
    return dict(row, note=note, payload=pickle.dumps((result.pasted, result.aligned), protocol=5))


class LearnedStages:
    """Actor: the learned stages of one export, loaded once; CUDA where the actor got a GPU, else CPU."""

    def __init__(self, spec: RunnerSpec, task: BatchTask, source, threads: int):
        self.runner = spec.load(threads)
        self.task, self.source = task, source

    def __call__(self, batch: dict) -> dict:
        """A batch of rows (columns of equal length) -> the same rows, faces now rendered."""
        import numpy as np

        rows = [{k: batch[k][i] for k in batch} for i in range(len(batch["photo"]))]
        live = [r for r in rows if not r["status"]]
        if live:
            prepared = [pickle.loads(r["payload"]) for r in live]
            faces, masks = [f for f, _ in prepared], [m for _, m in prepared]
            images = local_results(self.task, faces, masks, learned_faces(self.runner, self.task, faces, masks,
                                                                          self.source))
            for r, (face, mask), (aligned, weight) in zip(live, prepared, images):
                r["payload"] = pickle.dumps((face, mask, aligned, weight), protocol=5)
        return {k: np.array([r[k] for r in rows], dtype=object) for k in batch}


def learned_paste_row(row: dict) -> dict:
    """CPU task: paste one learned result back into its photo."""
    if row["status"]:
        return row
    face, mask, aligned, weight = pickle.loads(row["payload"])
    return dict(row, payload=pickle.dumps((paste_learned(face, mask, aligned, weight), aligned), protocol=5))


def write_row(row: dict, aligned_out: bool, before_write: Callable[[Path], None] | None = None) -> dict:
    """CPU task: write one result atomically; an OutputError (a full disk) ends the row as failed here and stops
    the run in the driver, as it stops the local engine."""
    if row["status"]:
        return row
    pasted, aligned = pickle.loads(row["payload"])
    out = Path(row["out"])
    if before_write is not None:
        before_write(out)
    try:
        outcome = write_result(_photo(row), out, pasted, aligned, aligned_out)
    except OutputError as exc:
        return dict(_ended(row, Outcome(_photo(row), "failed", error=exc.problem)), stop=exc.path)
    outcome.note = row["note"] or None
    return _ended(row, outcome)


def _outcome(row: dict) -> Outcome:
    if row["stop"]:  # the write failed (disk full, read-only): stop the run like the local engine does
        raise OutputError(row["stop"], row["error"])
    outputs = [Path(p) for p in row["outputs"].split("\n") if p]
    return Outcome(_photo(row), row["status"], outputs, error=row["error"] or None, note=row["note"] or None)


# -- the run ----------------------------------------------------------------------------------------------------
def connect(address: str | None) -> bool:
    """Join the Ray at `address` (None: start one on this machine) unless this process already has one; a
    one-line UsageError when it cannot. True when this call connected (the caller then calls ray.shutdown)."""
    import ray

    if address and address.startswith("ray://"):
        # Ray Data's executor needs a driver on a node of the cluster (ray-project/ray#48682).
        raise UsageError(f"--address {address}: Ray Data does not run through Ray Client; run mgpe batch on a node "
                         f"of the cluster with --address auto, or submit it there as a Ray job (ray job submit)")
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"--address {address or '(local)'}: cannot reach a Ray cluster "
                         f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})") from None
    return True


def _clear_partials(outs: list[Path]) -> int:
    """Remove what workers killed mid-write left beside this run's outputs: the temporary files of atomic writes
    (`.NAME.mgpePID.<random>.tmp.png`). The run is over, so none of them is still being written by it. Returns
    how many."""
    removed = 0
    for folder in {o.parent for o in outs}:
        if not folder.is_dir():
            continue
        stems = {o.stem for o in outs if o.parent == folder}
        stems |= {s + ".aligned" for s in stems}
        for p in folder.iterdir():
            m = re.match(r"^\.(.+)\.mgpe\d+\.[a-z0-9_]+\.tmp\.png$", p.name)
            if m and m.group(1) in stems:
                p.unlink(missing_ok=True)
                removed += 1
    return removed


def run_ray_batch(task: BatchTask, jobs: list[tuple[str | Path, Path]], options: RayOptions | None = None, *,
                  runner: RunnerSpec | None = None, overwrite: bool = False,
                  before_write: Callable[[Path], None] | None = None,
                  note: Callable[[str], None] | None = None) -> Iterator[Outcome]:
    """Yield one Outcome per job, as Ray finishes them: first the complete outputs skipped before any work is
    scheduled, then the rest. `runner` is needed for the onnx and torch backends; `before_write` is called in the
    worker with each output path just before it is written (fault injection in tests); `note` receives what the
    user should know that is not an Outcome (partial files of killed workers removed)."""
    import ray

    opts = options or RayOptions()
    skipped, todo = split_finished(task, jobs, runner, overwrite, finished=complete)
    yield from skipped
    if not todo:
        return
    started = connect(opts.address)
    try:
        yield from _stream(task, todo, opts, runner, before_write)
    finally:
        removed = _clear_partials([out for _, out in todo])
        if removed and note is not None:
            note(f"note: removed {removed} partial file{'s' if removed > 1 else ''} of workers killed mid-write")
        if started:
            ray.shutdown()


def actor_plan(opts: RayOptions, cpus: float, gpus: float) -> tuple[int, float, int]:
    """(most learned-stage actors, CPUs each reserves, onnxruntime threads each: 0 = its own choice, on a GPU) for
    a cluster of `cpus` CPUs and `gpus` GPUs."""
    on_gpu = opts.gpus_per_actor > 0
    most = opts.actors or (max(1, int(gpus / opts.gpus_per_actor)) if on_gpu else max(1, int(cpus // 4)))
    reserve = opts.cpus_per_actor if opts.cpus_per_actor is not None else (opts.cpus_per_task if on_gpu else ACTOR_CPUS)
    return most, reserve, 0 if on_gpu else max(1, round(reserve))


def _stream(task, todo, opts: RayOptions, runner: RunnerSpec | None, before_write) -> Iterator[Outcome]:
    import ray

    # Workers start and load their models while this process imports Ray Data and plans the run (measured: the
    # first task began 3 s after the start without this). Fire and forget: the tasks end by themselves.
    slots = int(ray.cluster_resources().get("CPU", 1) // opts.cpus_per_task)
    for _ in range(max(1, min(len(todo), slots))):
        ray.remote(warm_worker).options(num_cpus=opts.cpus_per_task).remote(task)

    import ray.data
    from ray.exceptions import RayError

    from ..io import read_image
    from ..pipeline import Pipeline

    source = None
    if task.source is not None:  # prepared once here and shipped, so workers need no copy of the face
        source = Pipeline(align=task.aligner, parse=task.parser).prepare(read_image(task.source), size=task.size)
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1), resources.get("GPU", 0)
    rows = [{"photo": str(p), "out": str(o)} for p, o in todo]
    # One photo per block while the run is small, so every core gets work; bounded for archives of millions.
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), max(64, int(8 * cpus))))
    cpu = {"num_cpus": opts.cpus_per_task}
    ds = ds.map(prepare_row, fn_kwargs={"task": task, "source": source}, **cpu)
    if task.backend == "classical":
        ds = ds.map(classical_row, fn_kwargs={"task": task, "source": source}, **cpu)
    else:
        on_gpu = opts.gpus_per_actor > 0
        if on_gpu and not gpus:
            raise UsageError(f"--gpus-per-actor {opts.gpus_per_actor}: the Ray cluster has no GPUs")
        most, actor_cpus, threads = actor_plan(opts, cpus, gpus)
        batch = opts.batch_size or (8 if on_gpu else 1)
        ds = ds.map_batches(LearnedStages, fn_constructor_kwargs={"spec": runner, "task": task, "source": source,
                                                                  "threads": threads},
                            batch_size=batch, batch_format="numpy", zero_copy_batch=False,
                            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=most),
                            num_gpus=opts.gpus_per_actor or None,
                            num_cpus=actor_cpus,
                            # What an actor holds (sessions and a batch), declared; resources unlike the tasks' also
                            # keep Ray Data from fusing read + align + parse into the few actors, which would then
                            # do the CPU stages one photo at a time while the other cores idle.
                            memory=ACTOR_MEMORY)
        ds = ds.map(learned_paste_row, **cpu)
    ds = ds.map(write_row, fn_kwargs={"aligned_out": task.aligned_out, "before_write": before_write}, **cpu)
    # Ray Data's per-operator reservations left one task running at a time on 2 CPUs (measured: a map of 16
    # half-second rows took 8.4 s with them, 4.2 s without); the streaming executor's backpressure still bounds
    # what waits between stages. Set on this dataset's own context, not the process's.
    ds.context.op_resource_reservation_enabled = False
    try:
        for row in ds.iter_rows():
            yield _outcome(row)
    except RayError as exc:  # a node lost for good, a task out of retries: what was written stays, rerun goes on
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayRunLost(f"{type(exc).__name__}: {first}") from None
