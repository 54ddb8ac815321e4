"""Per-pixel accuracy and per-class IoU of a parser plugin on a labelled folder of aligned faces.

Usage: python benchmarks/bench_parse.py DIR [--parser hybrid|unet|mesh] [--labels helen|canonical|bisenet] [--no-merge]
                                           [--json out.json] [--speed] [--precision fp32] [--no-mirror] [--no-refine|--refine hair]
                                           [--scale F]
       python benchmarks/bench_parse.py DIR --labels lfw-hair --coords original [--split heldout|train|all]
                                           [--context Z] [--size 512]
       python benchmarks/bench_parse.py DIR --labels celebamask [--split heldout|train|all]
       python benchmarks/bench_parse.py --speed
       python benchmarks/bench_parse.py --steps [--rounds 5] [--repeats 10]
DIR holds images/NAME.* and labels/NAME.png (or masks/NAME.png). With Helen labels the prediction is
converted to Helen's 11 classes and the lips (upper, lower, inner mouth) are merged, as in docs/benchmarks.md.
lfw-hair: hair IoU in the photos' own coordinates against images/ + hair/, on the held-out people (the split
`mgpe train parser` leaves out). --speed: ms per aligned face for the parser alone, and `mgpe parse` faces/s
end to end on 512² photos. --precision/--no-mirror/--no-refine: the U-Net's inference steps, one by one
(`UNetParser`'s options); --steps: what each costs, side by side. --scale F: every face and its labels F × as large
first (bicubic, nearest), as a high-resolution portrait would come. --context Z: lfw-hair parsed from a
view Z × the aligned face's size (`parse.CONTEXT`, 0.7).
celebamask: DIR holds images/ + masks/ in CelebAMask-HQ's order and sides (celebamask-mini); every portrait is
parsed as `mgpe parse` parses a photo, in its own coordinates, and scored with sides as the data has them:
pixel accuracy, F1 per class, mean F1 over the 18 classes other than background, pixels pooled, on the
held-out split (the hash of the name that `mgpe train parser --labels celebamask` leaves out).
Examples: python benchmarks/bench_parse.py ../shared/data/helen-samples --labels helen --speed
          python benchmarks/bench_parse.py ../shared/data/lfw-hair --labels lfw-hair --coords original
          python benchmarks/bench_parse.py ../shared/data/celebamask-mini --labels celebamask
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def pairs(folder: Path) -> list[tuple[Path, Path]]:
    from mgpe_toolkit.io import list_images

    label_dir = next((folder / d for d in ("labels", "masks") if (folder / d).is_dir()), None)
    if label_dir is None or not (folder / "images").is_dir():
        sys.exit(f"{folder}: expected images/ and labels/ (or masks/) inside")
    out = []
    for img in list_images(folder / "images"):
        lab = label_dir / img.relative_to(folder / "images").with_suffix(".png")
        if lab.is_file():
            out.append((img, lab))
    if not out:
        sys.exit(f"{folder}: no image has a label of the same name")
    return out


BOUNDARY_PX = (1, 3, 8)  # distance bins (photo pixels) for where the wrong hair pixels lie
BAND_PX = 2  # the hand-made masks follow superpixels: a boundary-tolerant IoU leaves this band out


def parsed_photos(pipe, pairs, read_truth, times: list, size: int = 256):
    """(photo path, truth, labels in the photo's coordinates or None for no face) per pair, with a progress bar;
    the parser's seconds per photo are appended to `times`."""
    from rich.progress import track

    from mgpe_toolkit.io import read_image
    from mgpe_toolkit.parse import labels_in_photo

    for img, truth_path in track(pairs, description="parse"):
        photo, truth = read_image(img), read_truth(truth_path)
        t = time.perf_counter()
        labels = labels_in_photo(pipe, photo, size)
        times.append(time.perf_counter() - t)
        yield img, truth, labels


def lfw_hair(pipe, folder: Path, split: str, limit: int | None, size: int = 256) -> dict:
    """Hair IoU in the photos' own coordinates (`mgpe parse --coords original`) against hand-made hair masks
    (images/ + hair/, the lfw-hair layout), over the held-out people unless told otherwise."""
    import cv2
    import numpy as np

    from mgpe_toolkit.labels import LABEL_INDEX
    from mgpe_toolkit.train.pseudo import hair_pairs, held_out

    pairs = [p for p in hair_pairs(folder) if split == "all" or held_out(p[0].name) == (split == "heldout")]
    pairs = pairs[:limit] if limit else pairs
    inter = union = 0
    per, missed = [], []
    lost = np.zeros(256, np.int64)  # what the parser called the hair it missed
    near = np.zeros(len(BOUNDARY_PX) + 1, np.int64)  # wrong pixels by distance to the mask's boundary
    band_inter = band_union = 0  # the same IoU, pixels within BAND_PX of the mask's boundary left out
    from mgpe_toolkit.train.pseudo import read_hair

    times: list[float] = []
    for img, truth, labels in parsed_photos(pipe, pairs, read_hair, times, size):
        if labels is None:
            missed.append(img.name)
        pred = np.zeros_like(truth) if labels is None else labels == LABEL_INDEX["hair"]
        if pred.shape == truth.shape and labels is not None:
            lost += np.bincount(labels[truth & ~pred], minlength=256)
        i, u = int((pred & truth).sum()), int((pred | truth).sum())
        inter, union = inter + i, union + u
        if pred.shape == truth.shape:
            t8 = truth.astype(np.uint8)
            dist = np.where(truth, cv2.distanceTransform(t8, cv2.DIST_L2, 3),
                            cv2.distanceTransform(1 - t8, cv2.DIST_L2, 3))
            near += np.bincount(np.digitize(dist[pred != truth], BOUNDARY_PX, right=True), minlength=len(near))
            far = dist > BAND_PX
            band_inter += int((pred & truth & far).sum())
            band_union += int(((pred | truth) & far).sum())
        per.append(i / u if u else 1.0)
    from mgpe_toolkit.labels import LABELS

    share = {LABELS[k]: round(float(lost[k] / max(lost.sum(), 1)), 3) for k in np.argsort(-lost)[:5] if lost[k]}
    edges = [f"<= {b} px" for b in BOUNDARY_PX] + [f"> {BOUNDARY_PX[-1]} px"]
    wrong = {e: round(float(n / max(near.sum(), 1)), 3) for e, n in zip(edges, near)}
    return {"photos": len(pairs), "split": split, "hair_iou": inter / max(union, 1), "missed_hair_called": share,
            "wrong_pixels_by_distance_to_the_mask_boundary": wrong,
            f"hair_iou_beyond_{BAND_PX}px_of_the_boundary": band_inter / max(band_union, 1),
            "hair_iou_mean_per_photo": float(np.mean(per)), "no_face": missed,
            "ms_per_photo": 1000 * sum(times) / max(len(pairs), 1)}


def celebamask(pipe, folder: Path, split: str, limit: int | None, size: int = 256) -> dict:
    """Pixel accuracy, per-class F1 and IoU of photos parsed in their own coordinates against CelebAMask-HQ
    masks (sides as the data has them), pixels pooled over the split."""
    import numpy as np

    from mgpe_toolkit.io import read_mask
    from mgpe_toolkit.labels import LABELS
    from mgpe_toolkit.metrics.segmentation import Confusion, score_against_truth
    from mgpe_toolkit.train.pseudo import held_out, mask_pairs

    pairs = [p for p in mask_pairs(folder) if split == "all" or held_out(p[0].name) == (split == "heldout")]
    pairs = pairs[:limit] if limit else pairs
    total, missed, times = Confusion(LABELS), [], []
    for img, truth, pred in parsed_photos(pipe, pairs, read_mask, times, size):
        if pred is None:
            pred = np.zeros_like(truth)
            missed.append(img.name)
        total.add(*score_against_truth(pred, truth, "celebamask")[:2])
    f1, iou = total.f1(), total.iou()
    face = [f1.get(n, 0.0) for n in LABELS[1:]]
    wrong = total.matrix * (1 - np.eye(len(LABELS), dtype=np.int64))
    top = np.argsort(-wrong.ravel())[:8]
    confusions = {f"{LABELS[k // len(LABELS)]} -> {LABELS[k % len(LABELS)]}": round(float(wrong.flat[k] / total.matrix.sum()), 4)
                  for k in top}
    return {"photos": len(pairs), "split": split, "accuracy": total.accuracy, "mean_f1": float(np.mean(face)),
            "wrong_pixels_truth_to_parsed": confusions,
            "f1": {n: round(v, 4) for n, v in f1.items()}, "iou": {n: round(v, 4) for n, v in iou.items()},
            "no_face": missed, "ms_per_photo": 1000 * sum(times) / max(len(pairs), 1)}


def speed(pipe, photos: int = 24) -> dict:
    """The parser alone on an aligned 256² face, and `mgpe parse` end to end (read, align, parse with
    context, warp back, write PNG) on a folder of 512² photos made from the portraits in installed packages."""
    import tempfile

    import numpy as np

    from mgpe_toolkit.align import plan_jobs
    from mgpe_toolkit.demo import demo_photos
    from mgpe_toolkit.io import write_image
    from mgpe_toolkit.parse import parse_one

    import cv2

    sources = [cv2.resize(p, (512, 512), interpolation=cv2.INTER_AREA) for p in demo_photos().values()]
    face = pipe.align(sources[0])[0].image
    pipe.parse(face)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        pipe.parse(face)
        times.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "photos", Path(tmp) / "masks"
        rng = np.random.default_rng(0)
        for i in range(photos):  # shifted copies, so every photo is aligned anew
            img = np.roll(sources[i % len(sources)], tuple(rng.integers(-20, 20, 2)), (0, 1))
            write_image(src / f"{i:03d}.png", img)
        jobs = plan_jobs(src, out)
        t = time.perf_counter()
        for photo, stem in jobs:
            parse_one(pipe, photo, stem)
        wall = time.perf_counter() - t
    return {"parser_ms_per_aligned_face": 1000 * float(np.median(times)), "photos": photos,
            "end_to_end_faces_per_s": photos / wall}


STEPS = {  # what each inference step of the U-Net parser costs, cumulatively
    "unet, one fp32 pass": ("unet", {"precision": "fp32", "mirror": False, "refine": False}),
    "unet, one int8 pass": ("unet", {"mirror": False, "refine": False}),
    "unet, int8 + mirror": ("unet", {"mirror": True, "refine": False}),
    "unet, int8 + mirror + hair refined (the default parser at 256²)": ("unet", {"mirror": True}),
    "unet, int8 + mirror + edges refined (its default on larger faces)": ("unet", {"mirror": True, "refine": "edges"}),
    "hybrid (unet + the face mesh's eyes)": ("hybrid", {}),
}


def steps(rounds: int = 5, repeats: int = 10) -> None:
    """Median ms per aligned face of each STEPS variant on the demo photos' faces, the variants taking turns
    round by round (the machine's drift hits all alike)."""
    import cv2
    import numpy as np

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.demo import demo_photos

    pipes = {k: Pipeline(parse=parser, options={"parse": opt}) for k, (parser, opt) in STEPS.items()}
    first = next(iter(pipes.values()))
    faces = [first.align(cv2.resize(p, (512, 512), interpolation=cv2.INTER_AREA))[0].image
             for p in demo_photos().values()]
    ms: dict[str, list[float]] = {k: [] for k in pipes}
    for _ in range(rounds):
        for k, pipe in pipes.items():
            for f in faces:  # warm
                pipe.parse(f)
            times = []
            for _ in range(repeats):
                for f in faces:
                    t = time.perf_counter()
                    pipe.parse(f)
                    times.append(time.perf_counter() - t)
            ms[k].append(1000 * float(np.median(times)))
    for k, v in ms.items():
        print(f"{k}: {np.median(v):.1f} ms per aligned face (rounds {min(v):.1f}-{max(v):.1f})")


def main() -> None:
    import cv2
    from rich.console import Console
    from rich.table import Table

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.io import read_image, read_mask
    from mgpe_toolkit.metrics.segmentation import HELEN_LIPS, Confusion, score_against_truth

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, nargs="?")
    ap.add_argument("--parser", default=None)
    ap.add_argument("--labels", default="canonical", choices=("canonical", "helen", "bisenet", "lfw-hair", "celebamask"))
    ap.add_argument("--coords", default="aligned", choices=("aligned", "original"),
                    help="lfw-hair: original (the photos' own coordinates) is the only choice")
    ap.add_argument("--split", default="heldout", choices=("heldout", "train", "all"),
                    help="lfw-hair, celebamask: which people (held out of training by a hash of the name)")
    ap.add_argument("--limit", type=int, help="lfw-hair, celebamask: at most this many photos")
    ap.add_argument("--scale", type=float, help="aligned folders: faces and labels resized by this factor first")
    ap.add_argument("--context", type=float, help="lfw-hair: the view around the face (parse.CONTEXT)")
    ap.add_argument("--size", type=int, default=256,
                    help="lfw-hair, celebamask: the side of the view parsed (above 256 the logits are upsampled)")
    ap.add_argument("--speed", action="store_true", help="print the parser's speed (no folder needed)")
    ap.add_argument("--no-merge", action="store_true", help="keep upper lip, lower lip and inner mouth apart")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--precision", choices=("int8", "fp32"), help="unet/hybrid: the graph onnxruntime runs")
    ap.add_argument("--no-mirror", action="store_true", help="unet/hybrid: one pass, without the mirror image")
    ap.add_argument("--no-refine", action="store_true", help="unet/hybrid: the labels as the network draws them")
    ap.add_argument("--refine", choices=("auto", "edges", "hair", "none"),
                    help="unet/hybrid: which boundaries snap to the photo's edges (default: auto, the parser's)")
    ap.add_argument("--steps", action="store_true",
                    help="ms per aligned face of each inference step of the U-Net, side by side (5 rounds)")
    ap.add_argument("--rounds", type=int, default=5, help="--steps: rounds, the variants taking turns")
    ap.add_argument("--repeats", type=int, default=10, help="--steps: timed passes over the faces per round")
    args = ap.parse_args()
    if args.steps:
        steps(args.rounds, args.repeats)
        return

    options = {k: v for k, v in (("precision", args.precision), ("mirror", False if args.no_mirror else None),
                                 ("refine", "none" if args.no_refine else args.refine)) if v is not None}
    pipe = Pipeline(parse=args.parser, options={"parse": options})
    con = Console()
    name = pipe.implementation_name("parse")
    report = {"options": options} if options else {}
    if args.speed:
        report["speed"] = figures = speed(pipe)
        con.print(f"parser {name}: {figures['parser_ms_per_aligned_face']:.1f} ms per aligned 256² face; "
                  f"`mgpe parse` of {figures['photos']} 512² photos: {figures['end_to_end_faces_per_s']:.1f} faces/s")
    if args.folder is None:
        if not args.speed:
            ap.error("give a folder, or --speed")
        _write(args.json, {"parser": name, **report})
        return
    if args.labels == "lfw-hair":
        if args.coords != "original":
            ap.error("--labels lfw-hair measures hair in the photos' own coordinates: use --coords original")
        if args.context:
            import mgpe_toolkit.parse

            mgpe_toolkit.parse.CONTEXT = report["context"] = args.context
        report["lfw_hair"] = r = lfw_hair(pipe, args.folder, args.split, args.limit, args.size)
        con.print(f"parser {name} on {r['photos']} {r['split']} photos of {args.folder}: hair IoU "
                  f"{r['hair_iou']:.4f} (pixels pooled), {r['hair_iou_mean_per_photo']:.4f} (mean per photo); "
                  f"{r['ms_per_photo']:.0f} ms per photo; no face in {len(r['no_face'])}")
        con.print("missed hair was called: " + ", ".join(f"{k} {v:.0%}" for k, v in r["missed_hair_called"].items()))
        con.print("wrong pixels by distance to the mask's boundary: " + ", ".join(
            f"{k} {v:.0%}" for k, v in r["wrong_pixels_by_distance_to_the_mask_boundary"].items())
            + f"; hair IoU beyond {BAND_PX} px of it {r[f'hair_iou_beyond_{BAND_PX}px_of_the_boundary']:.4f}")
        _write(args.json, {"parser": name, "folder": str(args.folder), **report})
        return
    if args.labels == "celebamask":
        report["celebamask"] = r = celebamask(pipe, args.folder, args.split, args.limit, args.size)
        table = Table(title=f"parser {name} on {r['photos']} {r['split']} portraits of {args.folder} (pixels pooled, "
                            f"sides as the data has them)")
        for col in ("class", "F1", "IoU"):
            table.add_column(col, justify="right")
        for label, value in r["f1"].items():
            table.add_row(label, f"{value:.3f}", f"{r['iou'].get(label, float('nan')):.3f}")
        con.print(table)
        con.print(f"pixel accuracy {r['accuracy']:.4f}; mean F1 over the 18 classes other than background "
                  f"{r['mean_f1']:.4f}; hair IoU {r['iou'].get('hair', float('nan')):.4f}; "
                  f"{r['ms_per_photo']:.0f} ms per photo; no face in {len(r['no_face'])}")
        con.print("largest confusions (share of all pixels, truth -> parsed): " + ", ".join(
            f"{k} {v:.2%}" for k, v in r["wrong_pixels_truth_to_parsed"].items()))
        _write(args.json, {"parser": name, "folder": str(args.folder), **report})
        return
    merge = None if args.no_merge or args.labels != "helen" else HELEN_LIPS
    if args.scale:
        report["scale"] = args.scale
    total, rows, seconds = None, [], 0.0
    for img_path, lab_path in pairs(args.folder):
        image, truth = read_image(img_path), read_mask(lab_path)  # label indices, in args.labels order
        if args.scale:
            size = (round(image.shape[1] * args.scale), round(image.shape[0] * args.scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
            truth = cv2.resize(truth, size, interpolation=cv2.INTER_NEAREST)
        t = time.perf_counter()
        pred = pipe.parse(image).labels
        seconds += time.perf_counter() - t
        tr, pr, names = score_against_truth(pred, truth, args.labels, merge=merge)
        one = Confusion(names).add(tr, pr)
        total = total.add(tr, pr) if total else Confusion(names).add(tr, pr)
        rows.append((img_path.name, image.shape[1], one.accuracy, one.iou().get("hair", float("nan"))))

    per = Table(title=f"parser {pipe.implementation_name('parse')} on {args.folder}")
    for col in ("image", "size", "accuracy", "hair IoU"):
        per.add_column(col, justify="right")
    for image_name, size, acc, hair in rows:
        per.add_row(image_name, str(size), f"{acc:.3f}", f"{hair:.3f}")
    con.print(per)
    iou = total.iou()
    summary = Table(title="all images (pixels pooled)")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("per-pixel accuracy", f"{total.accuracy:.4f}")
    summary.add_row("mean IoU", f"{total.mean_iou():.4f}")
    for label, value in iou.items():
        summary.add_row(f"IoU {label}", f"{value:.3f}")
    summary.add_row("ms / image", f"{1000 * seconds / len(rows):.0f}")
    con.print(summary)
    _write(args.json, {
        "parser": name, "folder": str(args.folder), "labels": args.labels, **report,
        "merge": merge, "accuracy": total.accuracy, "mean_iou": total.mean_iou(), "iou": iou,
        "ms_per_image": 1000 * seconds / len(rows),
        "per_image": [{"image": r[0], "accuracy": r[2], "hair_iou": r[3]} for r in rows],
    })


def _write(path: Path | None, report: dict) -> None:
    if path:
        path.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
