"""Image, mask and sidecar I/O: tolerant readers with one-line errors, atomic writers."""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError, OutputError, UsageError
from .labels import NUM_CLASSES, colorize, decolorize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".gif")
# Decompression-bomb guard: refuse images above this many pixels (a 4000×3000 photo is 12 MP).
def _max_pixels_from_env() -> tuple[int, str | None]:
    """($MGPE_MAX_PIXELS or the default, the raw value when it is not a positive whole number). A bad value is
    reported when an image is read, as a one-line error, not at import."""
    raw = os.environ.get("MGPE_MAX_PIXELS", "").strip()
    if not raw:
        return 120_000_000, None
    if raw.isdigit() and int(raw) > 0:
        return int(raw), None
    return 120_000_000, raw


MAX_PIXELS, BAD_MAX_PIXELS = _max_pixels_from_env()


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under folder, sorted, skipping our own mask and preview outputs."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def non_images(folder: str | os.PathLike) -> list[Path]:
    """Files under a folder that folder commands pass over: not an image format we read (hidden files and the
    .json sidecars of images are not counted)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for p in folder.rglob("*"):
        if p.name.startswith(".") or p.is_dir():
            continue
        if not p.is_file():  # a pipe, socket or device: never read, but counted
            out.append(p)
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            continue
        if p.suffix.lower() == ".json" and any(p.with_suffix(s).exists() for s in (".png", ".jpg", ".jpeg")):
            continue
        out.append(p)
    return sorted(out)


@contextlib.contextmanager
def _pillow_guard(path: Path) -> Iterator[None]:
    from PIL import Image

    if BAD_MAX_PIXELS is not None:
        raise UsageError(f"MGPE_MAX_PIXELS={BAD_MAX_PIXELS!r}: expected a positive whole number of pixels")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(path, f"refused as a decompression bomb ({exc.args[0].split('(')[0].strip()}); "
                               f"raise MGPE_MAX_PIXELS if it is genuine") from None
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).split("\n")[0] or type(exc).__name__
        if "cannot identify image file" in reason:
            reason = "not a readable image (unknown format or corrupt)"
        elif "truncated" in reason.lower():
            reason = "truncated image file"
        raise InputError(path, reason) from None
    finally:
        Image.MAX_IMAGE_PIXELS = old


NOT_REGULAR = "not a regular file (a pipe, socket or device): give an image file"


def _open(path: Path):
    from PIL import Image, ImageOps

    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a folder, not an image")
    if not path.is_file():  # reading a FIFO, socket or device would block or never end
        raise InputError(path, NOT_REGULAR)
    img = Image.open(path)
    img.load()  # decode now so truncation surfaces here
    return ImageOps.exif_transpose(img)


def _to_rgb8(img) -> np.ndarray:
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.uint32)
        top = 65535 if mode.startswith("I;16") or arr.max() > 255 else 255
        grey = (arr * 255 + top // 2) // top
        return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        top = 1.0 if arr.max() <= 1.0 else 255.0
        grey = np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Transparent pixels become white: portraits cut out of their background read as on paper.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Any supported image -> (H, W, 3) uint8 RGB, EXIF orientation applied.

    RGBA, grey, palette and 16-bit inputs become 8-bit RGB. Raises InputError naming the file.
    """
    path = Path(path)
    with _pillow_guard(path):
        rgb = _to_rgb8(_open(path))
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(path, f"unexpected image shape {rgb.shape}")
    rgb = np.ascontiguousarray(rgb)
    return rgb if rgb.flags.writeable else rgb.copy()


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A canonical label mask -> (H, W) uint8.

    Accepts single-channel 8-bit PNGs of label indices (grey or palette) and colour previews whose every
    pixel is a label colour (a mask painted in an image editor with our palette).
    """
    path = Path(path)
    with _pillow_guard(path):
        img = _open(path)
        if img.mode in ("L", "P"):
            labels = np.asarray(img).copy()
        elif img.mode in ("RGB", "RGBA"):
            rgb = np.asarray(img.convert("RGB"))
            if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() and rgb.max() < NUM_CLASSES:
                labels = rgb[..., 0].copy()
            else:
                try:
                    labels = decolorize(rgb)
                except ValueError as exc:
                    raise InputError(path, f"not a label mask: {exc}") from None
        else:
            raise InputError(path, f"not a label mask: mode {img.mode} (expected an 8-bit single-channel PNG)")
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise InputError(path, f"not a label mask: holds value {int(labels.max())}, labels stop at {NUM_CLASSES - 1}")
    return labels.astype(np.uint8)


_UMASK = os.umask(0)
os.umask(_UMASK)


# Temporary files carry the writing run's process id (`.NAME.mgpe<PID>.<random>.tmp.png`), so a later run can
# tell those of a killed run (removed) from those of a run still at work (kept).
_TEMP = re.compile(r"^\..*\.mgpe(\d+)\.[a-z0-9_]+\.tmp(\.[^.]+)?$")
_CLAIM = re.compile(r"^\..+\.claim$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed. An
    operating-system failure (read-only folder, disk full) becomes an OutputError naming `path`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.mgpe{os.getpid()}.", suffix=f".tmp{path.suffix}",
                                    dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(path, _os_reason(exc)) from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def _os_reason(exc: OSError) -> str:
    """An OSError as a short reason: 'No space left on device', 'Read-only file system', ..."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return "a folder on its path is a file"
    return exc.strerror or str(exc) or type(exc).__name__


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (an unknown answer counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def ready_output_dir(folder: str | os.PathLike) -> int:
    """Make the output folder, prove it writable (one-line OutputError naming it, before any work), and remove
    temporary files and claims left under it by runs that were killed. Returns how many were removed."""
    folder = Path(folder)
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        where = "" if blocker == folder else f" {blocker}"
        raise UsageError(f"{folder}:{where} is a file, not a folder")
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        with atomic_path(folder / ".mgpe-write-test") as tmp:
            tmp.write_bytes(b"")
    except OutputError as exc:
        raise UsageError(f"{folder}: cannot write into it ({exc.problem})") from None
    (folder / ".mgpe-write-test").unlink()
    for p in made:  # proven writable; the folders appear with the first output, not before
        p.rmdir()
    if made:
        return 0
    removed = 0
    for p in folder.rglob(".*"):
        dead = False
        if (m := _TEMP.match(p.name)) is not None:
            dead = not pid_alive(int(m.group(1)))
        elif _CLAIM.match(p.name):
            dead = not pid_alive(_claim_owner(p))
        if dead and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed


def _claim_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.claim")


def _claim_owner(claim: Path) -> int:
    try:
        return int(claim.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def claim(out: str | os.PathLike, owner: int) -> int | None:
    """Claim the output `out` for the run with process id `owner` (a hidden `.NAME.claim` beside it), so two runs
    on one folder share the work. None when claimed; else the id of the live run that holds it."""
    c = _claim_path(Path(out))
    try:
        c.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(out, _os_reason(exc)) from None
    for _ in range(2):
        try:
            fd = os.open(c, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _claim_owner(c)
            if holder in (owner, 0) or not pid_alive(holder):
                with contextlib.suppress(OSError):
                    c.unlink()  # a claim of a killed run (or our own)
                continue
            return holder
        except OSError as exc:
            raise OutputError(out, _os_reason(exc)) from None
        with os.fdopen(fd, "w") as f:
            f.write(str(owner))
        return None
    return None


def claim_holder(out: str | os.PathLike) -> int | None:
    """The process id that holds the claim on `out`, None when unclaimed."""
    c = _claim_path(Path(out))
    return _claim_owner(c) if c.exists() else None


def release(out: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):
        _claim_path(Path(out)).unlink()


_PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                ".tif": "TIFF", ".tiff": "TIFF"}


def write_image(path: str | os.PathLike, image: np.ndarray, *, quality: int = 95) -> Path:
    """Write (H, W, 3) or (H, W) uint8 atomically; the format follows the suffix (PNG by default)."""
    from PIL import Image

    path = Path(path)
    fmt = _PIL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(path, f"unsupported output format {path.suffix!r} (use one of {', '.join(_PIL_FORMATS)})")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"write_image expects uint8, got {arr.dtype}")
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt, **kwargs)
    return path


def output_problem(path: str | os.PathLike, *, mask: bool = False) -> str | None:
    """Why an image (or, with `mask`, a label mask) cannot be written at `path`, checked before any work; None
    when it can."""
    path = Path(path)
    if mask and path.suffix.lower() != ".png":
        return "masks are written as PNG (lossless): name it *.png"
    if path.suffix.lower() not in _PIL_FORMATS:
        return f"unsupported output format {path.suffix!r} (use one of {', '.join(_PIL_FORMATS)})"
    if path.is_dir():
        return "is a folder, not a file name"
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK)):
        return f"cannot write into {parent}"
    return None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file: the same resolved path, or two names (links) of one existing file."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def output_clash(outputs: list[tuple[str, str | os.PathLike]],
                 inputs: list[tuple[str, str | os.PathLike]]) -> str | None:
    """Why the outputs of one command cannot all be written (checked before any work): one of them is one of
    its inputs, or another of its outputs. Each entry is (what it is, e.g. "--out", its path); None when fine."""
    for i, (label, path) in enumerate(outputs):
        for other_label, other in inputs:
            if same_file(path, other):
                return f"{label} {path} is the input {other_label} {other}: it would be overwritten"
        for other_label, other in outputs[i + 1:]:
            if same_file(path, other):
                return f"{label} {path} is also {other_label} {other}: one would overwrite the other"
    return None


def sidecar_photo(image_path: str | os.PathLike) -> Path | None:
    """The photo an aligned image's sidecar names (what a result is pasted into), or None."""
    import json

    side = Path(image_path).with_suffix(".json")
    try:
        source = json.loads(side.read_text()).get("source_path") if side.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return Path(source) if isinstance(source, str) and source else None


def preview_path(mask_path: str | os.PathLike) -> Path:
    """Where the colour preview of a mask goes: `x.mask.png` -> `x.mask.preview.png`."""
    p = Path(mask_path)
    return p.with_name(p.stem + ".preview.png")


def write_mask(path: str | os.PathLike, mask: np.ndarray, *, preview: bool = False) -> Path:
    """Write a canonical label mask as an 8-bit PNG (and its colour preview beside it)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"a mask is (H, W), got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= NUM_CLASSES):
        raise ValueError(f"mask values must lie in 0..{NUM_CLASSES - 1}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(path, "masks are written as PNG (lossless)")
    write_image(path, arr.astype(np.uint8))
    if preview:
        write_image(preview_path(path), colorize(arr))
    return path


def write_json(path: str | os.PathLike, data) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_json(path: str | os.PathLike):
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InputError(path, NOT_REGULAR.replace("an image file", "a JSON file"))
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
