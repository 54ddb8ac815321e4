"""Photos per second of `mgpe batch` (align -> parse -> edit -> paste back -> PNG) on a folder of photos.

Usage: python benchmarks/bench_batch.py [--photos 24] [--workers 2] [--backend classical|onnx]
                                        [--exports DIR|MANIFEST|random:lean [--int8]]
                                        [--batch-size N] [--op hair->skin@forehead] [--parser mesh]
The folder holds copies of the astronaut (512²) and grace_hopper (512×600), written as JPEG; the timing
covers the whole command's work (decode, worker start-up included), as a user would see it.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def random_export(config: str, folder: Path, int8: bool) -> Path:
    import torch

    from mgpe_toolkit.export.onnx import export_onnx
    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.nets.framework import MaskGuidedFramework
    from mgpe_toolkit.weights import save_generator

    torch.manual_seed(0)
    save_generator(MaskGuidedFramework(PRESETS[config]).eval(), folder / "w.safetensors", step=0)
    return export_onnx(folder / "w.safetensors", folder / "exports", precision="int8" if int8 else "fp32",
                       calibrate="synthetic:8", calibrate_count=8)


def main() -> None:
    import matplotlib.cbook
    import skimage.data

    from mgpe_toolkit.align import plan_jobs
    from mgpe_toolkit.batch.local import BatchTask, default_batch_size, run_batch
    from mgpe_toolkit.io import read_image, write_image

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", default="classical")
    ap.add_argument("--exports", default="exports", help="an export folder or manifest, or random:CONFIG: random "
                    "weights of that config, exported here (speed does not depend on the weights)")
    ap.add_argument("--int8", action="store_true", help="with random:CONFIG, the int8 export")
    ap.add_argument("--op", default="hair->skin@forehead")
    ap.add_argument("--batch-size", type=int, default=0, help="0: what `mgpe batch` picks")
    ap.add_argument("--parser", default=None, help="parse implementation (default: the default parser)")
    args = ap.parse_args()
    pictures = [skimage.data.astronaut(), read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                                                       asfileobj=False))]
    runner = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend == "onnx":
            from mgpe_toolkit.export.runtime import OnnxRunner

            runner = OnnxRunner(random_export(args.exports.split(":", 1)[1], Path(tmp), args.int8)
                                if args.exports.startswith("random:") else args.exports)
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        for i in range(args.photos):
            write_image(src / f"p{i:03d}.jpg", pictures[i % 2])
        jobs = [(p, s.with_suffix(".png")) for p, s in plan_jobs(src, out)]
        task = BatchTask(kind="edit", ops=[args.op], backend=args.backend, parser=args.parser)
        t = time.perf_counter()
        batch_size = args.batch_size or default_batch_size(runner)
        outcomes = list(run_batch(task, jobs, runner=runner, workers=args.workers, batch_size=batch_size))
        seconds = time.perf_counter() - t
    done = sum(o.status == "done" for o in outcomes)
    what = f"{runner.describe()}, " if runner is not None else ""
    print(f"{done}/{len(jobs)} photos edited ({args.op}, backend {args.backend}, {what}{args.workers} workers, "
          f"batch size {batch_size}) in "
          f"{seconds:.1f} s: {done / seconds:.2f} photos/s")


if __name__ == "__main__":
    main()
