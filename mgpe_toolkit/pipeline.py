"""Composes the five stages (align -> parse -> encode -> generate -> fuse) from the registry by name."""
from __future__ import annotations

from typing import Any

import numpy as np

from .plugins import Registry, get_registry
from .types import STAGES, AlignedFace, FaceMask


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
