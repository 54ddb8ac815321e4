"""Training the paper's framework (Eq. 1-9) with the (1+1) strategy: even steps paired (x_s = x_t, every loss),
odd steps unpaired (x_s != x_t, lambda_global = lambda_FM = 0)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError, UsageError
from ..nets.config import GANConfig
from ..weights import file_digest
from .data import BatchMaker, Dataset, SampleSource, batch_tensors, stack_samples, to_training
from .loop import RunLog, Warnings, pick_device, step_batches, step_rng

CHECKPOINT = "checkpoint.safetensors"
WEIGHTS = "mgpe-gan.safetensors"
LOSS_NAMES = ("local", "global", "sigmoid", "fm", "gp", "kl", "total", "d")


@dataclass
class Batch:
    source_crops: dict
    source_masks: "object"
    target_image: "object"
    target_masks: "object"
    target_onehot: "object"
    target_centres: "object"
    removed: "object"
    source_image: "object"


@dataclass
class StepData:
    """A step's samples as uint8 tensors plus the eye/mouth centres: what GANBatches (in a data worker) sends.
    `target` is None on paired steps (x_t = x_s)."""
    source: "object"
    source_masks: "object"
    source_centres: np.ndarray
    target: "object" = None
    target_masks: "object" = None
    target_centres: np.ndarray | None = None

    def pin_memory(self) -> "StepData":  # called by torch's DataLoader
        return StepData(**{f.name: v.pin_memory() if hasattr(v, "pin_memory") else v
                           for f in fields(self) for v in [getattr(self, f.name)]})


class GANBatches(BatchMaker):
    """The samples of a training step, a function of the step alone: even steps paired (x_s = x_t), odd steps
    a different target face."""

    def __call__(self, step: int) -> tuple[StepData, list[str]]:
        from ..nets.framework import centres_of

        paired = step % 2 == 0
        rng = step_rng(self.seed, step)
        n = len(self.source.dataset)
        src_idx = rng.integers(0, n, self.batch)
        if paired or n < 2:
            tgt_idx = src_idx
        else:  # a different face: shift by 1..n-1
            tgt_idx = (src_idx + rng.integers(1, n, self.batch)) % n
        flips = (rng.random(self.batch) < 0.5).tolist()
        xs, ms = stack_samples([self.source.get(int(i)) for i in src_idx], flips)
        data = StepData(xs, ms, centres_of(ms.numpy()))
        if not paired:
            xt, mt = stack_samples([self.source.get(int(i)) for i in tgt_idx], flips[::-1])
            data.target, data.target_masks, data.target_centres = xt, mt, centres_of(mt.numpy())
        return data, self.take_messages()


class GANTrainer:
    def __init__(self, dataset: Dataset, out: str | Path, config: GANConfig, *, parser_weights: str | Path | None,
                 device: str = "auto", compile: bool = False, warn: Callable[[str], None] | None = None,
                 amp: bool | None = None, channels_last: bool | None = None):
        """amp (bf16 autocast) and channels_last default to True on CUDA, False elsewhere."""
        import torch

        from ..nets.discriminator import MultiScaleDiscriminator
        from ..nets.framework import MaskGuidedFramework

        self.config, self.out = config, Path(out)
        self.device = pick_device(device)
        self.batches = GANBatches(dataset, config.resolution, config.batch, config.seed)
        self.warnings = Warnings(warn)
        torch.manual_seed(config.seed)
        self.G = MaskGuidedFramework(config).to(self.device)
        self.D = MultiScaleDiscriminator(config.disc_channels, config.disc_layers).to(self.device)
        betas = (config.beta1, config.beta2)
        fused = self.device.type == "cuda"  # one kernel per optimiser step instead of several per tensor
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas, fused=fused)
        self.parser = None
        self.parser_info: dict = {}
        if config.lambda_gp > 0:
            if parser_weights is None:
                raise UsageError("the parsing loss (lambda_gp > 0) needs a frozen parser: pass --parser-weights FILE "
                                 "(train one with `mgpe train parser`) or set lambda_gp=0")
            from ..stages.parse_unet import load_unet

            self.parser, self.parser_size = load_unet(parser_weights, str(self.device))
            for p in self.parser.parameters():
                p.requires_grad_(False)
            self.parser_info = {"parser": str(parser_weights), "parser_sha256_16": file_digest(Path(parser_weights))}
        cuda = self.device.type == "cuda"
        self.amp = cuda if amp is None else amp
        if cuda if channels_last is None else channels_last:
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolution once
        if compile:  # in place (state_dict keys unchanged), each network the training step calls
            for module in (*self.G.encoders.values(), *self.G.decoders.values(), self.G.mask_encoder,
                           self.G.generator, self.G.bg_encoder, self.G.fuser, self.D):
                module.compile(dynamic=False)
        self.step = 0

    # -- data ---------------------------------------------------------------------------------------------
    def receive(self, item: tuple[StepData, list[str]]) -> Batch:
        """The training tensors, on the training device, of an item from `batches` (or the prefetching
        loader); reports its warnings."""
        import torch

        from ..nets.framework import component_crops, foreground_region, onehot

        data, messages = item
        self.warnings(messages)
        xs, ms = to_training(data.source, data.source_masks, self.device)
        xt, mt, centres = xs, ms, data.source_centres
        if data.target is not None:
            xt, mt = to_training(data.target, data.target_masks, self.device)
            centres = data.target_centres
        return Batch(source_crops=component_crops(xs, ms, data.source_centres), source_masks=ms, source_image=xs,
                     target_image=xt, target_masks=mt, target_onehot=onehot(mt),
                     target_centres=torch.from_numpy(centres).to(self.device), removed=foreground_region(mt))

    # -- one step -----------------------------------------------------------------------------------------
    def train_step(self, item: tuple[StepData, list[str]] | None = None) -> dict[str, float]:
        """One (1+1) step on `item` (from `self.batches(self.step)`, built here when None)."""
        import torch
        import torch.nn.functional as F

        from ..nets.local import ComponentEncoder, kl_divergence

        cfg = self.config
        paired = self.step % 2 == 0
        b = self.receive(item if item is not None else self.batches(self.step))
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed * 1_000_003 + self.step)
        self.G.train()
        self.D.train()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else _null()
        with autocast:
            codes = self.G.encode(b.source_crops)
            feats = {n: ComponentEncoder.sample(mu, lv, gen) for n, (mu, lv) in codes.items()}
            local = sum(0.5 * F.mse_loss(self.G.decoders[n](f), b.source_crops[n]) for n, f in feats.items())
            fg = self.G.generate(feats, b.target_onehot, b.target_centres)
            fake = self.G.fuse(fg, b.target_image, b.removed)

        # Discriminators (Eq. 3): real target with its mask vs the result on the target mask.
        with autocast:
            d_real = self.D(b.target_image, b.target_onehot)
            d_fake = self.D(fake.detach(), b.target_onehot)
            loss_d = sum(F.binary_cross_entropy_with_logits(r[-1], torch.ones_like(r[-1])) +
                         F.binary_cross_entropy_with_logits(f[-1], torch.zeros_like(f[-1]))
                         for r, f in zip(d_real, d_fake))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.float().backward()
        self.opt_d.step()

        # Generator (Eq. 9).
        with autocast:
            d_fake = self.D(fake, b.target_onehot)
            sigmoid = sum(F.binary_cross_entropy_with_logits(f[-1], torch.ones_like(f[-1])) for f in d_fake)
            zero = fake.new_zeros(())
            fm = zero
            glob = zero
            if paired:
                glob = 0.5 * F.mse_loss(fake, b.source_image)
                layers = slice(None) if cfg.fm_all_layers else slice(-1, None)
                fm = sum(0.5 * F.mse_loss(f, r.detach()) for fs, rs in zip(d_fake, d_real)
                         for f, r in zip(fs[layers], rs[layers]))
            gp = zero
            if self.parser is not None:
                x = fake
                if self.parser_size != cfg.resolution:
                    x = F.interpolate(fake, size=(self.parser_size,) * 2, mode="bilinear", align_corners=False)
                logits = self.parser(x)
                if self.parser_size != cfg.resolution:
                    logits = F.interpolate(logits, size=(cfg.resolution,) * 2, mode="bilinear", align_corners=False)
                gp = F.cross_entropy(logits.float(), b.target_masks.long())
            kl = zero
            if cfg.vae:
                kl = sum(kl_divergence(mu, lv) for mu, lv in codes.values() if lv is not None)
            total = (cfg.lambda_local * local + cfg.lambda_global * glob + cfg.lambda_gd * (sigmoid + cfg.lambda_fm * fm)
                     + cfg.lambda_gp * gp + cfg.lambda_kl * kl)
        self.opt_g.zero_grad(set_to_none=True)
        total.float().backward()
        self.opt_g.step()
        self.step += 1
        self.last = (b, fake.detach())
        values = dict(local=local, sigmoid=sigmoid, fm=fm, gp=gp, kl=kl, total=total, d=loss_d)
        if paired:
            values["global"] = glob
        # One host-device synchronisation per step, not one per loss.
        return dict(zip(values, torch.stack([v.detach().float() for v in values.values()]).tolist()))

    # -- measurement --------------------------------------------------------------------------------------
    def evaluate(self, dataset: Dataset, limit: int = 16) -> dict[str, float]:
        """Paired reconstruction (L_global, L_local) and the parser's agreement with the target mask on
        `limit` samples of `dataset`, without training."""
        import torch
        import torch.nn.functional as F

        from ..nets.framework import centres_of, component_crops, foreground_region, onehot

        source = SampleSource(dataset, self.config.resolution)
        self.G.eval()
        glob = local = agree = 0.0
        k = min(limit, len(dataset))
        with torch.no_grad():
            for i in range(k):
                x, m = batch_tensors([source.get(i)], [False])
                x, m = x.to(self.device), m.to(self.device)
                crops = component_crops(x, m, centres_of(m.cpu().numpy()))
                codes = self.G.encode(crops)
                local += float(sum(0.5 * F.mse_loss(self.G.decoders[n](mu), crops[n]) for n, (mu, _) in codes.items()))
                fake, _ = self.G(crops, onehot(m), torch.from_numpy(centres_of(m.cpu().numpy())).to(self.device), x,
                                 foreground_region(m))
                glob += float(0.5 * F.mse_loss(fake, x))
                if self.parser is not None:
                    y = fake if self.parser_size == self.config.resolution else F.interpolate(
                        fake, size=(self.parser_size,) * 2, mode="bilinear", align_corners=False)
                    pred = self.parser(y)
                    if self.parser_size != self.config.resolution:
                        pred = F.interpolate(pred, size=m.shape[-2:], mode="bilinear", align_corners=False)
                    agree += float((pred.argmax(1) == m).float().mean())
        return {"global": glob / k, "local": local / k, "mask_accuracy": agree / k if self.parser is not None else float("nan")}

    # -- files --------------------------------------------------------------------------------------------
    def save(self, data_description: str = "", target: int | None = None) -> Path:
        """Checkpoint + inference weights and card; with the run's `target` step, the card says whether the
        run got there (a killed run's weights must not pass for finished ones)."""
        from .checkpoint import run_state, save_checkpoint

        self.out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.out / CHECKPOINT, step=self.step, models={"G": self.G, "D": self.D},
                        optimizers={"G": self.opt_g, "D": self.opt_d}, config=self.config.to_dict(),
                        extra={**self.parser_info, "data": data_description})
        return export_generator(self.G, self.out / WEIGHTS, step=self.step, data=data_description,
                                extra={**self.parser_info, **run_state(self.step, target)})

    def resume(self, data_description: str | None = None) -> bool:
        from .checkpoint import load_into, same_run

        path = self.out / CHECKPOINT
        if not path.is_file():
            return False
        meta = load_into(path, {"G": self.G, "D": self.D}, {"G": self.opt_g, "D": self.opt_d},
                         check=lambda m: same_run(path, m, self.config.to_dict(), data_description))
        self.step = meta["step"]
        return True

    def sample_grid(self):
        """(3, H, W) float in [0, 1]: rows of source | target mask | result from the last step."""
        import torch

        from ..labels import colorize

        b, fake = self.last
        rows = []
        for i in range(min(4, fake.shape[0])):
            src = (b.source_image[i].float().cpu() + 1) / 2
            mask = torch.from_numpy(colorize(b.target_masks[i].cpu().numpy())).permute(2, 0, 1).float() / 255
            res = (fake[i].float().cpu().clamp(-1, 1) + 1) / 2
            rows.append(torch.cat([src, mask, res], 2))
        return torch.cat(rows, 1)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def export_generator(G, path: Path, *, step: int, data: str = "", extra: dict | None = None) -> Path:
    """Inference weights of the framework (no decoders, no discriminators) + model card `NAME.json`."""
    import json

    from safetensors.torch import save_file

    from ..io import atomic_path, write_json

    state = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items() if not k.startswith("decoders.")}
    meta = {"network": "mgpe-gan", "config": json.dumps(G.config.to_dict()), "step": str(step)}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    write_json(path.with_suffix(".json"), {
        "network": "mask-guided portrait editing framework (mgpe_toolkit.nets.framework)",
        "config": G.config.to_dict(), "steps": step, "data": data, **(extra or {}),
        "parameters_inference": int(sum(v.numel() for v in state.values())),
    })
    return path


def load_generator(path: str | Path, device: str = "cpu"):
    """The framework in eval mode from inference weights written by export_generator."""
    import json

    import torch

    from ..nets.framework import MaskGuidedFramework
    from ..weights import read_safetensors

    path = Path(path)
    state, meta = read_safetensors(path, "mgpe-gan")
    G = MaskGuidedFramework(GANConfig.from_dict(json.loads(meta["config"])))
    missing, unexpected = G.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("decoders.")]
    if missing or unexpected:
        raise InputError(path, f"weights do not fit the framework (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return G.eval().to(torch.device(device))


def run_gan_training(trainer: GANTrainer, steps: int, *, data_description: str,
                     on_step: Callable[[int, dict], None] | None = None, workers: int | None = None) -> list[dict]:
    """Train until `steps` total steps; `workers` data-loading processes (None: default_workers)."""
    from ..io import write_image

    log = RunLog(trainer.out)
    log.truncate_after(trainer.step)
    history = []
    cfg = trainer.config
    try:
        for item in step_batches(trainer.batches, trainer.step, steps, trainer.device, workers):
            losses = trainer.train_step(item)
            history.append(losses)
            log.scalars(trainer.step, {f"loss/{k}": v for k, v in losses.items()})
            if on_step:
                on_step(trainer.step, losses)
            if trainer.step % cfg.image_every == 0 or trainer.step == steps:
                grid = trainer.sample_grid()
                log.images(trainer.step, "source|target mask|result", grid)
                write_image(trainer.out / "samples" / f"step-{trainer.step:07d}.png",
                            (grid.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8))
            if trainer.step % cfg.checkpoint_every == 0 or trainer.step == steps:
                trainer.save(data_description, target=steps)
    finally:
        log.close()
    return history
