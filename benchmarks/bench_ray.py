"""What `mgpe batch --engine ray` costs and what a cluster would reach: each stage's cost per photo on this machine,
the local engine's and a local Ray's photos/s on the same folder, Ray Data's own cost per photo, and the photos/s
that N nodes of C cores (and G GPUs) would reach, with the bottleneck stage named.

Usage: python benchmarks/bench_ray.py [--photos 240] [--cores 2] [--rounds 3] [--backend classical|onnx]
                                      [--exports DIR] [--cpus-per-actor F] [--gpu-photos-per-s R]
                                      [--cluster 4x16 --cluster 16x32+4 ...]
The folder holds copies of the astronaut (512²) and grace_hopper (512×600) as JPEG, like bench_batch.py. Both
engines are timed from the call to the last outcome on a fresh output folder, worker start-up included, in
alternated rounds; Ray itself is started before (on a cluster it is already up) and its start-up is printed
apart. The projection assumes the CPU stages share every core of every node at the efficiency Ray's best later
run reached here (its photos/s over the cores divided by the CPU cost: start-up, threads contending and idle
cores all land in it), and the learned stages on a GPU at --gpu-photos-per-s per GPU, which a CPU-only machine
cannot measure; storage and network are not modelled. Ray's start within a run (its worker processes start,
import Ray Data and load the models: about 3 s on 2 cores) is paid once per run, so the folder is sized like a
small job, not a handful of photos; --photos 48 shows what it weighs there.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Cluster:
    nodes: int
    cores: int
    gpus: int = 0

    @classmethod
    def parse(cls, text: str) -> "Cluster":
        """NxC or NxC+G (G GPUs per node)."""
        nodes, rest = text.lower().split("x", 1)
        cores, _, gpus = rest.partition("+")
        return cls(int(nodes), int(cores), int(gpus or 0))


def stage_costs(task, jobs, runner, repeat: int) -> dict[str, float]:
    """Seconds of one core per photo for each stage, in this process, after a warm-up photo."""
    import pickle

    from mgpe_toolkit.batch.local import edit_classical, learned_faces, paste_learned, prepare_one, write_result
    from mgpe_toolkit.io import read_image
    from mgpe_toolkit.pipeline import Pipeline

    pipe = Pipeline(align=task.aligner, parse=task.parser, encode="classical", generate="classical",
                    fuse="classical")
    photos = [p for p, _ in jobs[:repeat]]
    costs = dict.fromkeys(["read", "align + parse", "edit (classical)" if runner is None else "learned stages",
                           "paste back", "PNG write", "row transfer"], 0.0)
    prepare_one(task, pipe, None, photos[0])  # warm-up: models load, caches fill
    with tempfile.TemporaryDirectory() as tmp:
        for i, photo in enumerate(photos):
            t = time.perf_counter()
            image = read_image(photo)
            costs["read"] += time.perf_counter() - t
            t = time.perf_counter()
            face, target = prepare_one(task, pipe, None, photo, load=lambda _: image)
            costs["align + parse"] += time.perf_counter() - t
            t = time.perf_counter()
            blob = pickle.loads(pickle.dumps((face, target), protocol=5))  # what crosses between Ray stages
            costs["row transfer"] += time.perf_counter() - t
            if runner is None:
                t = time.perf_counter()
                result = edit_classical(task, pipe, None, photo, *blob)
                costs["edit (classical)"] += time.perf_counter() - t
                pasted, aligned = result.pasted, result.aligned
            else:
                t = time.perf_counter()
                aligned = learned_faces(runner, task, [face], [target], None)[0]
                costs["learned stages"] += time.perf_counter() - t
                t = time.perf_counter()
                pasted = paste_learned(face, target, aligned)
                costs["paste back"] += time.perf_counter() - t
            t = time.perf_counter()
            write_result(photo, Path(tmp) / f"{i}.png", pasted, aligned, False)
            costs["PNG write"] += time.perf_counter() - t
    return {k: v / len(photos) for k, v in costs.items() if v > 0}


def ray_data_overhead(rows: int, cores: int) -> float:
    """Seconds of one core per photo that Ray Data itself spends on the run's pipeline shape (four map stages,
    one row per block) with stages that do nothing."""
    import ray.data

    def nothing(row):
        return row

    ds = ray.data.from_items([{"photo": str(i), "payload": b"x" * 1024} for i in range(rows)], override_num_blocks=rows)
    for _ in range(4):
        ds = ds.map(nothing)
    t = time.perf_counter()
    sum(1 for _ in ds.iter_rows())
    return (time.perf_counter() - t) * cores / rows


def main() -> None:
    import matplotlib.cbook
    import ray
    import skimage.data

    from mgpe_toolkit.align import plan_jobs
    from mgpe_toolkit.batch.local import BatchTask, default_batch_size, run_batch
    from mgpe_toolkit.batch.ray import RayOptions, RunnerSpec, run_ray_batch
    from mgpe_toolkit.io import read_image, write_image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=240)
    ap.add_argument("--cores", type=int, default=2, help="workers of the local engine and CPUs of the local Ray")
    ap.add_argument("--backend", default="classical", choices=["classical", "onnx"])
    ap.add_argument("--exports", default="exports")
    ap.add_argument("--op", default="hair->skin@forehead")
    ap.add_argument("--cpus-per-actor", type=float, default=None, help="onnx: CPUs each learned-stage actor "
                    "reserves (default: RayOptions', none on CPUs)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each engine, alternated")
    ap.add_argument("--stage-photos", type=int, default=8, help="photos to time each stage on")
    ap.add_argument("--gpu-photos-per-s", type=float, default=0.0, help="learned stages on one GPU (measure it with "
                    "bench_infer.py on a GPU machine); 0: clusters with GPUs are not projected")
    ap.add_argument("--cluster", action="append", default=[], help="NxC or NxC+G to project (repeatable)")
    args = ap.parse_args()
    clusters = [Cluster.parse(c) for c in (args.cluster or ["1x2", "4x16", "16x32"] +
                                           (["4x16+1", "16x32+4"] if args.gpu_photos_per_s else []))]

    pictures = [skimage.data.astronaut(),
                read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))]
    runner = spec = None
    if args.backend == "onnx":
        from mgpe_toolkit.export.runtime import OnnxRunner

        runner, spec = OnnxRunner(args.exports), RunnerSpec("onnx", exports=args.exports)
    task = BatchTask(kind="edit", ops=[args.op], backend=args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        for i in range(args.photos):
            write_image(src / f"p{i:03d}.jpg", pictures[i % 2])

        def jobs_to(name: str):
            return [(p, s.with_suffix(".png")) for p, s in plan_jobs(src, Path(tmp) / name)]

        costs = stage_costs(task, jobs_to("stages"), runner, args.stage_photos)
        t = time.perf_counter()
        ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t
        runs: dict[str, list[float]] = {"local": [], "ray": []}
        # Alternated, so load from other processes on a shared machine falls on both engines alike.
        for r in range(args.rounds):
            t = time.perf_counter()
            outcomes = list(run_batch(task, jobs_to(f"local{r}"), runner=runner, workers=args.cores,
                                      batch_size=default_batch_size(runner)))
            runs["local"].append(sum(o.status == "done" for o in outcomes) / (time.perf_counter() - t))
            t = time.perf_counter()
            outcomes = list(run_ray_batch(task, jobs_to(f"ray{r}"), RayOptions(cpus_per_actor=args.cpus_per_actor),
                                          runner=spec))
            runs["ray"].append(sum(o.status == "done" for o in outcomes) / (time.perf_counter() - t))
        overhead = ray_data_overhead(max(args.photos, 64), args.cores)
        ray.shutdown()

    local_rate, cold, warm = max(runs["local"]), runs["ray"][0], max(runs["ray"][1:] or runs["ray"])
    print(f"stage cost per photo on this machine ({args.backend}, {args.op}, mean of {args.stage_photos}):")
    for name, sec in costs.items():
        print(f"  {name:<18} {sec * 1000:8.1f} ms")
    print(f"  {'Ray Data (no-op)':<18} {overhead * 1000:8.1f} ms   (scheduling and moving rows through 4 stages)")
    print(f"{args.photos} photos on {args.cores} cores, {args.rounds} rounds alternated (photos/s per round):")
    print(f"  local engine          {local_rate:6.2f} photos/s best  ({', '.join(f'{x:.2f}' for x in runs['local'])};"
          f" {args.cores} workers, started by each run)")
    print(f"  Ray, first run        {cold:6.2f} photos/s       ({100 * (cold / local_rate - 1):+.0f}% vs local's best; "
          f"its worker processes start; Ray took {ray_start:.1f} s to start, not counted)")
    if args.rounds > 1:
        print(f"  Ray, later runs       {warm:6.2f} photos/s best  ({', '.join(f'{x:.2f}' for x in runs['ray'][1:])};"
              f" {100 * (warm / local_rate - 1):+.0f}% vs local's best; Ray's workers already up)")
        print(f"  Ray's start within a run  {args.photos / cold - args.photos / warm:4.1f} s   (first run's time minus a "
              f"later run's: worker processes start, import Ray Data, load models; once per run, so a larger "
              f"--photos hides it)")

    learned = costs.get("learned stages", 0.0)
    cpu_cost = sum(v for k, v in costs.items() if k != "learned stages") + overhead
    # How much of the cores' ideal rate Ray reached here once its workers were up (a long run's steady state);
    # carried over to every node.
    # Over 100% means the stages ran faster in the run than when timed alone (load from other processes varies).
    efficiency = warm / (args.cores / (cpu_cost + learned))
    print(f"projection (CPU stages {cpu_cost * 1000:.0f} ms of a core per photo with Ray's share, Ray efficiency here "
          f"{efficiency:.0%}):")
    for c in clusters:
        cpu_rate = c.nodes * c.cores * efficiency / (cpu_cost + (learned if not c.gpus else 0.0))
        if c.gpus and not args.gpu_photos_per_s:
            continue
        name = f"{c.nodes} node{'s' if c.nodes > 1 else ''} × {c.cores} cores" + (f" + {c.gpus} GPU" if c.gpus else "")
        if c.gpus:
            gpu_rate = c.nodes * c.gpus * args.gpu_photos_per_s
            reach = min(cpu_rate, gpu_rate)
            neck = "learned stages (GPU)" if gpu_rate < cpu_rate else _biggest(costs, overhead, learned=False)
        else:
            reach = cpu_rate
            neck = _biggest(costs, overhead, learned=True)
        print(f"  {name:<28} {reach:8.1f} photos/s   bottleneck: {neck}")


def _biggest(costs: dict[str, float], overhead: float, learned: bool) -> str:
    """The stage that costs the CPUs most per photo (on CPUs every stage shares the same cores)."""
    shares = {k: v for k, v in costs.items() if learned or k != "learned stages"}
    shares["Ray Data"] = overhead
    name = max(shares, key=shares.get)
    return f"{name} ({shares[name] / sum(shares.values()):.0%} of the CPU time)"


if __name__ == "__main__":
    main()
