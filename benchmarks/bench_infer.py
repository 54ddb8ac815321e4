"""Inference speed of the learned stages (encoders + generator + fuser) for one edited image.

Usage: python benchmarks/bench_infer.py [--config paper] [--batches 1 16] [--runs 5] [--no-compile]
Random weights (speed does not depend on them). Prints ms/image and img/s for torch eager, torch.compile
(where it works) and onnxruntime (CPU, and CUDA with onnxruntime-gpu), plus torch on CUDA in fp32/bf16 when
a GPU is present, with the device names.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


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


def main() -> None:
    import onnxruntime as ort
    import torch
    from rich.console import Console
    from rich.table import Table

    from mgpe_toolkit.export.onnx import example_inputs, export_onnx
    from mgpe_toolkit.export.runtime import OnnxRunner
    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.nets.framework import COMPONENT_NAMES, MaskGuidedFramework
    from mgpe_toolkit.train.gan import export_generator

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="paper", choices=sorted(PRESETS))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    cfg = PRESETS[args.config]
    torch.manual_seed(0)
    net = MaskGuidedFramework(cfg).eval()
    rows = []
    cpu_name = f"CPU ({torch.get_num_threads()} threads)"

    def torch_fn(model, inputs, dtype=None):
        def run():
            with torch.no_grad(), (torch.autocast("cuda", dtype=dtype) if dtype else torch.autocast("cpu", enabled=False)):
                feats = {n: model.encoders[n](inputs["crops"][n])[0] for n in COMPONENT_NAMES}
                fg = model.generate(feats, inputs["onehot"], inputs["centres"])
                return model.fuse(fg, inputs["target"], inputs["removed"])
        return run

    def inputs_for(batch, device="cpu"):
        ex = example_inputs(cfg, batch)
        return {"crops": {n: t.to(device) for n, t in ex["encoders"].items()},
                "onehot": ex["generator"]["mask_onehot"].to(device), "centres": ex["generator"]["centres"].to(device),
                "target": ex["fuser"]["target_image"].to(device), "removed": ex["fuser"]["removed"].to(device)}

    with tempfile.TemporaryDirectory() as tmp:
        export_generator(net, Path(tmp) / "w.safetensors", step=0)
        export_onnx(Path(tmp) / "w.safetensors", Path(tmp) / "exp")
        runners = {"CPU": OnnxRunner(Path(tmp) / "exp", "CPUExecutionProvider")}
        if "CUDAExecutionProvider" in ort.get_available_providers():
            runners["CUDA"] = OnnxRunner(Path(tmp) / "exp", "CUDAExecutionProvider,CPUExecutionProvider")
        compiled = None
        if not args.no_compile:
            try:
                compiled = torch.compile(net)
                torch_fn(compiled, inputs_for(1))()
            except Exception as exc:  # report, do not fail the benchmark
                print(f"torch.compile unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
                compiled = None
        # onnxruntime first: torch's OpenMP workers keep spinning for a while after each op and would steal
        # the cores from onnxruntime's own thread pool.
        time.sleep(1.0)
        for batch in args.batches:
            inp = inputs_for(batch)
            np_in = {"crops": {n: t.numpy() for n, t in inp["crops"].items()},
                     **{k: inp[k].numpy() for k in ("onehot", "centres", "target", "removed")}}
            for where, runner in runners.items():
                def ort_run(r=runner):
                    feats = r.encode(np_in["crops"])
                    return r.render(feats, np_in["onehot"], np_in["centres"], np_in["target"], np_in["removed"])
                rows.append(("onnxruntime", f"{where} ({', '.join(runner.used_providers)})", batch,
                             timed(ort_run, args.runs)))
        for batch in args.batches:
            inp = inputs_for(batch)
            rows.append(("torch eager", cpu_name, batch, timed(torch_fn(net, inp), args.runs)))
            if compiled is not None:
                rows.append(("torch.compile", cpu_name, batch, timed(torch_fn(compiled, inp), args.runs)))
            if torch.cuda.is_available():
                gpu = net.to("cuda")
                ginp = inputs_for(batch, "cuda")
                name = torch.cuda.get_device_name()
                for label, dtype in (("torch fp32", None), ("torch bf16", torch.bfloat16)):
                    gpu_runs = max(args.runs, 50)  # GPU calls take milliseconds: time more of them
                    rows.append((label, name, batch, timed(torch_fn(gpu, ginp, dtype), gpu_runs, torch.cuda.synchronize)))
                net.to("cpu")
    table = Table(title=f"learned stages, `{args.config}` config ({cfg.resolution}²), per edited image")
    for col in ("engine", "device", "batch", "ms / image", "img/s"):
        table.add_column(col, justify="right")
    for engine, device, batch, seconds in rows:
        table.add_row(engine, device, str(batch), f"{1000 * seconds / batch:.1f}", f"{batch / seconds:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
