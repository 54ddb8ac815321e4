"""Labelled picture grids (before/after sheets for synth, the demo and docs/)."""
from __future__ import annotations

import numpy as np


def labelled_grid(rows: list[list[tuple[str, np.ndarray]]], cell: int = 192, label_h: int = 18) -> np.ndarray:
    """rows of (label, RGB image) -> one RGB image; each image letterboxed into a cell with its label above."""
    import cv2
    from PIL import Image, ImageDraw

    ncols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (ncols * cell, len(rows) * (cell + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (label, img) in enumerate(row):
            h, w = img.shape[:2]
            f = cell / max(h, w)
            small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))),
                               interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
            x = c * cell + (cell - small.shape[1]) // 2
            y = r * (cell + label_h) + label_h + (cell - small.shape[0]) // 2
            sheet.paste(Image.fromarray(small), (x, y))
            draw.text((c * cell + 4, r * (cell + label_h) + 3), label[:32], fill=(0, 0, 0))
    return np.asarray(sheet)
