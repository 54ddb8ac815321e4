"""The mask-op grammar of DESIGN.md §4: parse every op up front, then apply them in order.

Names: any canonical label (`hair`, `l_eye`, ...), a component (`left_eye`, `right_eye`, `mouth` = inner
mouth + both lips), or a group (`eyes`, `brows`, `ears`, `lips`, `face` = the skin component). `mouth` names
the component; the inner-mouth label alone is `inner_mouth`. A relabel target must name a single label.

Ops:
  SRC->DST[@REGION]   relabel; REGION is `x0:x1,y0:y1` in 0..1 of width/height, or `forehead` (above the
                      brows, within the face's width, up to the hairline), `chin` (below the mouth),
                      `left`/`right` (halves of the image)
  grow:NAME:PX        dilate by PX pixels (disk); grown pixels overwrite what was there
  shrink:NAME:PX      erode by PX pixels; freed pixels take the nearest surrounding label
  move:NAME:DX,DY     shift by whole pixels (x right, y down)
  scale:NAME:F        scale by F > 0 about the bounding-box centre
  from:NAME:FILE      take the component's shape from another mask file (resized nearest if needed)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, MaskOpError
from .labels import COMPONENTS, LABEL_INDEX, LABELS

GROUPS: dict[str, tuple[str, ...]] = {
    "eyes": ("l_eye", "r_eye"), "brows": ("l_brow", "r_brow"), "ears": ("l_ear", "r_ear"),
    "lips": ("u_lip", "l_lip"), "face": COMPONENTS["skin"].labels, "inner_mouth": ("mouth",),
    "left_eye": COMPONENTS["left_eye"].labels, "right_eye": COMPONENTS["right_eye"].labels,
    "mouth": COMPONENTS["mouth"].labels,
}
REGION_NAMES = ("forehead", "chin", "left", "right")


def known_names() -> list[str]:
    return sorted(set(LABELS) | set(GROUPS))


def resolve_name(name: str, op: str) -> tuple[int, ...]:
    """A label, component or group name -> its label indices."""
    if name in GROUPS:
        return tuple(LABEL_INDEX[n] for n in GROUPS[name])
    if name in LABEL_INDEX:
        return (LABEL_INDEX[name],)
    raise MaskOpError(op, f"unknown name {name!r} (known: {', '.join(known_names())})")


def _label_name(index: int) -> str:
    """The op-grammar name of one label (`mouth` alone means the component, so label 10 is `inner_mouth`)."""
    return "inner_mouth" if LABELS[index] == "mouth" else LABELS[index]


def _vacate(labels: np.ndarray, region: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Fill `region` with the label of the nearest pixel outside it (and outside `exclude`)."""
    from scipy import ndimage

    blocked = region if exclude is None else region | exclude
    out = labels.copy()
    if not region.any():
        return out
    if blocked.all():
        out[region] = 0
        return out
    _, (iy, ix) = ndimage.distance_transform_edt(blocked, return_indices=True)
    out[region] = labels[iy[region], ix[region]]
    return out


@dataclass(frozen=True)
class Region:
    """A relative box `x0:x1,y0:y1` or a named region resolved against the mask being edited."""

    box: tuple[float, float, float, float] | None = None
    name: str | None = None

    def mask(self, labels: np.ndarray) -> np.ndarray:
        h, w = labels.shape
        out = np.zeros((h, w), dtype=bool)
        if self.box is not None:
            x0, x1, y0, y1 = self.box
            out[int(round(y0 * h)):int(round(y1 * h)), int(round(x0 * w)):int(round(x1 * w))] = True
            return out
        if self.name in ("left", "right"):
            half = w // 2
            out[:, :half] = self.name == "left"
            out[:, half:] = self.name == "right"
            return out
        if self.name == "forehead":
            return _forehead(labels)
        if self.name == "chin":
            ys = np.nonzero(np.isin(labels, COMPONENTS["mouth"].indices))[0]
            bottom = ys.max() + 1 if ys.size else int(round(200 * h / 256))
            out[bottom:] = True
            return out
        raise ValueError(self.name)


def _forehead(labels: np.ndarray) -> np.ndarray:
    """The forehead: above the brows, within the face's width (skin, brows and eyes at the brows' and eyes' rows),
    up to the hairline, which the rule of thirds puts as far above the brows as the nose's base lies below them;
    a rounded box (a superellipse), so an edit there follows a hairline's curve instead of a straight cut."""
    h, w = labels.shape
    out = np.zeros((h, w), dtype=bool)
    brows = np.isin(labels, [LABEL_INDEX["l_brow"], LABEL_INDEX["r_brow"]])
    ys = np.nonzero(brows)[0]
    top = int(ys.min()) if ys.size else int(round(100 * h / 256))  # without brows: the template's brow line
    eyes = np.isin(labels, COMPONENTS["left_eye"].indices + COMPONENTS["right_eye"].indices)
    low = int(np.nonzero(eyes)[0].max()) + 1 if eyes.any() else top + max(1, round(20 * h / 256))
    band = np.isin(labels[top:low], [LABEL_INDEX["skin"]]) | brows[top:low] | eyes[top:low]
    xs = np.nonzero(band.any(0))[0]
    if not xs.size:
        out[:top] = True
        return out
    x0, x1 = xs.min(), xs.max() + 1
    nose = np.nonzero(labels == LABEL_INDEX["nose"])[0]
    height = float(nose.max() + 1 - top) if nose.size else 1.5 * top  # no nose: everything above the brows
    yy, xx = np.mgrid[:top, :w]
    dx = (xx + 0.5 - 0.5 * (x0 + x1)) / (0.5 * (x1 - x0))
    dy = (top - yy - 0.5) / max(height, 1.0)
    out[:top] = dx**4 + dy**4 <= 1
    return out


@dataclass(frozen=True)
class Relabel:
    text: str
    src: tuple[int, ...]
    dst: int
    region: Region | None = None

    def apply(self, labels: np.ndarray) -> np.ndarray:
        sel = np.isin(labels, self.src)
        if self.region is not None:
            sel &= self.region.mask(labels)
        out = labels.copy()
        out[sel] = self.dst
        return out


@dataclass(frozen=True)
class Morph:
    """grow / shrink: dilate or erode the named labels by a disk of radius px."""

    text: str
    kind: str
    src: tuple[int, ...]
    px: int

    def apply(self, labels: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        sel = np.isin(labels, self.src)
        if not sel.any():
            return labels.copy()
        # A disk of radius px through exact Euclidean distances: the cost does not grow with px.
        if self.kind == "grow":
            dist, (iy, ix) = ndimage.distance_transform_edt(~sel, return_indices=True)
            # Each new pixel takes the label of the nearest pixel of the component (mouth keeps its lips).
            out = labels.copy()
            new = (dist <= self.px) & ~sel
            out[new] = labels[iy[new], ix[new]]
            return out
        inside = ndimage.distance_transform_edt(np.pad(sel, 1))[1:-1, 1:-1]  # outside the mask counts as not sel
        kept = inside > self.px
        return _vacate(labels, sel & ~kept, exclude=sel)


def _paste(labels: np.ndarray, src: tuple[int, ...], layer: np.ndarray) -> np.ndarray:
    """Remove the named labels, then draw `layer` (0 = transparent, else label+1) over the result."""
    out = _vacate(labels, np.isin(labels, src))
    drawn = layer > 0
    out[drawn] = (layer[drawn] - 1).astype(labels.dtype)
    return out


@dataclass(frozen=True)
class Move:
    text: str
    src: tuple[int, ...]
    dx: int
    dy: int

    def apply(self, labels: np.ndarray) -> np.ndarray:
        h, w = labels.shape
        sel = np.isin(labels, self.src)
        layer = np.zeros((h, w), dtype=np.int16)
        ys, xs = np.nonzero(sel)
        ny, nx = ys + self.dy, xs + self.dx
        keep = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        layer[ny[keep], nx[keep]] = labels[ys[keep], xs[keep]].astype(np.int16) + 1
        return _paste(labels, self.src, layer)


@dataclass(frozen=True)
class Scale:
    text: str
    src: tuple[int, ...]
    factor: float

    def apply(self, labels: np.ndarray) -> np.ndarray:
        import cv2

        sel = np.isin(labels, self.src)
        if not sel.any():
            return labels.copy()
        ys, xs = np.nonzero(sel)
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        f = self.factor
        matrix = np.array([[f, 0, cx - f * cx], [0, f, cy - f * cy]], dtype=np.float64)
        layer = np.where(sel, labels.astype(np.int16) + 1, 0).astype(np.uint8)
        h, w = labels.shape
        warped = cv2.warpAffine(layer, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        return _paste(labels, self.src, warped.astype(np.int16))


@dataclass(frozen=True)
class FromMask:
    text: str
    src: tuple[int, ...]
    path: str
    other: np.ndarray

    def apply(self, labels: np.ndarray) -> np.ndarray:
        import cv2

        other = self.other
        if other.shape != labels.shape:
            other = cv2.resize(other, (labels.shape[1], labels.shape[0]), interpolation=cv2.INTER_NEAREST)
        layer = np.where(np.isin(other, self.src), other.astype(np.int16) + 1, 0)
        return _paste(labels, self.src, layer)


MaskOp = Relabel | Morph | Move | Scale | FromMask

_NUM = r"[-+]?\d+(?:\.\d*)?|[-+]?\.\d+"


def _parse_region(op: str, text: str) -> Region:
    if text in REGION_NAMES:
        return Region(name=text)
    m = re.fullmatch(rf"\s*({_NUM})\s*:\s*({_NUM})\s*,\s*({_NUM})\s*:\s*({_NUM})\s*", text)
    if not m:
        raise MaskOpError(op, f"region {text!r} is neither x0:x1,y0:y1 nor one of {', '.join(REGION_NAMES)}")
    x0, x1, y0, y1 = (float(v) for v in m.groups())
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise MaskOpError(op, f"region {text!r} needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return Region(box=(x0, x1, y0, y1))


# The largest mask the toolkit makes (`--size` stops at 4096): no pixel argument needs to go beyond it.
MAX_PIXELS_ARG = 4096
VERBS = ("grow", "shrink", "move", "scale", "from")


def _int(op: str, what: str, text: str) -> int:
    if not re.fullmatch(r"[-+]?\d+", text.strip()):
        raise MaskOpError(op, f"{what} must be a whole number of pixels, got {text!r}")
    value = int(text)
    if abs(value) > MAX_PIXELS_ARG:
        raise MaskOpError(op, f"{what} {value} is larger than any mask ({MAX_PIXELS_ARG} pixels at most)")
    return value


def parse_op(text: str) -> MaskOp:
    """One op string -> its op object; raises MaskOpError with the reason."""
    op = text.strip()
    if not op:
        raise MaskOpError(text, "empty op")
    if "->" not in op and op.endswith("-") and op.partition(":")[0] not in VERBS:
        raise MaskOpError(op, f"ends in '-': the shell read '>...' as a redirection (and made a file of that "
                              f"name): quote the op, as in '{op}>skin', or write {op[:-1]}=DST")
    if "->" not in op and "=" in op and op.partition(":")[0] not in VERBS:
        op = op.replace("=", "->", 1)  # SRC=DST: the spelling no shell mistakes for a redirection
    if "->" in op:
        lhs, _, rhs = op.partition("->")
        dst_text, _, region_text = rhs.partition("@")
        src, dst_name = lhs.strip(), dst_text.strip()
        if not src or not dst_name:
            raise MaskOpError(op, "relabel needs SRC->DST")
        dst = resolve_name(dst_name, op)
        if len(dst) != 1:
            raise MaskOpError(op, f"target {dst_name!r} names {len(dst)} labels; name one label "
                                  f"({', '.join(_label_name(i) for i in dst)})")
        region = _parse_region(op, region_text.strip()) if "@" in rhs else None
        return Relabel(op, resolve_name(src, op), dst[0], region)
    verb, sep, rest = op.partition(":")
    if not sep:
        raise MaskOpError(op, "expected SRC->DST or VERB:NAME:ARG with VERB one of grow, shrink, move, scale, from")
    name, sep, arg = rest.partition(":")  # FILE may itself hold colons
    if verb not in VERBS:
        raise MaskOpError(op, f"unknown verb {verb!r} (grow, shrink, move, scale, from)")
    if not sep or not arg.strip():
        raise MaskOpError(op, f"{verb} needs {verb}:NAME:{ {'grow': 'PX', 'shrink': 'PX', 'move': 'DX,DY', 'scale': 'F', 'from': 'FILE'}[verb] }")
    src = resolve_name(name.strip(), op)
    if verb in ("grow", "shrink"):
        px = _int(op, "PX", arg)
        if px <= 0:
            raise MaskOpError(op, f"PX must be positive, got {px}")
        return Morph(op, verb, src, px)
    if verb == "move":
        parts = arg.split(",")
        if len(parts) != 2:
            raise MaskOpError(op, f"move needs DX,DY, got {arg!r}")
        return Move(op, src, _int(op, "DX", parts[0]), _int(op, "DY", parts[1]))
    if verb == "scale":
        try:
            factor = float(arg)
        except ValueError:
            raise MaskOpError(op, f"F must be a number, got {arg!r}") from None
        if not (0 < factor <= 16) or factor != factor:
            raise MaskOpError(op, f"F must lie in (0, 16], got {arg}")
        return Scale(op, src, factor)
    from .io import read_mask

    path = Path(arg.strip()).expanduser()
    try:
        other = read_mask(path)
    except InputError as exc:
        raise MaskOpError(op, f"cannot use {exc}") from None
    if not np.isin(other, src).any():
        raise MaskOpError(op, f"{path} holds no {name.strip()} pixels")
    return FromMask(op, src, str(path), other)


def parse_ops(texts: list[str] | tuple[str, ...]) -> list[MaskOp]:
    """Parse every op before any is applied, so a typo in the last one costs no work."""
    return [parse_op(t) for t in texts]


def apply_ops(labels: np.ndarray, ops: list[MaskOp] | list[str]) -> np.ndarray:
    """Apply ops (objects or strings) in order to a canonical mask (H, W); the input is not modified."""
    parsed = parse_ops(ops) if ops and isinstance(ops[0], str) else ops
    out = np.asarray(labels, dtype=np.uint8).copy()
    for op in parsed:
        out = op.apply(out)
    return out
