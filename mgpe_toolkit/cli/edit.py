"""`mgpe edit`, `mgpe swap+`, `mgpe transfer`, `mgpe synth`: thin over Pipeline.edit/swap/transfer/synth."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_SOME_FAILED, MgpeError
from .common import app, console, fail, styled

STAGE_HELP = "Implementation (see `mgpe plugins`)."
# Options every editing command takes (typer reads these defaults; sharing them keeps the commands in step).
PARSER = typer.Option(None, "--parser", help=STAGE_HELP)
ENCODER = typer.Option(None, "--encoder", help=STAGE_HELP)
GENERATOR = typer.Option(None, "--generator", help=STAGE_HELP)
FUSER = typer.Option(None, "--fuser", help=STAGE_HELP)
OVERWRITE = typer.Option(False, "--overwrite", help="Replace output files that exist (else refused).")
WEIGHTS = typer.Option(None, "--weights", help="Learned weights (mgpe-gan.safetensors): selects the learned stages.")
SIZE = typer.Option("native", "--size", help="Working size of a photo's aligned face: native (the face's own "
                                             "resolution, 256 to 768 px, so a sharp portrait stays sharp) or a side "
                                             "in pixels (a multiple of 32).")


def _size(value: str) -> int | str:
    """--size: "native" or a side in pixels, checked before any work."""
    if value == "native":
        return value
    if not value.isdigit() or not 64 <= int(value) <= 4096 or int(value) % 32:
        fail(f"--size must be native or a multiple of 32 from 64 to 4096, not {value!r}")
    return int(value)


def _pipeline(parser, encoder, generator, fuser, weights):
    from ..pipeline import Pipeline

    return Pipeline.learned(weights, parse=parser, encode=encoder, generate=generator, fuse=fuser)


def load_face(pipe, path: str, *, aligned: bool = False, mask: str | None = None, size: int | str = "native"):
    """A PreparedFace from a file: a photo (aligned here at `size`), an aligned image (with its sidecar, the photo
    comes too, for paste-back), or an aligned image given with --aligned."""
    from ..errors import InputError, MgpeError, NoFaceError
    from ..io import read_image, read_mask
    from ..parse import read_sidecar, sidecar_note

    p = Path(path)
    for given in (p, Path(mask) if mask else None):
        if given is not None and not given.exists():
            fail(f"{given}: no such file")  # a missing input is a usage error (exit 2), as in every command
    try:
        image = read_image(p)
        labels = read_mask(mask) if mask else None
    except InputError as exc:
        fail(str(exc), EXIT_SOME_FAILED)
    alignment, problem = read_sidecar(p, image)
    if problem and not aligned:
        console(stderr=True).print(styled("note:", "yellow", f"{p}: {sidecar_note(problem)} (so the result is "
                                           f"pasted back into {p.name}, not into the photo it was cut from)"),
                                    soft_wrap=True)
    h, w = image.shape[:2]
    if labels is not None and labels.shape != (h, w):
        fail(f"{mask}: mask is {labels.shape[1]}×{labels.shape[0]}, its image {p} is {w}×{h}", EXIT_SOME_FAILED)
    try:
        if alignment is not None or aligned:
            face = pipe.prepare(image, aligned=True, mask=labels, alignment=alignment)
            src = Path(alignment.source_path) if alignment and alignment.source_path else None
            if src is not None and src.is_file():
                face.photo = read_image(src)
            return face
        return pipe.prepare(image, mask=labels, size=size)  # the photo's own mask: warped into the aligned crop
    except NoFaceError:
        fail(f"{p}: no face found", EXIT_SOME_FAILED)
    except MgpeError as exc:
        fail(f"{p}: {exc}", EXIT_SOME_FAILED)


def check_outputs(out: Path, aligned_out: Optional[str] = None, save_mask: Optional[str] = None, *,
                  inputs: tuple[tuple[str, Optional[str]], ...] = (), named: bool = False,
                  overwrite: bool = False) -> None:
    """Every output a command names is checked before any work (not after minutes of it): writable, neither one
    of the command's `inputs` ((what, path); an aligned image brings the photo its sidecar names) nor another of
    its outputs, and, unless `overwrite`, not a file that exists already (`named`: --out was given, not derived;
    a derived name is the command's own earlier result, replaced)."""
    from ..io import output_clash, output_problem, preview_path, sidecar_photo


    for label, path, mask in (("--out", out, False), ("--aligned-out", aligned_out, False),
                              ("--save-mask", save_mask, True)):
        problem = output_problem(path, mask=mask) if path else None
        if problem:
            fail(f"{label} {path}: {problem}")
    outputs = [(label, path) for label, path in (("--out", out), ("--aligned-out", aligned_out),
                                                 ("--save-mask", save_mask)) if path]
    if save_mask:
        outputs.append(("--save-mask's preview", preview_path(save_mask)))
    given = [(label, path) for label, path in inputs if path]
    given += [(f"{label}'s photo", photo) for label, path in given if (photo := sidecar_photo(path)) is not None]
    clash = output_clash(outputs, given)
    if clash:
        fail(clash)
    for label, path in (("--out", out if named else None), ("--aligned-out", aligned_out), ("--save-mask", save_mask)):
        if path and not overwrite and Path(path).is_file():
            fail(f"{label} {path}: the file exists; pass --overwrite to replace it")


def write_result(result, out: Path, aligned_out: Optional[str], con, save_mask: Optional[str] = None) -> None:
    """The main result first; a secondary output that fails is reported (exit 1) and never costs the result."""
    from ..errors import EXIT_SOME_FAILED, MgpeError
    from ..io import write_image, write_mask

    written = [write_image(out, result.pasted if result.pasted is not None else result.aligned)]
    stages = ", ".join(f"{k} {v}" for k, v in result.stages.items())
    note = "pasted back into the photo" if result.pasted is not None else "aligned (no photo to paste into)"
    failed = []
    for path, write in ((aligned_out, lambda p: write_image(p, result.aligned)),
                        (save_mask, lambda p: write_mask(p, result.mask.labels, preview=True))):
        if path:
            try:
                written.append(write(path))
            except (MgpeError, OSError) as exc:
                failed.append(f"{path}: {exc}")
    con.print(f"wrote {', '.join(map(str, written))} ({note}; {stages})")
    for line in result.notes:
        con.print(styled("note:", "yellow", line), soft_wrap=True)
    if failed:
        fail("; ".join(failed), EXIT_SOME_FAILED)


def _default_out(path: str, suffix: str) -> Path:
    return Path.cwd() / f"{Path(path).stem}.{suffix}.png"


def _run(fn, what: str):
    from ..errors import MgpeError

    try:
        return fn()
    except MgpeError as exc:
        fail(f"{what}: {exc}", exc.exit_code)


@app.command("edit")
def edit_cmd(
    image: str = typer.Argument(..., help="A photo, or an aligned face (with its .json sidecar to paste back)."),
    mask_op: list[str] = typer.Option([], "--mask-op", "-m", help="Mask operation (repeatable, applied in order): "
                                      "hair->skin, l_eye->skin@0:0.5,0:1, grow:eyes:2, scale:mouth:1.2, ..."),
    mask: Optional[str] = typer.Option(None, "--mask", help="Edited target mask (painted in any editor, label PNG or "
                                       "colour preview; aligned size or the photo's size) instead of --mask-op."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Result (default ./NAME.edit.png)."),
    aligned_out: Optional[str] = typer.Option(None, "--aligned-out", help="Also write the aligned result here."),
    save_mask: Optional[str] = typer.Option(None, "--save-mask", help="Write the edited mask (+ preview) here."),
    source_mask: Optional[str] = typer.Option(None, "--source-mask", help="The image's own mask (default: parse it)."),
    aligned: bool = typer.Option(False, "--aligned", help="The image is already an aligned face."),
    parser: Optional[str] = PARSER,
    encoder: Optional[str] = ENCODER,
    generator: Optional[str] = GENERATOR,
    fuser: Optional[str] = FUSER,
    weights: Optional[str] = WEIGHTS,
    size: str = SIZE,
    overwrite: bool = OVERWRITE,
):
    """Edit a face through its mask: parse, apply the ops, regenerate, fuse, paste back into the photo."""
    from ..maskops import apply_ops, parse_ops

    if bool(mask_op) == bool(mask):
        fail("give --mask-op (repeatable) or --mask, one of them")
    if mask and not Path(mask).exists():
        fail(f"--mask {mask}: no such file")
    ops = parse_ops(mask_op) if mask_op else None  # malformed ops fail here, before any work
    work = _size(size)
    out_path = Path(out) if out else _default_out(image, "edit")
    check_outputs(out_path, aligned_out, save_mask, named=bool(out), overwrite=overwrite,
                  inputs=(("IMAGE", image), ("--mask", mask), ("--source-mask", source_mask)))
    pipe = _pipeline(parser, encoder, generator, fuser, weights)
    face = load_face(pipe, image, aligned=aligned, mask=source_mask, size=work)
    if ops is not None:
        target = _run(lambda: apply_ops(face.mask.labels, ops), image)
    else:
        target = _target_mask(mask, face)
    result = _run(lambda: pipe.edit(face, target=target), image)
    write_result(result, out_path, aligned_out, console(), save_mask)


def _target_mask(path: str, face):
    """A painted mask in aligned coordinates, or in the photo's (warped into the aligned crop)."""
    import cv2

    from ..errors import InputError
    from ..io import read_mask

    try:
        labels = read_mask(path)
    except InputError as exc:
        fail(str(exc), EXIT_SOME_FAILED)
    s = face.image.shape[0]
    if labels.shape == (s, s):
        return labels
    if face.photo is not None and labels.shape == face.photo.shape[:2]:
        return cv2.warpAffine(labels, face.alignment.matrix, (s, s), flags=cv2.INTER_NEAREST)
    fail(f"{path}: mask is {labels.shape[1]}×{labels.shape[0]}; expected the aligned {s}×{s}"
         + (f" or the photo's {face.photo.shape[1]}×{face.photo.shape[0]}" if face.photo is not None else ""))


@app.command("swap+")
def swap_cmd(
    source: str = typer.Argument(..., help="Whose face and hair to use (a)."),
    target: str = typer.Argument(..., help="Whose photo, background and pose to keep (b)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Result (default ./B.swap.png)."),
    shape: str = typer.Option("target", "--shape", help="Whose mask shapes are kept: target (default) or source."),
    aligned_out: Optional[str] = typer.Option(None, "--aligned-out", help="Also write the aligned result here."),
    aligned: bool = typer.Option(False, "--aligned", help="Both images are already aligned faces."),
    parser: Optional[str] = PARSER,
    encoder: Optional[str] = ENCODER,
    generator: Optional[str] = GENERATOR,
    fuser: Optional[str] = FUSER,
    weights: Optional[str] = WEIGHTS,
    size: str = SIZE,
    overwrite: bool = OVERWRITE,
):
    """Face swap with hair: the face of SOURCE, hair included, onto the photo of TARGET."""
    if shape not in ("target", "source"):
        fail(f"--shape must be target or source, not {shape!r}")
    work = _size(size)
    out_path = Path(out) if out else _default_out(target, "swap")
    check_outputs(out_path, aligned_out, inputs=(("SOURCE", source), ("TARGET", target)), named=bool(out),
                  overwrite=overwrite)
    pipe = _pipeline(parser, encoder, generator, fuser, weights)
    a = load_face(pipe, source, aligned=aligned, size=work)
    b = load_face(pipe, target, aligned=aligned, size=work)
    result = _run(lambda: pipe.swap(a, b, shape=shape), f"{source} -> {target}")
    write_result(result, out_path, aligned_out, console())


@app.command("transfer")
def transfer_cmd(
    target: str = typer.Argument(..., help="The face to change (b)."),
    source: str = typer.Option(..., "--from", help="The face whose components' appearance is taken (a)."),
    component: str = typer.Option(..., "--component", "-c", help="Comma-separated: left_eye, right_eye, eyes, "
                                  "mouth, skin, hair."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Result (default ./B.transfer.png)."),
    aligned_out: Optional[str] = typer.Option(None, "--aligned-out", help="Also write the aligned result here."),
    aligned: bool = typer.Option(False, "--aligned", help="Both images are already aligned faces."),
    parser: Optional[str] = PARSER,
    encoder: Optional[str] = ENCODER,
    generator: Optional[str] = GENERATOR,
    fuser: Optional[str] = FUSER,
    weights: Optional[str] = WEIGHTS,
    size: str = SIZE,
    overwrite: bool = OVERWRITE,
):
    """Give TARGET the appearance of components of another face (hair colour, lips, beard via skin, eyes)."""

    from ..labels import UnknownComponent, component_names, has_component

    try:
        names = component_names(p.strip() for p in component.split(",") if p.strip())
    except UnknownComponent as exc:
        fail(f"--component {exc}")
    if not names:
        fail("--component: name at least one component")
    work = _size(size)
    out_path = Path(out) if out else _default_out(target, "transfer")
    check_outputs(out_path, aligned_out, inputs=(("--from", source), ("TARGET", target)), named=bool(out),
                  overwrite=overwrite)
    pipe = _pipeline(parser, encoder, generator, fuser, weights)
    a = load_face(pipe, source, aligned=aligned, size=work)
    lacking = [n for n in names if not has_component(a.mask.labels, n)]
    if lacking:
        fail(f"{source}: has no {' or '.join(lacking)} in its mask (bald or covered?) to take: leave "
             f"{'it' if len(lacking) == 1 else 'them'} out of --component or take {'it' if len(lacking) == 1 else 'them'} "
             "from another face", EXIT_SOME_FAILED)
    b = load_face(pipe, target, aligned=aligned, size=work)
    result = _run(lambda: pipe.transfer(a, b, names), f"{source} -> {target}")
    write_result(result, out_path, aligned_out, console())


@app.command("synth")
def synth_cmd(
    mask: str = typer.Argument(..., help="Target mask (aligned, label PNG or colour preview)."),
    sources: str = typer.Option(..., "--sources", help="Folder of source faces (photos or aligned)."),
    n: int = typer.Option(8, "-n", min=1, help="How many faces to synthesise (one per source)."),
    out: str = typer.Option("synth-out", "--out", "-o", help="Output folder for synth_NN.png."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Also write a labelled grid image here."),
    aligned: bool = typer.Option(False, "--aligned", help="The sources are already aligned faces."),
    parser: Optional[str] = PARSER,
    encoder: Optional[str] = ENCODER,
    generator: Optional[str] = GENERATOR,
    fuser: Optional[str] = FUSER,
    weights: Optional[str] = WEIGHTS,
):
    """Mask-to-face synthesis: one target mask, components (and background) from each of N source faces."""
    import cv2

    from ..errors import InputError, NoFaceError
    from ..io import list_images, read_image, read_mask, same_file, write_image

    if not Path(mask).exists():
        fail(f"{mask}: no such file")
    try:
        target = read_mask(mask)
    except InputError as exc:
        fail(str(exc), EXIT_SOME_FAILED)
    if not Path(sources).is_dir():
        fail(f"--sources {sources}: no such folder")
    if Path(out).exists() and same_file(out, sources):
        fail(f"--out {out} is the --sources folder: its synth_NN.png would overwrite sources and be taken as "
             "sources by later runs")
    if grid:
        from ..io import output_clash, output_problem

        problem = output_problem(grid)
        if problem:
            fail(f"--grid {grid}: {problem}")
        clash = output_clash([("--grid", grid)], [("MASK", mask)])
        if clash:
            fail(clash)
    pipe = _pipeline(parser, encoder, generator, fuser, weights)
    con = console()
    faces, names, problems, results = [], [], [], []
    for path in list_images(sources):
        if len(faces) == n:
            break
        try:
            face = pipe.prepare(read_image(path), aligned=aligned)
        except (InputError, NoFaceError) as exc:
            problems.append(f"{path}: {getattr(exc, 'problem', None) or exc}")
            continue
        if face.image.shape[:2] != target.shape:
            face = pipe.prepare(cv2.resize(face.image, target.shape[::-1], interpolation=cv2.INTER_AREA), aligned=True)
        try:
            results.append(pipe.synth(target, [face])[0])
        except MgpeError as exc:  # e.g. a bald source for a mask with hair: this source is skipped
            problems.append(f"{path}: {str(exc).replace('the source face', 'it')} (the mask {mask} needs it)")
            continue
        faces.append(face)
        names.append(path.stem)
    for line in problems:
        con.print(f"skipped {line}", soft_wrap=True)
    if not results:
        fail(f"--sources {sources}: no usable face for {mask}", EXIT_SOME_FAILED)
    written = [write_image(Path(out) / f"synth_{i:02d}.png", r.aligned) for i, r in enumerate(results)]
    if grid:
        write_image(grid, synth_grid(target, faces, results, names))
        written.append(Path(grid))
    con.print(f"wrote {len(results)} faces to {out}" + (f" and the grid {grid}" if grid else "")
              + f" ({', '.join(f'{k} {v}' for k, v in results[0].stages.items())})")
    if len(results) < n:
        con.print(f"only {len(results)} usable source faces for -n {n}")
        raise typer.Exit(EXIT_SOME_FAILED)


def synth_grid(target, faces, results, names):
    """Columns: the target mask, then per source: the source face above its synthesised result."""
    import numpy as np

    from ..labels import colorize
    from ..grid import labelled_grid

    top = [("target mask", colorize(target))] + [(f"source {nm}", f.image) for nm, f in zip(names, faces)]
    bottom = [("", np.full_like(results[0].aligned, 255))] + [(f"result {i}", r.aligned) for i, r in enumerate(results)]
    return labelled_grid([top, bottom])
