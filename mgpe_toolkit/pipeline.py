"""Composes the five stages (align -> parse -> encode -> generate -> fuse) from the registry by name."""
from __future__ import annotations

from typing import Any

import numpy as np

from .plugins import Registry, get_registry
from .errors import MgpeError, NoFaceError
from .types import STAGES, AlignedFace, ComponentCodes, EditResult, FaceMask, PreparedFace

# The largest working crop of prepare(size="native"): memory and seconds grow with its square.
MAX_SIZE = 768  # a 1024² CelebA-HQ face is native at about 1070: 768 keeps its detail within 1.5 s on 2 cores


class Pipeline:
    """Pick an implementation per stage by name (None = the default usable one) and run them.

    >>> pipe = Pipeline(align="mediapipe")
    >>> faces = pipe.align(read_image("photo.jpg"))
    """

    def __init__(self, *, registry: Registry | None = None, options: dict[str, dict[str, Any]] | None = None,
                 **choices: str | None):
        unknown = set(choices) - set(STAGES)
        if unknown:
            raise TypeError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(STAGES)}")
        self.registry = registry or get_registry()
        self.choices = {stage: choices.get(stage) for stage in STAGES}
        self.options = options or {}
        self._instances: dict[str, Any] = {}

    @classmethod
    def learned(cls, weights: str | None = None, *, registry: Registry | None = None,
                **choices: str | None) -> "Pipeline":
        """The pipeline of `mgpe edit --weights W`: with weights, the learned encode, generate and fuse stages on
        them (a stage chosen otherwise keeps its choice); without, the defaults. `choices` as for Pipeline.

        >>> pipe = Pipeline.learned("models/demo-tiny/mgpe-gan.safetensors")
        """
        options: dict[str, dict[str, Any]] = {}
        if weights:
            for stage in ("encode", "generate", "fuse"):
                if choices.get(stage) in (None, "mgpe"):
                    options[stage] = {"weights": weights}
                choices[stage] = choices.get(stage) or "mgpe"
        return cls(registry=registry, options=options, **choices)

    def implementation_name(self, stage: str) -> str:
        return self.registry.get(stage, self.choices[stage]).name

    def stage(self, stage: str) -> Any:
        """The (cached) instance that runs `stage`; raises PluginError if none is usable."""
        if stage not in self._instances:
            self._instances[stage] = self.registry.create(stage, self.choices[stage], **self.options.get(stage, {}))
        return self._instances[stage]

    def align(self, image: np.ndarray, *, size: int = 256, all_faces: bool = False) -> list[AlignedFace]:
        """Faces in an RGB photo, aligned to the template, largest first (empty when none)."""
        return self.stage("align").align(image, size=size, all_faces=all_faces)

    def parse(self, face: np.ndarray) -> FaceMask:
        """Canonical label mask of an aligned face."""
        return self.stage("parse").parse(face)

    # -- editing ------------------------------------------------------------------------------------------
    def prepare(self, image: np.ndarray, *, aligned: bool = False, mask: np.ndarray | None = None,
                size: int | str = 256, alignment=None, max_size: int = MAX_SIZE) -> PreparedFace:
        """A photo (aligned here, largest face) or an aligned face, with its mask (parsed unless given).
        size: the aligned crop's side, or "native": the side at which the face keeps the photo's detail
        (`align.native_size`: 256 for small faces, up to max_size)."""
        if aligned:
            face, photo = image, None
        else:
            faces = self.align(image, size=256 if size == "native" else int(size))
            if not faces:
                raise NoFaceError("no face found")
            if size == "native":
                from .align import native_size, resized

                faces[0] = resized(faces[0], image, native_size(faces[0].alignment, max_size))
            face, photo, alignment = faces[0].image, image, faces[0].alignment
            if mask is not None and np.shape(mask) == image.shape[:2] != face.shape[:2]:  # the photo's own mask
                import cv2

                mask = cv2.warpAffine(np.asarray(mask, np.uint8), alignment.matrix, face.shape[1::-1],
                                      flags=cv2.INTER_NEAREST)
        if mask is None:
            labels = self.parse(face).labels
        else:
            labels = np.asarray(mask, np.uint8)
            if labels.shape != face.shape[:2]:
                raise MgpeError(f"the mask is {labels.shape[1]}×{labels.shape[0]}, the face {face.shape[1]}×{face.shape[0]}")
        return PreparedFace(image=face, mask=FaceMask(labels, parser=self.choices["parse"] or ""), photo=photo,
                            alignment=alignment)

    def encode(self, face: PreparedFace) -> ComponentCodes:
        return self.stage("encode").encode(face.image, face.mask)

    def render(self, codes: ComponentCodes, target: np.ndarray, onto: PreparedFace, *,
               region_of: tuple[np.ndarray, ...] = (), weight: np.ndarray | None = None) -> EditResult:
        """Generate from codes on the target mask, fuse onto `onto`'s image, paste back into its photo. `weight`
        (S, S) in [0, 1] (`local_weight`): where the result may change, in the aligned result and in the photo (0:
        the face's own bytes); None: the face and hair of both masks (and of `region_of`) are pasted back."""
        from .align import paste_back, paste_weighted
        from .labels import face_hair_region

        target_mask = FaceMask(np.asarray(target, np.uint8))
        foreground = self.stage("generate").generate(codes, target_mask)
        fuser = self.stage("fuse")
        result = fuser.fuse(foreground, onto.image, target_mask, onto.mask)
        result = keep_grey(restore_detail(result, onto.image, getattr(fuser, "resolution", None)), onto.image)
        pasted = None
        if weight is not None:
            result = composite(onto.image, result, weight)
            if onto.photo is not None and onto.alignment is not None:
                pasted = paste_weighted(onto.photo, result, onto.alignment, weight)
        elif onto.photo is not None and onto.alignment is not None:
            region = face_hair_region(target_mask.labels) | face_hair_region(onto.mask.labels)
            for extra in region_of:
                region |= face_hair_region(extra)
            pasted = paste_back(onto.photo, result, onto.alignment, region)
        return EditResult(aligned=result, mask=target_mask, pasted=pasted, alignment=onto.alignment,
                          stages={s: self.implementation_name(s) for s in ("encode", "generate", "fuse")})

    def edit(self, face: PreparedFace, ops=None, target: np.ndarray | None = None) -> EditResult:
        """Regenerate a face from its own components on its mask edited by `ops` (or on `target`)."""
        from .maskops import apply_ops, parse_ops

        if (ops is None) == (target is None):
            raise MgpeError("give mask ops or a target mask (one of them)")
        if ops is not None:
            ops = parse_ops(ops) if ops and isinstance(ops[0], str) else ops
            target = apply_ops(face.mask.labels, ops)
        target = np.asarray(target, np.uint8)
        return self.render(self.encode(face), target, face, weight=edit_weight(face.mask.labels, target))

    def swap(self, source: PreparedFace, target: PreparedFace, *, shape: str = "target") -> EditResult:
        """The face of `source`, hair included, onto `target`'s photo. shape: whose mask shapes are kept."""
        if shape not in ("target", "source"):
            raise MgpeError(f"shape must be target or source, not {shape!r}")
        from .labels import COMPONENTS, has_component

        source = at_size(source, target.image.shape[0])
        mask = target.mask.labels if shape == "target" else shapes_from(source.mask.labels, target.mask.labels)
        codes = self.encode(source)
        encoder = self.stage("encode")
        if hasattr(encoder, "swap_codes"):  # an encoder that can use the target's own codes too
            codes = encoder.swap_codes(codes, self.encode(target))
        # A component the result needs and the source lacks (a bald head, eyes behind sunglasses) is the target's.
        missing = [n for n in COMPONENTS if has_component(mask, n) and not has_component(source.mask.labels, n)]
        if missing:
            own = self.encode(target)
            codes = ComponentCodes(codes={**codes.codes, **{n: own.codes[n] for n in missing}}, mask=codes.mask,
                                   encoder=codes.encoder)
        result = self.render(codes, mask, target)
        if missing:
            result.notes.append(f"the source face has no {' or '.join(missing)} in its mask: the target's "
                                f"{'is' if len(missing) == 1 else 'are'} kept")
        return result

    def transfer(self, source: PreparedFace, target: PreparedFace, components: list[str]) -> EditResult:
        """`target` with the named components' appearance taken from `source`."""
        from .labels import COMPONENTS, has_component

        unknown = [c for c in components if c not in COMPONENTS]
        if unknown or not components:
            raise MgpeError(f"unknown component(s) {', '.join(unknown) or '(none)'}; components are "
                            f"{', '.join(COMPONENTS)}")
        for name in components:
            if not has_component(source.mask.labels, name):
                raise MgpeError(f"the source face has no {name} in its mask (bald or covered?): leave {name} out "
                                "or take it from another face")
        src, tgt = self.encode(at_size(source, target.image.shape[0])), self.encode(target)
        encoder = self.stage("encode")
        if hasattr(encoder, "mix"):
            codes = encoder.mix(tgt, src, components)
        else:
            codes = ComponentCodes(codes={**tgt.codes, **{n: src.codes[n] for n in components}}, mask=tgt.mask,
                                   encoder=tgt.encoder)
        return self.render(codes, target.mask.labels, target,
                           weight=local_weight(components_region(target.mask.labels, components)))

    def synth(self, target: np.ndarray, sources: list[PreparedFace]) -> list[EditResult]:
        """Faces on one target mask, each with the components (and background) of one source."""
        return [self.render(self.encode(src), target, PreparedFace(src.image, src.mask)) for src in sources]


# The band around changed pixels over which an edit fades into the face it leaves alone: a share of the crop side.
EDIT_BAND = 0.006


def local_weight(changed: np.ndarray, band: float = EDIT_BAND) -> np.ndarray:
    """Blend weight (S, S) float32 of a local edit: 1 on the changed pixels, falling linearly to 0 over `band` × S
    pixels around them, 0 everywhere else (those pixels keep the face's own bytes)."""
    import cv2

    changed = np.asarray(changed, bool)
    if not changed.any():
        return np.zeros(changed.shape, np.float32)
    width = max(1.0, band * changed.shape[0])
    dist = cv2.distanceTransform((~changed).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(1.0 - dist / (width + 1.0), 0.0, 1.0).astype(np.float32)


# Where an edit reveals background (hair removed), strands the parser left outside the hair go with it: a wider band.
REVEAL_BAND = 0.06


def edit_weight(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The blend weight of a mask edit: the changed labels with EDIT_BAND around them, and REVEAL_BAND around what
    became background."""
    weight = local_weight(after != before)
    revealed = (after == 0) & (before != 0)
    return np.maximum(weight, local_weight(revealed, REVEAL_BAND)) if revealed.any() else weight


def composite(image: np.ndarray, result: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`result` where weight is 1, `image` (byte for byte) where it is 0, mixed between."""
    out = image.copy()
    inside = weight > 0
    a = weight[inside][:, None]
    out[inside] = np.clip(image[inside] * (1 - a) + result[inside] * a + 0.5, 0, 255).astype(np.uint8)
    return out


def components_region(labels: np.ndarray, components) -> np.ndarray:
    """(S, S) bool: the pixels of the named components (what a transfer of them may change)."""
    from .labels import component_mask

    return np.logical_or.reduce([component_mask(labels, n) for n in components])


def at_size(face: PreparedFace, size: int) -> PreparedFace:
    """A face whose aligned crop and mask are resampled to size² (the source of a swap or transfer given at
    another crop size than its target: an aligned 512² face onto a photo aligned at 256²)."""
    import cv2

    if face.image.shape[0] == size:
        return face
    shrink = face.image.shape[0] > size
    image = cv2.resize(face.image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    labels = cv2.resize(face.mask.labels, (size, size), interpolation=cv2.INTER_NEAREST)
    return PreparedFace(image, FaceMask(labels=labels, parser=face.mask.parser))


# Grey levels (mean over RGB) by which a result may differ from the photo at the render's scale and still take the
# photo's finer detail there (weight exp(-(difference / DETAIL_MATCH)²)).
DETAIL_MATCH = 10.0


def restore_detail(result: np.ndarray, image: np.ndarray, rendered_at: int | None) -> np.ndarray:
    """A result upscaled from a render at `rendered_at`² (a learned fuser's trained side), given the detail finer
    than that render from `image` (the face it was fused onto) wherever the two agree at the render's scale: the
    pores and strands the generator left where they were come back; what it changed gets none of the photo's.
    Results rendered at their own size (rendered_at None or not below the side) come back as they are."""
    size = result.shape[0]
    if not rendered_at or rendered_at >= size or image.shape != result.shape:
        return result
    import cv2

    sigma = 0.5 * size / rendered_at
    r, i = result.astype(np.float32), image.astype(np.float32)
    low_r, low_i = cv2.GaussianBlur(r, (0, 0), sigma), cv2.GaussianBlur(i, (0, 0), sigma)
    match = np.exp(-np.square(np.abs(low_r - low_i).mean(-1, keepdims=True) / DETAIL_MATCH))
    return np.clip(r + match * ((i - low_i) - (r - low_r)) + 0.5, 0, 255).astype(np.uint8)


def keep_grey(result: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Grey in, grey out: the result of a grey (black-and-white) face is made grey, without the tint and coloured
    grain that generated components bring."""
    if image.ndim == 3 and int(np.abs(image.astype(np.int16) - image[..., :1]).max()) <= 2:
        luma = result.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.repeat(np.clip(luma + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return result


def shapes_from(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The source's face and hair labels over the target's background labels (what `--shape source` keeps)."""
    from .labels import face_hair_region

    out = np.where(face_hair_region(target), 0, target).astype(np.uint8)
    keep = face_hair_region(source)
    out[keep] = source[keep]
    return out
