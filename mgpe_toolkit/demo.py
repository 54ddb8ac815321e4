"""`mgpe demo`: the whole tool on portraits that ship inside installed packages, written to one folder.

Photos: scikit-image's `astronaut` and matplotlib's `grace_hopper`. Steps: align -> parse (masks and colour
previews) -> edit `hair->skin@forehead` -> swap+ both ways -> transfer hair -> a labelled before/after grid.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class DemoReport:
    out: Path
    files: dict[str, Path] = field(default_factory=dict)  # what -> where
    stages: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def demo_photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data

    from .io import read_image

    return {"astronaut": skimage.data.astronaut(),
            "grace_hopper": read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))}


def run_demo(out: str | Path, *, log: Callable[[str], None] = print, pipe=None) -> DemoReport:
    from .grid import labelled_grid
    from .io import write_image, write_json, write_mask
    from .labels import colorize
    from .pipeline import Pipeline

    start = time.perf_counter()
    out = Path(out)
    pipe = pipe or Pipeline()
    report = DemoReport(out)
    photos = demo_photos()
    faces = {}
    for name, photo in photos.items():
        report.files[f"photo {name}"] = write_image(out / "photos" / f"{name}.png", photo)
        face = pipe.prepare(photo)
        face.alignment.source_path = str(report.files[f"photo {name}"].resolve())
        faces[name] = face
        report.files[f"aligned {name}"] = write_image(out / "aligned" / f"{name}.png", face.image)
        write_json(out / "aligned" / f"{name}.json", face.alignment.to_json())
        report.files[f"mask {name}"] = write_mask(out / "masks" / f"{name}.png", face.mask.labels, preview=True)
        log(f"aligned and parsed {name} ({pipe.implementation_name('align')} + {pipe.implementation_name('parse')})")
    a, g = faces["astronaut"], faces["grace_hopper"]
    results = {
        "edit astronaut hair->skin@forehead": ("edit/astronaut.hair-to-skin.png", pipe.edit(a, ["hair->skin@forehead"])),
        "edit grace_hopper grow:eyes:2": ("edit/grace_hopper.grow-eyes.png", pipe.edit(g, ["grow:eyes:2"])),
        "swap+ astronaut onto grace_hopper": ("swap/astronaut-on-grace_hopper.png", pipe.swap(a, g)),
        "swap+ grace_hopper onto astronaut": ("swap/grace_hopper-on-astronaut.png", pipe.swap(g, a)),
        "transfer hair grace_hopper -> astronaut": ("transfer/astronaut.hair-from-grace_hopper.png",
                                                    pipe.transfer(g, a, ["hair"])),
    }
    for what, (rel, result) in results.items():
        report.files[what] = write_image(out / rel, result.pasted)
        write_image(out / rel.replace(".png", ".aligned.png"), result.aligned)
        report.stages = result.stages
        log(f"{what}: {rel}")
    rows = [
        [("astronaut", a.image), ("mask", colorize(a.mask.labels)),
         ("hair->skin@forehead", results["edit astronaut hair->skin@forehead"][1].aligned),
         ("hair from grace_hopper", results["transfer hair grace_hopper -> astronaut"][1].aligned),
         ("grace_hopper's face", results["swap+ grace_hopper onto astronaut"][1].aligned)],
        [("grace_hopper", g.image), ("mask", colorize(g.mask.labels)),
         ("grow:eyes:2", results["edit grace_hopper grow:eyes:2"][1].aligned),
         ("astronaut's face", results["swap+ astronaut onto grace_hopper"][1].aligned)],
    ]
    report.files["grid"] = write_image(out / "grid.png", labelled_grid(rows))
    report.seconds = time.perf_counter() - start
    return report
