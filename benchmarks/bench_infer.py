"""Inference speed of the learned stages (encoders + generator + fuser) for one edited image.

Usage: python benchmarks/bench_infer.py [--config lean] [--batches 1 16] [--runs 5] [--rounds 3] [--no-compile]
Random weights (speed does not depend on them). On the CPU, each engine - onnxruntime fp32, onnxruntime int8
(calibrated on 8 synthetic portraits), torch eager, torch.compile (where it works) - runs in a fresh process
of its own, and the engines take turns for `--rounds` rounds: one engine's threads (torch's OpenMP workers
spin after each op; inductor keeps compile workers) cannot slow another, and drift of the machine shows as
the spread. Prints the median ms/image and img/s, the spread, and each onnxruntime/torch-eager ratio.
With a GPU: torch fp32/bf16 on CUDA and onnxruntime's CUDA provider (with onnxruntime-gpu), with the names.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CPU_ENGINES = ("onnxruntime fp32", "onnxruntime int8", "torch eager", "torch.compile")


def timed(fn, runs: int, sync=None) -> float:
    fn()  # warm-up
    if sync:
        sync()
    t = time.perf_counter()
    for _ in range(runs):
        fn()
    if sync:
        sync()
    return (time.perf_counter() - t) / runs


def torch_fn(model, inputs, dtype=None):
    import torch

    from mgpe_toolkit.nets.inputs import COMPONENT_NAMES

    def run():
        with torch.no_grad(), (torch.autocast("cuda", dtype=dtype) if dtype else torch.autocast("cpu", enabled=False)):
            feats = {n: model.encoders[n](inputs["crops"][n])[0] for n in COMPONENT_NAMES}
            fg = model.generate(feats, inputs["onehot"], inputs["centres"])
            return model.fuse(fg, inputs["target"], inputs["removed"])
    return run


def inputs_for(framework, batch: int, device: str = "cpu"):
    from mgpe_toolkit.export.onnx import example_inputs

    ex = example_inputs(framework, batch)
    return {"crops": {n: t.to(device) for n, t in ex["encoders"].items()},
            "onehot": ex["generator"]["mask_onehot"].to(device), "centres": ex["generator"]["centres"].to(device),
            "target": ex["fuser"]["target_image"].to(device), "removed": ex["fuser"]["removed"].to(device)}


def ort_fn(runner, inputs):
    np_in = {"crops": {n: t.numpy() for n, t in inputs["crops"].items()},
             **{k: inputs[k].numpy() for k in ("onehot", "centres", "target", "removed")}}

    def run():
        feats = runner.encode(np_in["crops"])
        return runner.render(feats, np_in["onehot"], np_in["centres"], np_in["target"], np_in["removed"])
    return run


def one_engine(engine: str, folder: Path, batches: list[int], runs: int) -> dict:
    """Seconds per call for each batch size, in this (fresh) process."""
    import torch

    from mgpe_toolkit.export.runtime import OnnxRunner
    from mgpe_toolkit.weights import load_generator

    net = load_generator(folder / "w.safetensors", "cpu")
    if engine.startswith("onnxruntime"):
        manifest = folder / ("manifest.int8.json" if engine.endswith("int8") else "manifest.json")
        runner = OnnxRunner(manifest, "CPUExecutionProvider")
        return {b: timed(ort_fn(runner, inputs_for(net, b)), runs) for b in batches}
    model = net
    if engine == "torch.compile":
        try:
            model = torch.compile(net)
            torch_fn(model, inputs_for(net, 1))()
        except Exception as exc:  # report, do not fail the benchmark
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    return {b: timed(torch_fn(model, inputs_for(net, b)), runs) for b in batches}


def gpu_rows(folder: Path, batches: list[int], runs: int) -> list[tuple]:
    import onnxruntime as ort
    import torch

    from mgpe_toolkit.export.runtime import OnnxRunner
    from mgpe_toolkit.weights import load_generator

    rows = []
    gpu_runs = max(runs, 50)  # GPU calls take milliseconds: time more of them
    if "CUDAExecutionProvider" in ort.get_available_providers():
        runner = OnnxRunner(folder, "CUDAExecutionProvider,CPUExecutionProvider")
        shapes = load_generator(folder / "w.safetensors", "cpu")  # the inputs' shapes, on the CPU
        for b in batches:
            rows.append(("onnxruntime fp32", f"CUDA ({', '.join(runner.used_providers)})", b,
                         [timed(ort_fn(runner, inputs_for(shapes, b)), gpu_runs)]))
    if torch.cuda.is_available():
        net = load_generator(folder / "w.safetensors", "cuda")
        name = torch.cuda.get_device_name()
        for b in batches:
            inp = inputs_for(net, b, "cuda")
            for label, dtype in (("torch fp32", None), ("torch bf16", torch.bfloat16)):
                rows.append((label, name, b, [timed(torch_fn(net, inp, dtype), gpu_runs, torch.cuda.synchronize)]))
    return rows


def main() -> None:
    from mgpe_toolkit.nets.config import PRESETS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="lean", choices=sorted(PRESETS))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--engine", help=argparse.SUPPRESS)  # internal: time one engine in this process
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine:
        print(json.dumps(one_engine(args.engine, args.dir, args.batches, args.runs)))
        return

    import torch
    from rich.console import Console
    from rich.table import Table

    from mgpe_toolkit.export.onnx import export_onnx
    from mgpe_toolkit.nets.framework import MaskGuidedFramework
    from mgpe_toolkit.weights import save_generator

    cfg = PRESETS[args.config]
    engines = [e for e in CPU_ENGINES if not (args.no_compile and e == "torch.compile")]
    times: dict[tuple[str, int], list[float]] = {}
    con = Console()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.manual_seed(0)
        save_generator(MaskGuidedFramework(cfg).eval(), folder / "w.safetensors", step=0)
        export_onnx(folder / "w.safetensors", folder)
        export_onnx(folder / "w.safetensors", folder, precision="int8", calibrate="synthetic:8", calibrate_count=8)
        for r in range(args.rounds):
            for engine in engines:
                proc = subprocess.run([sys.executable, __file__, "--engine", engine, "--dir", str(folder),
                                       "--runs", str(args.runs), "--batches", *map(str, args.batches)],
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(f"{engine}: {proc.stderr.strip().splitlines()[-1]}")
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                if "error" in result:
                    con.print(f"{engine} unavailable: {result['error']}")
                    engines.remove(engine)
                    continue
                for b, sec in result.items():
                    times.setdefault((engine, int(b)), []).append(sec)
            con.print(f"round {r + 1}/{args.rounds} done")
        gpu = gpu_rows(folder, args.batches, args.runs)
    cpu = f"CPU ({torch.get_num_threads()} threads)"
    rows = [(e, cpu, b, times[(e, b)]) for b in args.batches for e in engines if (e, b) in times] + gpu
    table = Table(title=f"learned stages, `{args.config}` config ({cfg.resolution}²), per edited image; "
                        f"median of {args.rounds} rounds × {args.runs} runs")
    for col in ("engine", "device", "batch", "ms / image", "spread (ms)", "img/s"):
        table.add_column(col, justify="right")
    for engine, device, batch, secs in rows:
        med = statistics.median(secs)
        table.add_row(engine, device, str(batch), f"{1000 * med / batch:.1f}",
                      f"{1000 * min(secs) / batch:.0f}–{1000 * max(secs) / batch:.0f}", f"{batch / med:.1f}")
    con.print(table)
    for b in args.batches:
        eager = times.get(("torch eager", b))
        for e in ("onnxruntime fp32", "onnxruntime int8"):
            if eager and (e, b) in times:
                ratio = statistics.median(eager) / statistics.median(times[(e, b)])
                rounds = ", ".join(f"{t / o:.2f}" for t, o in zip(eager, times[(e, b)]))
                con.print(f"{e} on the CPU at batch {b}: {ratio:.2f}× torch eager (per round {rounds})")


if __name__ == "__main__":
    main()
