"""Editing whole folders: align -> parse -> mask ops / swap / transfer -> generate + fuse -> paste back.

Photos are read, aligned and parsed in worker processes while the main process runs the learned stages on
whole batches (onnxruntime or torch), so the CPU stages keep the accelerator fed. With the classical stages
the workers do everything. Finished outputs are skipped (resume); each failed photo is reported with its
reason and the others go on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import InputError, MgpeError, NoFaceError, UsageError
from ..io import claim, claim_holder, release
from ..types import Outcome, PreparedFace

BACKENDS = ("classical", "onnx", "torch")


@dataclass
class BatchTask:
    """What to do to every photo of a folder."""

    kind: str  # edit | swap | transfer
    ops: list[str] = field(default_factory=list)
    source: str | None = None  # the face used by swap/transfer
    components: list[str] = field(default_factory=list)
    shape: str = "target"
    backend: str = "classical"
    parser: str | None = None
    aligner: str | None = None
    size: int = 256
    aligned_out: bool = False

    def validate(self) -> None:
        from ..maskops import parse_ops

        if self.kind not in ("edit", "swap", "transfer"):
            raise UsageError(f"unknown batch kind {self.kind!r}")
        if self.backend not in BACKENDS:
            raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.kind == "edit":
            parse_ops(self.ops)  # malformed ops fail before any work
        elif self.source is None:
            raise UsageError(f"{self.kind} needs a source face")


# -- per-process state ----------------------------------------------------------------------------------------
_STATE: dict = {}


def _init(task: BatchTask, owner: int, overwrite: bool = False) -> None:
    """Set up a process for jobs of the run whose main process is `owner`."""
    import os

    from ..io import read_image
    from ..pipeline import Pipeline

    if os.getpid() != owner:  # a worker: Ctrl-C is the main process's to handle, and a dead main ends it
        import signal
        import threading

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=_exit_with, args=(owner,), daemon=True).start()
    pipe = Pipeline(align=task.aligner, parse=task.parser, encode="classical", generate="classical", fuse="classical")
    _STATE.update(task=task, pipe=pipe, source=None, owner=owner, overwrite=overwrite)
    if task.source is not None:
        _STATE["source"] = pipe.prepare(read_image(task.source), size=task.size)


def _exit_with(owner: int) -> None:
    """Worker: exit as soon as the main process is gone (killed with -9, it cannot shut its workers down)."""
    import os
    import time

    while os.getppid() == owner:
        time.sleep(0.5)
    os._exit(1)


def _target_mask(task: BatchTask, face: PreparedFace, source: PreparedFace | None) -> np.ndarray:
    from ..maskops import apply_ops, parse_ops
    from ..pipeline import shapes_from

    if task.kind == "edit":
        return apply_ops(face.mask.labels, parse_ops(task.ops))
    if task.kind == "swap" and task.shape == "source":
        return shapes_from(source.mask.labels, face.mask.labels)
    return face.mask.labels


def prepare_one(task: BatchTask, pipe, source: PreparedFace | None, photo, load=None):
    """Read, align and parse one photo: (PreparedFace, target mask), or the Outcome saying why it cannot be edited.
    `load` reads the photo (default read_image; the Ray engine passes one for object-store URIs)."""
    from ..io import read_image

    try:
        face = pipe.prepare((load or read_image)(photo), size=task.size)
        return face, _target_mask(task, face, source)
    except InputError as exc:
        return Outcome(photo, "unreadable", error=exc.problem)
    except NoFaceError:
        return Outcome(photo, "no-face", error="no face found")
    except MgpeError as exc:
        return Outcome(photo, "failed", error=str(exc))
    except Exception as exc:  # one bad photo must not end a run over thousands
        return Outcome(photo, "failed", error=f"{type(exc).__name__}: {exc}")


def edit_classical(task: BatchTask, pipe, source: PreparedFace | None, photo, face: PreparedFace, target: np.ndarray):
    """The classical edit of one prepared face: its EditResult, or the Outcome of its failure."""
    try:
        if task.kind == "edit":
            return pipe.edit(face, target=target)
        if task.kind == "swap":
            return pipe.swap(source, face, shape=task.shape)
        return pipe.transfer(source, face, task.components)
    except MgpeError as exc:
        return Outcome(photo, "failed", error=str(exc))
    except Exception as exc:
        return Outcome(photo, "failed", error=f"{type(exc).__name__}: {exc}")


def _prepare(job: tuple[Path, Path]):
    """Worker: read, align, parse one photo. Returns (photo, out, PreparedFace, target mask) or an Outcome."""
    photo, out = job
    holder = claim(out, _STATE["owner"])
    if holder is not None:
        return Outcome(photo, "skipped", [out], note=f"another run (process {holder}) is working on it")
    if not _STATE["overwrite"] and Path(out).exists():  # another run finished it after this one planned
        release(out)
        return Outcome(photo, "skipped", [out], note="another run finished it")
    prepared = prepare_one(_STATE["task"], _STATE["pipe"], _STATE["source"], photo)
    if isinstance(prepared, Outcome):
        release(out)
        return prepared
    return (photo, out, *prepared)


def _classical(job: tuple[Path, Path]) -> Outcome:
    """Worker: the whole job with the classical stages, written atomically."""
    prepared = _prepare(job)
    if isinstance(prepared, Outcome):
        return prepared
    photo, out, face, target = prepared
    task = _STATE["task"]
    result = edit_classical(task, _STATE["pipe"], _STATE["source"], photo, face, target)
    if isinstance(result, Outcome):
        release(out)
        return result
    outcome = write_result(photo, out, result.pasted, result.aligned, task.aligned_out)
    outcome.note = "; ".join(result.notes) or None
    return outcome


def write_result(photo: Path, out: Path, pasted, aligned, aligned_out: bool) -> Outcome:
    """Write one result atomically (an OutputError, e.g. a full disk, stops the run) and release its claim."""
    from ..io import write_image

    outputs = []
    try:
        if aligned_out:  # first, so a present main output always means a finished photo
            outputs.append(write_image(out.with_name(out.stem + ".aligned.png"), aligned))
        outputs.insert(0, write_image(out, pasted if pasted is not None else aligned))
    finally:
        release(out)
    return Outcome(photo, "done", outputs)


# -- the learned stages on whole batches ------------------------------------------------------------------------
def learned_faces(runner, task: BatchTask, faces: list[PreparedFace], masks: list[np.ndarray],
                  source: PreparedFace | None) -> list[np.ndarray]:
    """The learned stages (encode, generate, fuse) on a batch: one aligned result (S, S, 3) uint8 per face."""
    import cv2

    from ..labels import COMPONENTS, has_component
    from ..nets.inputs import edit_inputs
    from ..pipeline import keep_grey

    size = runner.resolution
    crops, onehot, centres, removed, targets = edit_inputs([f.image for f in faces], [f.mask.labels for f in faces],
                                                           masks, size, **runner.spec)
    feats = runner.encode(crops)
    if task.kind in ("swap", "transfer"):
        src_crops = edit_inputs([source.image], [source.mask.labels], [source.mask.labels], size, **runner.spec)[0]
        src_feats = runner.encode(src_crops)
        names = list(COMPONENTS) if task.kind == "swap" else task.components
        # What the source lacks (a bald head) stays each target's own, as in Pipeline.swap.
        names = [n for n in names if has_component(source.mask.labels, n)]
        for n in names:
            feats[n] = np.repeat(src_feats[n], len(faces), axis=0)
    images = runner.render(feats, onehot, centres, targets, removed)
    results = []
    for face, arr in zip(faces, images):
        aligned = keep_grey(((np.clip(arr.transpose(1, 2, 0), -1, 1) + 1) * 127.5 + 0.5).astype(np.uint8),
                            face.image)
        s = face.image.shape[0]
        if s != size:
            aligned = cv2.resize(aligned, (s, s), interpolation=cv2.INTER_CUBIC)
        results.append(aligned)
    return results


def edit_weight(task: BatchTask, face: PreparedFace, mask: np.ndarray) -> np.ndarray | None:
    """Where a learned result may change the face, as Pipeline.edit and transfer decide it (pipeline.local_weight):
    the changed labels of an edit, the transferred components; None for a swap (face and hair of both masks)."""
    from ..pipeline import components_region, edit_weight, local_weight

    if task.kind == "edit":
        return edit_weight(face.mask.labels, mask)
    if task.kind == "transfer":
        return local_weight(components_region(face.mask.labels, task.components))
    return None


def paste_learned(face: PreparedFace, mask: np.ndarray, aligned: np.ndarray,
                  weight: np.ndarray | None = None) -> np.ndarray | None:
    """A learned result pasted back into its photo (None: no photo): with `weight` (edit_weight) only there, else
    over the face and hair of both masks."""
    from ..align import paste_back, paste_weighted
    from ..labels import face_hair_region

    if face.photo is None:
        return None
    if weight is not None:
        return paste_weighted(face.photo, aligned, face.alignment, weight)
    region = face_hair_region(mask) | face_hair_region(face.mask.labels)
    return paste_back(face.photo, aligned, face.alignment, region)


def local_results(task: BatchTask, faces: list[PreparedFace], masks: list[np.ndarray],
                  images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(aligned result, its edit_weight) per face: outside the weight, the face's own pixels."""
    from ..pipeline import composite

    out = []
    for face, mask, aligned in zip(faces, masks, images):
        weight = edit_weight(task, face, mask)
        out.append((aligned if weight is None else composite(face.image, aligned, weight), weight))
    return out


def run_learned_batch(runner, task: BatchTask, items: list, source: PreparedFace | None) -> list[Outcome]:
    faces = [it[2] for it in items]
    masks = [it[3] for it in items]
    images = local_results(task, faces, masks, learned_faces(runner, task, faces, masks, source))
    return [write_result(photo, out, paste_learned(face, mask, aligned, weight), aligned, task.aligned_out)
            for (photo, out, face, mask), (aligned, weight) in zip(items, images)]


def default_batch_size(runner) -> int:
    """Images per learned-stage call: 8 on a GPU; 1 on a CPU, where bigger batches measured slower per image
    (`mgpe batch`, `paper` graphs, 2 cores: fp32 3.1 photos/s at batch 1, 2.0 at 8; int8 3.8 and 2.8)."""
    return 8 if runner is not None and runner.on_gpu else 1


def split_finished(task: BatchTask, jobs: list, runner, overwrite: bool,
                   finished: Callable[[Path], bool] = Path.exists) -> tuple[list[Outcome], list]:
    """(Outcomes of the jobs whose outputs are `finished`, the jobs left to do), after checking the task and
    that learned backends have a runner, before any work: how every engine starts a run."""
    task.validate()
    skipped, todo = [], []
    for photo, out in jobs:
        if not overwrite and finished(Path(out)):
            skipped.append(Outcome(photo, "skipped", [out]))
        else:
            todo.append((photo, out))
    if todo and task.backend != "classical" and runner is None:
        raise UsageError(f"--backend {task.backend} needs learned weights or an export")
    return skipped, todo


def run_batch(task: BatchTask, jobs: list[tuple[Path, Path]], *, runner=None, workers: int = 1,
              batch_size: int | None = None, overwrite: bool = False) -> Iterator[Outcome]:
    """Yield one Outcome per job, in order of completion of each batch. `batch_size` None: default_batch_size."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    skipped, todo = split_finished(task, jobs, runner, overwrite)
    yield from skipped
    if not todo:
        return
    fn = _classical if task.backend == "classical" else _prepare
    batch_size = batch_size or default_batch_size(runner)
    owner = os.getpid()
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init,
                                   initargs=(task, owner, overwrite))
        results = pool.map(fn, todo, chunksize=1)
    else:
        pool = None
        _init(task, owner, overwrite)
        results = map(fn, todo)
    try:
        if task.backend == "classical":
            yield from results
            return
        source = _STATE.get("source") if workers <= 1 else None
        if task.source is not None and source is None:
            from ..io import read_image
            from ..pipeline import Pipeline

            source = Pipeline(align=task.aligner, parse=task.parser).prepare(read_image(task.source), size=task.size)
        pending: list = []
        for item in results:
            if isinstance(item, Outcome):
                yield item
                continue
            pending.append(item)
            if len(pending) == batch_size:
                yield from run_learned_batch(runner, task, pending, source)
                pending = []
        if pending:
            yield from run_learned_batch(runner, task, pending, source)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        for _, out in todo:  # claims of photos this run did not finish (stopped, or a failed batch)
            if claim_holder(out) == owner:
                release(out)
