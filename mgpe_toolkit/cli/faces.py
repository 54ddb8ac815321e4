"""`mgpe align`, `mgpe parse`, `mgpe paste-back`: faces out of photos and back into them."""
from __future__ import annotations

from typing import Optional

import typer

from ..errors import EXIT_SOME_FAILED
from .common import app, console, fail, run_jobs


@app.command("align")
def align_cmd(
    source: str = typer.Argument(..., help="A photo or a folder of photos (walked recursively)."),
    out: str = typer.Argument(..., help="Output folder: one aligned PNG + JSON sidecar per face."),
    size: int = typer.Option(256, "--size", min=32, max=4096, help="Side of the aligned crop."),
    all_faces: bool = typer.Option(False, "--all-faces", help="Write every face as NAME_0.png, NAME_1.png, ..."),
    aligner: Optional[str] = typer.Option(None, "--aligner", help="Align implementation (see `mgpe plugins`)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo photos whose outputs exist."),
):
    """Align faces in photos onto the five-point template (DESIGN.md §2); resumable."""
    from ..align import align_one
    from ..pipeline import Pipeline

    pipe = Pipeline(align=aligner)
    stage = pipe.stage("align")
    run_jobs("align", source, out, f"align ({pipe.implementation_name('align')})", "faces/s",
              lambda photo, stem: align_one(stage, photo, stem, size=size, all_faces=all_faces, overwrite=overwrite))


@app.command("parse")
def parse_cmd(
    source: str = typer.Argument(..., help="An image or a folder (walked recursively): aligned faces or photos."),
    out: str = typer.Argument(..., help="Output folder: one label mask NAME.png per input (see --format)."),
    preview: bool = typer.Option(False, "--preview", help="Also write colour previews NAME.preview.png."),
    mask_format: str = typer.Option("canonical", "--format",
                                    help="Label order and sides of the mask files: canonical (ours: l_ = smaller x), "
                                         "celebamask or bisenet (those tools' order; l_ = the subject's left, "
                                         "larger x). Previews keep our colours."),
    coords: str = typer.Option("auto", "--coords",
                               help="auto (the input's own), aligned (photos: also NAME.aligned.png + .json) "
                                    "or original (aligned inputs with a sidecar: mapped back to the photo)."),
    size: int = typer.Option(256, "--size", min=32, max=4096, help="Aligned size used for photos."),
    parser: Optional[str] = typer.Option(None, "--parser", help="Parse implementation (see `mgpe plugins`)."),
    weights: Optional[str] = typer.Option(None, "--parser-weights",
                                          help="Weights file of the learned parser's network (hybrid, unet)."),
    aligner: Optional[str] = typer.Option(None, "--aligner", help="Align implementation, for photos."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo inputs whose outputs exist."),
):
    """Semantic face masks (19 labels) for aligned faces or ordinary photos; resumable."""
    from ..labels import MASK_FORMATS
    from ..parse import COORDS, parse_one
    from ..pipeline import Pipeline

    if coords not in COORDS:
        fail(f"--coords must be one of {', '.join(COORDS)}, not {coords!r}")
    if mask_format not in MASK_FORMATS:
        fail(f"--format must be one of {', '.join(MASK_FORMATS)}, not {mask_format!r}")
    pipe = Pipeline(parse=parser, align=aligner, options={"parse": {"weights": weights}} if weights else None)
    pipe.stage("parse")
    run_jobs("parse", source, out, f"parse ({pipe.implementation_name('parse')})", "img/s",
              lambda path, stem: parse_one(pipe, path, stem, coords=coords, preview=preview, size=size,
                                           overwrite=overwrite, fmt=mask_format), (".preview",) if preview else ())


@app.command("paste-back")
def paste_back_cmd(
    aligned: str = typer.Argument(..., help="An aligned (edited) image with its .json sidecar beside it."),
    out: str = typer.Option(..., "--out", "-o", help="Where to write the photo with the face pasted back."),
    photo: Optional[str] = typer.Option(None, "--photo", help="The original photo (default: the sidecar's)."),
    mask: Optional[str] = typer.Option(None, "--mask", help="Label mask of the aligned image (default: parse it)."),
    region: str = typer.Option("face+hair", "--region", help="face+hair (labels of the mask) or all (whole crop)."),
    feather: float = typer.Option(0.03, "--feather", min=0.0, max=0.5, help="Blend ramp, × crop size."),
    parser: Optional[str] = typer.Option(None, "--parser", help="Parser used when --mask is not given."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists (else refused)."),
):
    """Warp an aligned result back into its original photo; pixels outside the region stay identical."""
    from pathlib import Path

    import numpy as np

    from ..align import paste_back
    from ..errors import NoFaceError
    from ..io import read_image, read_json, read_mask, write_image
    from ..labels import face_hair_region
    from ..pipeline import Pipeline
    from ..types import Alignment

    src = Path(aligned)
    if not src.is_file():
        fail(f"{src}: no such file")
    side = src.with_suffix(".json")
    if not side.is_file():
        fail(f"{src}: no alignment sidecar {side.name} beside it (made by `mgpe align`)")
    if region not in ("face+hair", "all"):
        fail(f"--region must be face+hair or all, not {region!r}")
    try:
        alignment = Alignment.from_json(read_json(side))
    except (KeyError, TypeError, ValueError) as exc:
        fail(f"{side}: not an alignment sidecar ({exc})")
    photo_path = Path(photo or alignment.source_path or "")
    if not photo_path.is_file():
        fail(f"{side}: its photo {photo_path} is missing (give --photo)")
    from ..io import output_clash, output_problem

    problem = output_problem(out)
    inputs = [("ALIGNED", src), ("the photo", photo_path), ("the sidecar", side)] + ([("--mask", mask)] if mask else [])
    clash = None if problem else output_clash([("--out", out)], inputs)
    if problem or clash:
        fail(f"--out {out}: {problem}" if problem else clash)
    if not overwrite and Path(out).is_file():
        fail(f"--out {out}: the file exists; pass --overwrite to replace it")
    face, original = read_image(src), read_image(photo_path)
    if face.shape[:2] != (alignment.size, alignment.size):
        fail(f"{src}: is {face.shape[1]}×{face.shape[0]}, its sidecar says {alignment.size}²")
    if region == "all":
        keep = np.ones(face.shape[:2], bool)
    else:
        try:
            labels = read_mask(mask) if mask else Pipeline(parse=parser).parse(face).labels
        except NoFaceError:
            fail(f"{src}: the parser finds no face in it to take the region from (give --mask or --region all)",
                 EXIT_SOME_FAILED)
        if labels.shape != face.shape[:2]:
            fail(f"{mask}: mask is {labels.shape[1]}×{labels.shape[0]}, the image {face.shape[1]}×{face.shape[0]}")
        keep = face_hair_region(labels)
    console().print(f"wrote {write_image(out, paste_back(original, face, alignment, keep, feather=feather))}")
