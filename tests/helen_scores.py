"""Scoring a parser on the Helen samples, as benchmarks/bench_parse.py does (lips merged)."""


def helen_confusion(pipe, helen_dir):
    from mgpe_toolkit.io import list_images, read_image, read_mask
    from mgpe_toolkit.metrics.segmentation import HELEN_LIPS, Confusion, score_against_truth

    total = None
    for img in list_images(helen_dir / "images"):
        pred = pipe.parse(read_image(img)).labels
        truth, pred, names = score_against_truth(pred, read_mask(helen_dir / "labels" / f"{img.stem}.png"), "helen",
                                                 merge=HELEN_LIPS)
        total = (total or Confusion(names)).add(truth, pred)
    return total
