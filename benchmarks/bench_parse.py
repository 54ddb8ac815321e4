"""Per-pixel accuracy and per-class IoU of a parser plugin on a labelled folder of aligned faces.

Usage: python benchmarks/bench_parse.py DIR [--parser mesh] [--labels helen|canonical|bisenet] [--no-merge]
                                           [--json out.json]
DIR holds images/NAME.* and labels/NAME.png (or masks/NAME.png). With Helen labels the prediction is
converted to Helen's 11 classes and the lips (upper, lower, inner mouth) are merged, as in our README.
Example: python benchmarks/bench_parse.py ../shared/data/helen-samples --labels helen
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


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.io import read_image, read_mask
    from mgpe_toolkit.metrics.segmentation import HELEN_LIPS, Confusion, score_against_truth

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--parser", default=None)
    ap.add_argument("--labels", default="canonical", choices=("canonical", "helen", "bisenet"))
    ap.add_argument("--no-merge", action="store_true", help="keep upper lip, lower lip and inner mouth apart")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    pipe = Pipeline(parse=args.parser)
    merge = None if args.no_merge or args.labels != "helen" else HELEN_LIPS
    total, rows, seconds = None, [], 0.0
    for img_path, lab_path in pairs(args.folder):
        image, truth = read_image(img_path), read_mask(lab_path)  # label indices, in args.labels order
        t = time.perf_counter()
        pred = pipe.parse(image).labels
        seconds += time.perf_counter() - t
        tr, pr, names = score_against_truth(pred, truth, args.labels, merge=merge)
        one = Confusion(names).add(tr, pr)
        total = total.add(tr, pr) if total else Confusion(names).add(tr, pr)
        rows.append((img_path.name, image.shape[1], one.accuracy, one.iou().get("hair", float("nan"))))

    con = Console()
    per = Table(title=f"parser {pipe.implementation_name('parse')} on {args.folder}")
    for col in ("image", "size", "accuracy", "hair IoU"):
        per.add_column(col, justify="right")
    for name, size, acc, hair in rows:
        per.add_row(name, str(size), f"{acc:.3f}", f"{hair:.3f}")
    con.print(per)
    iou = total.iou()
    summary = Table(title="all images (pixels pooled)")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("per-pixel accuracy", f"{total.accuracy:.4f}")
    summary.add_row("mean IoU", f"{total.mean_iou():.4f}")
    for name, value in iou.items():
        summary.add_row(f"IoU {name}", f"{value:.3f}")
    summary.add_row("ms / image", f"{1000 * seconds / len(rows):.0f}")
    con.print(summary)
    if args.json:
        args.json.write_text(json.dumps({
            "parser": pipe.implementation_name("parse"), "folder": str(args.folder), "labels": args.labels,
            "merge": merge, "accuracy": total.accuracy, "mean_iou": total.mean_iou(), "iou": iou,
            "ms_per_image": 1000 * seconds / len(rows),
            "per_image": [{"image": r[0], "accuracy": r[2], "hair_iou": r[3]} for r in rows],
        }, indent=2))


if __name__ == "__main__":
    main()
