"""What the studio does, without the web: keep uploaded faces and results, run the Pipeline on them one at a time."""
from __future__ import annotations

import re
import shlex
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, MaskOpError, MgpeError, NoFaceError
from ..labels import COMPONENT_CHOICES, NUM_CLASSES, UnknownComponent, component_names
from ..types import EditResult, PreparedFace

# Uploads above this many bytes are refused before they are read whole (a 12 MP JPEG is about 5 MB).
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# The studio keeps only the latest faces and results in memory (each holds its photo: 36 MB at 12 MP);
# older ones are dropped and the page says to upload or generate again.
KEEP_FACES = 8  # per browser tab
KEEP_RESULTS = 8
KEEP_ALL = 32  # faces and results of all tabs together (a photo may be tens of MB)


class StudioError(MgpeError):
    """A request the studio refuses: `status` is the HTTP status the page gets, with the one-line message."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


@dataclass
class StudioFace:
    """An uploaded photo, aligned and parsed."""

    id: str
    name: str  # the uploaded file's name, as the CLI recipe refers to it
    face: PreparedFace
    seconds: float  # align + parse
    stages: dict[str, str] = field(default_factory=dict)  # align and parse implementations that ran
    owner: str = ""  # the browser tab that uploaded it: each tab keeps its own last KEEP_FACES
    given: str = ""  # the file's own name, as the user's folder has it: what the recipe's commands name

    @property
    def quoted(self) -> str:
        return shlex.quote(self.given or self.name)

    @property
    def parsed(self) -> np.ndarray:
        return self.face.mask.labels


@dataclass
class StudioResult:
    """One Generate, swap+ or transfer: the result, the mask it was made on, and the CLI lines that redo it."""

    id: str
    kind: str  # edit, swap or transfer
    stem: str  # download names start with it
    result: EditResult
    before: StudioFace  # the face whose photo the result is pasted into
    seconds: float
    recipe: str
    notes: list[str] = field(default_factory=list)

    @property
    def image(self) -> np.ndarray:
        """The result in the photo (pasted back), or the aligned result when there is no photo."""
        return self.result.pasted if self.result.pasted is not None else self.result.aligned


def pipeline_for(parser: str | None = None, weights: str | None = None):
    """The Pipeline `mgpe edit --parser P --weights W` uses: the classical stages, the learned ones with weights."""
    from ..pipeline import Pipeline

    return Pipeline.learned(weights, parse=parser)


def safe_name(name: str | None) -> str:
    """The uploaded file's base name, reduced to characters that are safe in a file name and a shell line."""
    base = Path((name or "").replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", base).lstrip(".")[:100]
    return base or "photo.png"


class Studio:
    """Faces and results keyed by id; every pipeline call holds one lock (stages are not thread-safe), the
    stores another, so concurrent requests are safe."""

    def __init__(self, pipeline=None, *, parser: str | None = None, weights: str | None = None,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES):
        self.pipeline = pipeline if pipeline is not None else pipeline_for(parser, weights)
        self.cli_flags = ([f"--parser {shlex.quote(parser)}"] if parser else []) + \
                         ([f"--weights {shlex.quote(str(weights))}"] if weights else [])
        self.max_upload_bytes = max_upload_bytes
        self.faces: OrderedDict[str, StudioFace] = OrderedDict()
        self.results: OrderedDict[str, StudioResult] = OrderedDict()
        self._work = threading.Lock()
        self._store = threading.Lock()

    # -- the stores --------------------------------------------------------------------------------------
    def _keep(self, store: OrderedDict, key: str, value, limit: int, owner: str, held: tuple[str, ...] = ()) -> None:
        """Keep `value`; drop the oldest of `owner`'s beyond `limit` (another tab's never, nor those the tab still
        `held` on screen: its photo and second photo), then the oldest of all beyond KEEP_ALL."""
        with self._store:
            store[key] = value
            mine = [k for k, v in store.items() if _owner(v) == owner]
            for old in [k for k in mine if k not in held][:max(0, len(mine) - limit)]:
                del store[old]
            while len(store) > KEEP_ALL:
                store.popitem(last=False)

    def face(self, face_id: str) -> StudioFace:
        with self._store:
            found = self.faces.get(face_id)
        if found is None:
            raise StudioError(f"unknown photo {face_id!r} (the studio keeps the last {KEEP_FACES} of each tab): "
                              "upload it again", 404)
        return found

    def result(self, result_id: str) -> StudioResult:
        with self._store:
            found = self.results.get(result_id)
        if found is None:
            raise StudioError(f"unknown result {result_id!r} (the studio keeps the last {KEEP_RESULTS}): "
                              "generate it again", 404)
        return found

    # -- the work ----------------------------------------------------------------------------------------
    def upload(self, name: str | None, data: bytes, owner: str = "", held: tuple[str, ...] = ()) -> StudioFace:
        """Read an uploaded photo with the project's image reader, align its largest face and parse it. `owner`:
        the browser tab it came from; a tab's uploads never push another tab's faces out."""
        from ..io import read_image

        given = Path((name or "").replace("\\", "/")).name
        name = safe_name(name)
        if len(data) > self.max_upload_bytes:
            raise StudioError(f"{name}: {len(data) / 2**20:.1f} MB is over the studio's limit of "
                              f"{self.max_upload_bytes / 2**20:.0f} MB", 413)
        if not data:
            raise StudioError(f"{name}: empty file")
        started = time.perf_counter()
        with self._work, tempfile.TemporaryDirectory(prefix="mgpe-studio-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                image = read_image(path)
                face = self.pipeline.prepare(image)
            except InputError as exc:
                raise StudioError(f"{name}: {exc.problem}", 422) from None
            except NoFaceError:
                raise StudioError(f"{name}: no face found", 422) from None
            except MgpeError as exc:
                raise StudioError(f"{name}: {exc}", 422) from None
            stages = {s: self.pipeline.implementation_name(s) for s in ("align", "parse")}
        studio_face = StudioFace(uuid.uuid4().hex[:12], name, face, time.perf_counter() - started, stages, owner,
                                 given)
        self._keep(self.faces, studio_face.id, studio_face, KEEP_FACES, owner, held)
        return studio_face

    def check_labels(self, face: StudioFace, labels: np.ndarray) -> np.ndarray:
        size = face.parsed.shape
        labels = np.asarray(labels, np.uint8)
        if labels.shape != size:
            raise StudioError(f"the mask is {labels.shape[-1]}×{labels.shape[0]}, the face {size[1]}×{size[0]}")
        if labels.size and int(labels.max()) >= NUM_CLASSES:
            raise StudioError(f"the mask holds value {int(labels.max())}; labels stop at {NUM_CLASSES - 1}")
        return labels

    def apply_ops(self, face_id: str, labels: np.ndarray, ops: list[str]) -> np.ndarray:
        """The mask-op grammar applied to the shown mask, as `mgpe edit --mask-op` applies it to the parsed one."""
        from ..maskops import apply_ops

        face = self.face(face_id)
        labels = self.check_labels(face, labels)
        parsed = parse_studio_ops(ops)
        with self._work:
            return apply_ops(labels, parsed) if parsed else labels.copy()

    def edit(self, face_id: str, labels: np.ndarray, ops: list[str] = ()) -> StudioResult:
        """Generate on the painted mask. `ops` are those typed since the parsed mask: when they alone make the
        mask, the recipe is `mgpe edit -m ...`; otherwise it points at the downloaded mask."""
        from ..maskops import apply_ops

        face = self.face(face_id)
        labels = self.check_labels(face, labels)
        ops = [str(op).strip() for op in ops if str(op).strip()]
        parse_studio_ops(ops)
        started = time.perf_counter()
        with self._work:
            result = self._run(lambda: self.pipeline.edit(face.face, target=labels), face.name)
            from_ops = bool(ops) and np.array_equal(apply_ops(face.parsed, ops), labels)
        stem = f"{Path(face.name).stem}.studio"
        cli = ["mgpe edit", face.quoted]
        if from_ops:
            cli += [f"-m {shlex.quote(op)}" for op in ops]
            lines = ["# the parsed mask with the ops typed in the studio:"]
        else:
            cli += [f"--mask {shlex.quote(stem + '.mask.png')}"]
            made = ("the parsed mask, unchanged" if np.array_equal(labels, face.parsed) else
                    "painted in the studio" + (f" (ops typed there: {' '.join(ops)})" if ops else ""))
            lines = [f"# the mask is {made}: {stem}.mask.png holds it"]
        cli += self.cli_flags + [f"-o {shlex.quote(stem + '.png')}"]
        return self._store_result("edit", stem, result, face, started, lines + [" ".join(cli)])

    def swap(self, target_id: str, source_id: str) -> StudioResult:
        """swap+: the source's face and hair onto the target's photo (both as parsed, like `mgpe swap+`)."""
        target, source = self.face(target_id), self.face(source_id)
        started = time.perf_counter()
        with self._work:
            result = self._run(lambda: self.pipeline.swap(source.face, target.face), f"{source.name} -> {target.name}")
        stem = f"{Path(target.name).stem}.swap"
        cli = ["mgpe swap+", source.quoted, target.quoted, *self.cli_flags,
               f"-o {shlex.quote(stem + '.png')}"]
        return self._store_result("swap", stem, result, target, started,
                                  ["# swap+ uses both photos' parsed masks (painting is for Generate)", " ".join(cli)])

    def transfer(self, target_id: str, source_id: str, components: list[str]) -> StudioResult:
        """The target with the named components' appearance taken from the source (both as parsed)."""
        try:
            names = component_names(components)
        except UnknownComponent as exc:
            raise StudioError(f"{exc.part!r} is not a component ({COMPONENT_CHOICES})") from None
        if not names:
            raise StudioError("pick at least one component to transfer")
        target, source = self.face(target_id), self.face(source_id)
        started = time.perf_counter()
        with self._work:
            result = self._run(lambda: self.pipeline.transfer(source.face, target.face, names),
                               f"{source.name} -> {target.name}")
        stem = f"{Path(target.name).stem}.transfer"
        cli = ["mgpe transfer", target.quoted, "--from", source.quoted, "-c", ",".join(names),
               *self.cli_flags, f"-o {shlex.quote(stem + '.png')}"]
        return self._store_result("transfer", stem, result, target, started,
                                  ["# transfer uses both photos' parsed masks (painting is for Generate)",
                                   " ".join(cli)])

    @staticmethod
    def _run(fn, what: str) -> EditResult:
        try:
            return fn()
        except MgpeError as exc:
            raise StudioError(f"{what}: {exc}", 422) from None

    def _store_result(self, kind: str, stem: str, result: EditResult, before: StudioFace, started: float,
                      lines: list[str]) -> StudioResult:
        seconds = time.perf_counter() - started
        recipe = "\n".join([f"# mgpe studio: {kind} of {before.name} ({seconds:.2f} s; "
                            + ", ".join(f"{k} {v}" for k, v in result.stages.items()) + ")", *lines]) + "\n"
        out = StudioResult(uuid.uuid4().hex[:12], kind, stem, result, before, seconds, recipe, list(result.notes))
        self._keep(self.results, out.id, out, KEEP_RESULTS, before.owner)
        return out


def _owner(item) -> str:
    return item.owner if isinstance(item, StudioFace) else item.before.owner


def parse_studio_ops(ops: list[str]):
    """The CLI's grammar, less `from:` (it would read a file on the server; paint the shape instead)."""
    from ..maskops import parse_ops

    texts = [str(op).strip() for op in ops if str(op).strip()]
    for op in texts:
        if op.partition(":")[0] == "from":
            raise MaskOpError(op, "from: reads a mask file on the server, which the studio does not do: paint "
                                  "the shape, or use it with mgpe edit")
    return parse_ops(texts)
