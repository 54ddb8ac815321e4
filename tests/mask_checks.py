"""Checks the parser tests share: where a part of a mask sits, a parser's score on the Helen samples, and where
the lfw-hair and celebamask-mini photos are."""
import os
from pathlib import Path

import numpy as np

LFW = Path(os.environ.get("MGPE_LFW_HAIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lfw-hair"))
CELEBAMASK = Path(os.environ.get("MGPE_CELEBAMASK",
                                 Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celebamask-mini"))


def centroid(mask, *names):
    """(x, y) mean of the pixels of the named labels; fails when there are none."""
    from mgpe_toolkit.labels import LABEL_INDEX

    ys, xs = np.nonzero(np.isin(mask, [LABEL_INDEX[n] for n in names]))
    assert len(xs), names
    return xs.mean(), ys.mean()


def helen_confusion(pipe, helen_dir):
    """Confusion over the 14 samples, as benchmarks/bench_parse.py computes it (lips merged)."""
    from mgpe_toolkit.io import list_images, read_image, read_mask
    from mgpe_toolkit.metrics.segmentation import HELEN_LIPS, Confusion, score_against_truth

    total = None
    for img in list_images(helen_dir / "images"):
        pred = pipe.parse(read_image(img)).labels
        truth, pred, names = score_against_truth(pred, read_mask(helen_dir / "labels" / f"{img.stem}.png"), "helen",
                                                 merge=HELEN_LIPS)
        total = (total or Confusion(names)).add(truth, pred)
    return total
