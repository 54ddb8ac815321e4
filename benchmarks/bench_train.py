"""Training speed and memory of `mgpe train`, and the inference cost of the paper config.

Usage: python benchmarks/bench_train.py [--steps 20] [--gpu-batch 8] [--compile]
       python benchmarks/bench_train.py --grid [--configs lean paper] [--gpu-batches 8 32] [--steps 20] [--loop]
       python benchmarks/bench_train.py --parser 16 24 [--parser-batch 32] [--steps 20]
Prints: it/s and peak RSS for `tiny` on CPU (synthetic portraits, batch 8, no parser loss), the paper config's
GFLOPs and parameters per edited 256² image (torch.utils.flop_counter), and, when CUDA is present, `lean` at
batch 8 in bf16: it/s and peak GPU memory, with the GPU model, as `mgpe train` runs it, with the data built
in the training process, and for the compute alone (--compile: the compute alone, eager, compiled and with CUDA
graphs). --grid: per config and batch, it/s of the compute alone and with data as `mgpe train` builds it, peak
GPU memory and the GPU's busy fraction; --loop adds run_gan_training's rate (logs, samples, checkpoints; each
call starts its data workers anew, so short runs understate it: gpu_figures.sh times the CLI instead); on CPU,
tiny only. Rates with data workers are timed once the workers' prefetched batches are used up. --parser: the
parser's training step per U-Net width, compute alone (parser_rates).
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace


def run(config, steps: int, device: str, *, workers: int | None = None, fixed: bool = False,
        compile: bool = False, profile: bool = False, **options) -> float:
    """it/s of GANTrainer steps after 3 warm-up steps. Batches come as in `mgpe train` (prefetched by `workers`
    processes, default as there), or, with fixed=True, two prepared batches are reused (compute alone)."""
    from itertools import cycle

    from mgpe_toolkit.data.sets import SyntheticSet
    from mgpe_toolkit.train.gan import GANTrainer
    from mgpe_toolkit.train.loop import PREFETCH, default_workers, step_batches

    with tempfile.TemporaryDirectory() as out:
        trainer = GANTrainer(SyntheticSet(64, config.resolution), out, config, parser_weights=None, device=device,
                             compile=compile, **options)
        cuda = trainer.device.type == "cuda"
        warm = 3  # warm-up (and compilation)
        if fixed:
            items = cycle([trainer.batches(0), trainer.batches(1)])
        else:
            n = default_workers(trainer.device) if workers is None else workers
            warm += PREFETCH * n  # what the workers build ahead during the warm-up is not their steady rate
            items = step_batches(trainer.batches, 0, steps + warm, trainer.device, workers)
        sync = (lambda: __import__("torch").cuda.synchronize()) if cuda else (lambda: None)
        for _ in range(warm):
            trainer.train_step(next(items))
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(next(items))
        sync()
        rate = steps / (time.perf_counter() - t)
        if profile:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as torch_profile

            with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(4):
                    trainer.train_step(next(items))
                sync()
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=50))
        return rate


def union_length(spans: list[tuple[float, float]]) -> float:
    """Total length covered by (start, end) intervals, overlaps counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def gpu_seconds_per_step(trainer, items, steps: int = 5) -> float:
    """Seconds per training step during which the GPU ran a kernel or a copy: the union of the profiler's device
    events. (Summing key_averages' self device times counts each kernel twice: as itself and in the op that
    launched it.) Divided by an unprofiled step's wall time, this is the GPU's busy fraction; the profiler's
    overhead slows the launching CPU, not the kernels."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            trainer.train_step(next(items))
        torch.cuda.synchronize()
    spans = [(e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type != DeviceType.CPU]
    return union_length(spans) / 1e6 / steps


def loop_rate(config, steps: int, device: str) -> tuple[float, float]:
    """(it/s of run_gan_training, what `mgpe train` runs less the progress bar, after 3 steps; seconds of the
    checkpoint and sample grid it writes at its last step, which `mgpe train` writes every checkpoint_every)."""
    from mgpe_toolkit.data.sets import SyntheticSet
    from mgpe_toolkit.train.gan import GANTrainer, run_gan_training

    with tempfile.TemporaryDirectory() as out:
        trainer = GANTrainer(SyntheticSet(64, config.resolution), out, config, parser_weights=None, device=device)
        run_gan_training(trainer, 3, data_description="synthetic")
        sync = (lambda: __import__("torch").cuda.synchronize()) if trainer.device.type == "cuda" else (lambda: None)
        sync()
        t = time.perf_counter()
        trainer.save("synthetic")
        trainer.sample_grid()
        save = time.perf_counter() - t
        t = time.perf_counter()
        run_gan_training(trainer, 3 + steps, data_description="synthetic")
        sync()
        return steps / (time.perf_counter() - t - save), save


def grid(configs: list[str], batches: list[int], steps: int, loop: bool = False) -> None:
    """The --grid table (see the module's docstring)."""
    from itertools import cycle

    import torch

    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.data.sets import SyntheticSet
    from mgpe_toolkit.train.gan import GANTrainer

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if not cuda:
        configs, batches = ["tiny"], [8]
    print(f"device: {torch.cuda.get_device_name() if cuda else 'CPU'}; {steps} steps after 3 warm-up steps; "
          "no parsing loss, no perceptual loss")
    for name in configs:
        for batch in batches:
            cfg = replace(PRESETS[name], lambda_gp=0.0, lambda_vgg=0.0, batch=batch)
            try:
                if cuda:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                compute = run(cfg, steps, device, fixed=True)
                peak = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan")
                busy = float("nan")
                if cuda:
                    with tempfile.TemporaryDirectory() as out:
                        trainer = GANTrainer(SyntheticSet(8, cfg.resolution), out, cfg, parser_weights=None,
                                             device=device)
                        items = cycle([trainer.batches(0), trainer.batches(1)])
                        for _ in range(3):
                            trainer.train_step(next(items))
                        busy = gpu_seconds_per_step(trainer, items) * compute
                        del trainer
                bench = run(cfg, steps, device)
                tail = ""
                if loop:
                    rate, save = loop_rate(cfg, steps, device)
                    tail = f", run_gan_training {rate:.2f} it/s (less one {save:.1f} s checkpoint)"
            except torch.OutOfMemoryError:
                print(f"{name} batch {batch}: out of GPU memory")
                continue
            print(f"{name} batch {batch}: compute alone {compute:.2f} it/s ({compute * batch:.1f} img/s), "
                  f"GPU busy {busy:.0%}, peak {peak:.1f} GiB | with data as `mgpe train`: {bench:.2f} it/s{tail}",
                  flush=True)


def cpu_figures(steps: int) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mgpe_toolkit.data.synthetic import synthetic_portrait
    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.nets.framework import MaskGuidedFramework, onehot
    from mgpe_toolkit.nets.inputs import centres_of, component_crops, dilate_components, foreground_region, input_spec

    tiny = replace(PRESETS["tiny"], lambda_gp=0.0)
    rate = run(tiny, steps, "cpu")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tiny (64², batch {tiny.batch}) on CPU: {rate:.2f} it/s, peak RSS {rss:.0f} MiB")

    p = synthetic_portrait(0, 256)
    x = torch.from_numpy(p.image).permute(2, 0, 1)[None].float() / 127.5 - 1
    m = torch.from_numpy(p.mask)[None]
    for name in ("lean", "paper"):
        cfg = PRESETS[name]
        G = MaskGuidedFramework(cfg).eval()
        mi = torch.from_numpy(dilate_components(m.numpy(), cfg.dilate))
        c = centres_of(mi.numpy())
        crops = component_crops(x, mi, c, **{k: v for k, v in input_spec(cfg).items() if k == "masked_mouth"})
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            G(crops, onehot(mi), torch.from_numpy(c), x, foreground_region(mi))
        params = sum(v.numel() for k, v in G.state_dict().items()
                     if not k.startswith("decoders.") and "running_" not in k and "num_batches" not in k)
        train = sum(v.numel() for v in G.parameters())
        print(f"{name} (256²) inference: {counter.get_total_flops() / 1e9:.1f} GFLOPs per edited image, "
              f"{params / 1e6:.2f} M parameters ({train / 1e6:.2f} M with the image decoders of the local loss)"
              + ("; the authors': 163.6 M, about 127 GFLOPs, 228.2 M" if name == "paper" else ""))
        del G


def gpu_figures(steps: int, batch: int, compile: bool, variants: bool = False) -> None:
    import torch

    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.train.loop import default_workers

    torch.cuda.reset_peak_memory_stats()
    paper = replace(PRESETS["lean"], lambda_gp=0.0, batch=batch)
    name = f"lean (256², batch {paper.batch}, bf16) on {torch.cuda.get_device_name()}"
    if not compile:  # (with --compile, the data's figures are left to --grid)
        rate = run(paper, steps, "cuda")
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        print(f"{name}: {rate:.2f} it/s as `mgpe train` runs it ({default_workers(torch.device('cuda'))} "
              f"data workers), peak {peak:.1f} GiB")
        print(f"{name}: {run(paper, steps, 'cuda', workers=0):.2f} it/s with data built in the training process")
    print(f"{name}: {run(paper, steps, 'cuda', fixed=True):.2f} it/s compute alone (batches reused)", flush=True)
    if compile:
        for what, option in (("CUDA graphs (--graphs)", {"graphs": True}),
                             ("networks compiled (--compile)", {"compile": True})):
            try:
                print(f"{name}: {run(paper, steps, 'cuda', fixed=True, **option):.2f} it/s compute alone, {what}",
                      flush=True)
            except Exception as exc:  # one variant failing must not cost the figures after it
                print(f"{name}: {what} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    if variants:
        for amp in (True, False):
            for cl in (True, False):
                what = f"{'bf16 autocast' if amp else 'fp32 (TF32 convolutions)'}, {'channels-last' if cl else 'NCHW'}"
                print(f"paper, batch {paper.batch}, compute alone, {what}: "
                      f"{run(paper, steps, 'cuda', fixed=True, amp=amp, channels_last=cl):.2f} it/s")
        run(paper, 3, "cuda", fixed=True, profile=True)


def parser_rates(bases: list[int], batch: int, steps: int, device: str) -> None:
    """Compute-alone it/s of the parser's training step (256², one batch of synthetic portraits reused), per U-Net
    width: as `mgpe train parser` runs it (on CUDA bf16 autocast with channels-last memory, on the CPU fp32 NCHW),
    then on CUDA in fp32 NCHW, on the CPU in bf16 autocast and/or channels-last.
    The last line, `parser rate R it/s`, is what gpu_parser.sh sizes its schedule by (first base, default)."""
    import torch

    from mgpe_toolkit.data.sets import SyntheticSet
    from mgpe_toolkit.train.parser import ParserTrainConfig, ParserTrainer

    cuda = torch.device(device).type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    first = None
    for base in bases:
        others = [{"amp": False, "channels_last": False}] if cuda else \
            [{"amp": True}, {"channels_last": True}, {"amp": True, "channels_last": True}]
        for what, options in [("default", {})] + [("other", o) for o in others]:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            with tempfile.TemporaryDirectory() as out:
                cfg = ParserTrainConfig(size=256, base=base, batch=batch, augment="none")
                trainer = ParserTrainer(SyntheticSet(16, 256), out, cfg, device=device, **options)
                item = trainer.batches(0)
                for _ in range(3):
                    trainer.train_step(item)
                sync()
                t = time.perf_counter()
                for _ in range(steps):
                    trainer.train_step(item)
                sync()
                rate = steps / (time.perf_counter() - t)
                peak = f", peak {torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB" if cuda else ""
                mode = f"{'bf16 autocast' if trainer.amp else 'fp32'}, " \
                       f"{'channels-last' if trainer.channels_last else 'NCHW'}"
                print(f"parser base {base}, batch {batch}, 256², {mode}{' (default)' * (what == 'default')}: "
                      f"{rate:.2f} it/s compute alone{peak}", flush=True)
                if first is None:
                    first = rate
    print(f"parser rate {first:.2f} it/s")


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--gpu-batch", type=int, default=8)
    ap.add_argument("--compile", action="store_true",
                    help="also time the compiled networks on the GPU, without and with CUDA graphs")
    ap.add_argument("--gpu-only", action="store_true", help="skip the CPU and FLOP figures")
    ap.add_argument("--variants", action="store_true",
                    help="also time bf16/fp32 x channels-last/NCHW on the GPU and print a kernel profile")
    ap.add_argument("--grid", action="store_true", help="the configs x batches table (module docstring)")
    ap.add_argument("--configs", nargs="+", default=["lean", "paper"])
    ap.add_argument("--gpu-batches", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--loop", action="store_true", help="--grid: also time run_gan_training")
    ap.add_argument("--parser", nargs="+", type=int, metavar="BASE",
                    help="time the parser's training step instead, per U-Net width (parser_rates)")
    ap.add_argument("--parser-batch", type=int, default=32)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if args.parser:
        parser_rates(args.parser, args.parser_batch, args.steps, "cuda" if torch.cuda.is_available() else "cpu")
        return
    if args.grid:
        grid(args.configs, args.gpu_batches, args.steps, args.loop)
        return
    if not args.gpu_only:
        cpu_figures(args.steps)
    if torch.cuda.is_available():
        gpu_figures(args.steps, args.gpu_batch, args.compile, args.variants)
    else:
        print("no CUDA GPU: GPU figures skipped")


if __name__ == "__main__":
    main()
