"""Prints how far the shipped ONNX face graphs' landmarks lie from mediapipe 0.10.21's own, and both speeds.

Usage: python benchmarks/bench_face_graphs.py [FOLDER ...] [--per-folder 40]
A FOLDER holds photos, or an images/ folder of them (the shared data sets).
Each photo goes through mediapipe's FaceMesh (static images, refined, 3 faces, detection score 0.3) and through
`stages.face_graphs` with the same settings; the five alignment landmarks (irises, nose tip, mouth corners)
are compared in the pixels of the 256² aligned crop that mediapipe's landmarks give. Needs mediapipe 0.10.21
(`pip install -e ".[mediapipe-check]"`); without a folder, the demo's astronaut and grace_hopper.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def photos(folders: list[str], per_folder: int):
    from mgpe_toolkit.io import read_image

    if not folders:
        import matplotlib.cbook
        import skimage.data

        yield "demo", "astronaut", skimage.data.astronaut()
        yield "demo", "grace_hopper", read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        return
    for folder in folders:
        root = Path(folder)
        images = root / "images" if (root / "images").is_dir() else root  # the shared data's layout
        files = sorted(p for p in images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        step = max(1, len(files) // per_folder)
        for path in files[::step][:per_folder]:
            yield root.name, path.name, read_image(path)


def main() -> None:
    from mediapipe.python.solutions import face_mesh

    from mgpe_toolkit.align import align_from_landmarks
    from mgpe_toolkit.stages.align_mediapipe import MESH_FACES, MESH_MIN_SCORE, five_points_from_mesh, meshes

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--per-folder", type=int, default=40)
    args = ap.parse_args()
    graph = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=MESH_FACES, refine_landmarks=True,
                               min_detection_confidence=MESH_MIN_SCORE)
    rows: dict[str, list] = {}
    times = {"mediapipe": 0.0, "onnx": 0.0}
    for folder, name, image in photos(args.folders, args.per_folder):
        image = np.ascontiguousarray(image[..., :3])
        h, w = image.shape[:2]
        t = time.perf_counter()
        res = graph.process(image)
        times["mediapipe"] += time.perf_counter() - t
        t = time.perf_counter()
        ours = meshes(image)
        times["onnx"] += time.perf_counter() - t
        ref = [np.array([(p.x * w, p.y * h) for p in f.landmark]) for f in res.multi_face_landmarks or []]
        row = rows.setdefault(folder, [])
        if len(ref) != len(ours) or not ref:
            row.append((name, None if ref or ours else 0.0, len(ref), len(ours)))
            continue
        matrix = align_from_landmarks(image, five_points_from_mesh(ref[0]), 256).alignment.matrix
        at256 = [five_points_from_mesh(m) @ matrix[:, :2].T + matrix[:, 2] for m in (ref[0], ours[0])]
        row.append((name, float(np.linalg.norm(at256[0] - at256[1], axis=1).mean()), len(ref), len(ours)))
    every = []
    for folder, row in rows.items():
        errs = [r[1] for r in row if r[1] is not None and r[2]]
        every += errs
        differ = [f"{r[0]} ({r[2]} vs {r[3]} faces)" for r in row if r[2] != r[3]]
        print(f"{folder}: {len(row)} photos, five landmarks at 256²: mean {np.mean(errs) if errs else float('nan'):.3f} px, "
              f"median {np.median(errs) if errs else float('nan'):.3f}, max {max(errs, default=float('nan')):.3f}; "
              f"faces found differ on {len(differ)}" + (f": {', '.join(differ[:5])}" if differ else ""))
    n = sum(len(r) for r in rows.values())
    print(f"all: {len(every)} faces, mean {np.mean(every):.3f} px at 256² (target <= 0.5); "
          f"mesh per photo: mediapipe {1000 * times['mediapipe'] / n:.1f} ms, onnx {1000 * times['onnx'] / n:.1f} ms")


if __name__ == "__main__":
    main()
