"""Photos per second of `mgpe batch` (align -> parse -> edit -> paste back -> PNG) on a folder of photos.

Usage: python benchmarks/bench_batch.py [--photos 24] [--workers 2] [--backend classical] [--op hair->skin@forehead]
The folder holds copies of the astronaut (512²) and grace_hopper (512×600), written as JPEG; the timing
covers the whole command's work (decode, worker start-up included), as a user would see it.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    import matplotlib.cbook
    import skimage.data

    from mgpe_toolkit.align import plan_jobs
    from mgpe_toolkit.batch import BatchTask, run_batch
    from mgpe_toolkit.io import read_image, write_image

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", default="classical")
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--op", default="hair->skin@forehead")
    args = ap.parse_args()
    pictures = [skimage.data.astronaut(), read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                                                       asfileobj=False))]
    runner = None
    if args.backend == "onnx":
        from mgpe_toolkit.export.runtime import OnnxRunner

        runner = OnnxRunner(args.exports)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        for i in range(args.photos):
            write_image(src / f"p{i:03d}.jpg", pictures[i % 2])
        jobs = [(p, s.with_suffix(".png")) for p, s in plan_jobs(src, out)]
        task = BatchTask(kind="edit", ops=[args.op], backend=args.backend)
        t = time.perf_counter()
        outcomes = list(run_batch(task, jobs, runner=runner, workers=args.workers))
        seconds = time.perf_counter() - t
    done = sum(o.status == "done" for o in outcomes)
    print(f"{done}/{len(jobs)} photos edited ({args.op}, backend {args.backend}, {args.workers} workers) in "
          f"{seconds:.1f} s: {done / seconds:.2f} photos/s")


if __name__ == "__main__":
    main()
