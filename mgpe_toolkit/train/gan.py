"""Training the paper's framework (Eq. 1-9) with the (1+1) strategy: even steps paired (x_s = x_t, every loss),
odd steps unpaired (x_s != x_t, lambda_global = lambda_FM = 0)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np

from . import ddp, losses
from ..errors import UsageError
from ..nets.config import GANConfig
from ..weights import CHECKPOINT, file_digest, load_unet, save_generator
from ..weights import GAN_WEIGHTS as WEIGHTS
from ..data.sets import Dataset, SampleSource
from .data import BatchMaker, batch_tensors, stack_samples, to_training
from .loop import (RunLog, Warnings, autocast, cuda_speedups, pick_device, precision_name, run_steps,
                   step_rng, to_host)

LOSS_NAMES = ("local", "global", "vgg", "sigmoid", "fm", "gp", "kl", "total", "d")


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
    a different target face; with `paired_only` (schedule both) every step is paired and the unpaired branch
    permutes features within the batch. Masks are dilated by `dilate` (eyes and mouth)."""

    paired_only = False
    dilate = 1.0
    flip = True

    def __call__(self, step: int) -> tuple[StepData, list[str]]:
        import torch

        from ..nets.inputs import centres_of, dilate_components

        paired = step % 2 == 0 or self.paired_only
        rng = step_rng(self.seed, step)
        n = len(self.source.dataset)
        src_idx = rng.integers(0, n, self.batch)
        if paired or n < 2:
            tgt_idx = src_idx
        else:  # a different face: shift by 1..n-1
            tgt_idx = (src_idx + rng.integers(1, n, self.batch)) % n
        flips = ((rng.random(self.batch) < 0.5) & self.flip).tolist()
        target_flips = flips[::-1]
        src_idx, tgt_idx, flips, target_flips = (a[self.rows] for a in (src_idx, tgt_idx, flips, target_flips))

        def stack(idx, flips):
            x, m = stack_samples([self.source.get(int(i)) for i in idx], flips)
            return x, torch.from_numpy(dilate_components(m.numpy(), self.dilate))

        xs, ms = stack(src_idx, flips)
        data = StepData(xs, ms, centres_of(ms.numpy()))
        if not paired:
            xt, mt = stack(tgt_idx, target_flips)
            data.target, data.target_masks, data.target_centres = xt, mt, centres_of(mt.numpy())
        return data, self.take_messages()


class GANTrainer:
    def __init__(self, dataset: Dataset, out: str | Path, config: GANConfig, *, parser_weights: str | Path | None,
                 device: str = "auto", compile: bool = False, warn: Callable[[str], None] | None = None,
                 amp: bool | None = None, channels_last: bool | None = None, graphs: bool = False,
                 compact: bool = False):
        """amp (bf16 autocast) and channels_last default to True on CUDA, False elsewhere. graphs: compile the
        networks with CUDA graphs (torch.compile mode reduce-overhead), one CUDA process only. compact: write
        compact checkpoints (train.checkpoint: Adam's moments in 8 bits, about half the bytes)."""
        import torch

        from ..nets.discriminator import MultiScaleDiscriminator
        from ..nets.framework import MaskGuidedFramework

        self.config, self.out, self.compact = config, Path(out), compact
        self.world, self.device = ddp.join(pick_device(device))
        if compact and self.world.active:  # rank 0 alone stores, and would alone take the stored moments
            raise UsageError("compact checkpoints are for one process: leave --compact-checkpoint out under torchrun")
        if graphs and (self.device.type != "cuda" or self.world.active):
            where = f"{self.world.size} processes" if self.world.active else f"device {self.device}"
            raise UsageError(f"--graphs (CUDA graphs) needs one process on a CUDA GPU, not {where}: leave it out, "
                             "or use --compile")
        self.graphs = graphs
        self.batches = GANBatches(dataset, config.resolution, config.batch, config.seed)
        self.rows = self.batches.rows = ddp.share(config.batch, self.world)
        self.batches.paired_only = config.schedule == "both"
        self.batches.dilate = config.dilate
        self.batches.flip = config.losses != "paper"  # the authors' code does not mirror
        self.steps_per_epoch = max(1, len(dataset) // config.batch)
        self.warnings = Warnings(warn)
        torch.manual_seed(config.seed)
        self.G = MaskGuidedFramework(config).to(self.device)
        make_d = lambda: MultiScaleDiscriminator(config.disc_channels, config.disc_layers,  # noqa: E731
                                                 norm=config.disc_norm, padding=config.disc_padding)
        # D judges paired results; D2 (two_discriminators) the unpaired ones, else D judges both.
        self.D = make_d()
        self.D2 = make_d() if config.two_discriminators else None
        if config.init == "normal":
            from ..nets.paper import init_normal

            for d in (self.D, self.D2):
                if d is not None:
                    init_normal(d)
        self.G = ddp.sync_batchnorm(self.G, self.world, self.device)
        self.D = ddp.sync_batchnorm(self.D.to(self.device), self.world, self.device)
        self.D2 = ddp.sync_batchnorm(self.D2.to(self.device), self.world, self.device) if self.D2 is not None else None
        betas = (config.beta1, config.beta2)
        fused = self.device.type == "cuda"  # one kernel per optimiser step instead of several per tensor
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas, fused=fused)
        d_params = [*self.D.parameters(), *(self.D2.parameters() if self.D2 is not None else [])]
        self.opt_d = torch.optim.Adam(d_params, lr=config.lr, betas=betas, fused=fused)
        self.vgg = None
        self.vgg_info: dict = {}
        self.parser = None
        self.parser_info: dict = {}
        if config.lambda_gp > 0:
            if parser_weights is None:
                raise UsageError("the parsing loss (lambda_gp > 0) needs a frozen parser: pass --parser-weights FILE "
                                 "(train one with `mgpe train parser`) or set lambda_gp=0")
            self.parser, self.parser_size = load_unet(parser_weights, str(self.device))
            for p in self.parser.parameters():
                p.requires_grad_(False)
            self.parser_info = {"parser": str(parser_weights), "parser_sha256_16": file_digest(Path(parser_weights))}
        self.amp, _ = cuda_speedups(self.device, amp, channels_last, self.G, self.D, self.D2)
        if compile or graphs:  # in place (state_dict keys unchanged), each network the training step calls
            mode = "reduce-overhead" if graphs else None
            for module in self.G.children():
                for m in (module.values() if isinstance(module, torch.nn.ModuleDict) else [module]):
                    m.compile(dynamic=False, mode=mode)
            for d in (self.D, self.D2):
                if d is not None:
                    d.compile(dynamic=False, mode=mode)
        # What a step calls: the networks themselves, or under DistributedDataParallel with several processes.
        self._generator = ddp.parallel(self.G, self.world, self.device, closure=True)
        self._discriminators = {k: ddp.parallel(d, self.world, self.device) for k, d in self._models().items()
                                if k != "G"}
        self.step = 0

    # -- data ---------------------------------------------------------------------------------------------
    def crops(self, images, masks, centres):
        """The encoders' inputs as this config takes them (masked mouth for the paper arch, the whole face for
        the embedding=global ablation)."""
        from ..nets.inputs import component_crops

        cfg = self.config
        return component_crops(images, masks, centres, masked_mouth=cfg.arch == "paper",
                               face=cfg.embedding == "global")

    def receive(self, item: tuple[StepData, list[str]]) -> Batch:
        """The training tensors, on the training device, of an item from `batches` (or the prefetching
        loader); reports its warnings."""
        import torch

        from ..nets.framework import onehot
        from ..nets.inputs import foreground_region

        data, messages = item
        self.warnings(messages)
        xs, ms = to_training(data.source, data.source_masks, self.device)
        xt, mt, centres = xs, ms, data.source_centres
        if data.target is not None:
            xt, mt = to_training(data.target, data.target_masks, self.device)
            centres = data.target_centres
        return Batch(source_crops=self.crops(xs, ms, data.source_centres), source_masks=ms, source_image=xs,
                     target_image=xt, target_masks=mt, target_onehot=onehot(mt),
                     target_centres=torch.from_numpy(centres).to(self.device), removed=foreground_region(mt))

    # -- one step -----------------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Constant for lr_constant, then linear decay to 0 over lr_decay (steps or epochs; decay 0: constant)."""
        cfg = self.config
        unit = self.steps_per_epoch if cfg.lr_unit == "epochs" else 1
        if cfg.lr_decay <= 0:
            return cfg.lr
        done = (step - cfg.lr_constant * unit) / (cfg.lr_decay * unit)
        return cfg.lr * float(min(1.0, max(0.0, 1.0 - done)))

    def train_step(self, item: tuple[StepData, list[str]] | None = None) -> dict[str, float]:
        """One (1+1) step on `item` (from `self.batches(self.step)`, built here when None): schedule alternate
        runs the paired branch on even steps and the unpaired one on odd steps; schedule both runs both, the
        unpaired with the component features permuted across the batch."""
        import torch

        from ..nets.local import kl_divergence

        cfg = self.config
        for group in (*self.opt_g.param_groups, *self.opt_d.param_groups):
            group["lr"] = self.lr_at(self.step)
        b = self.receive(item if item is not None else self.batches(self.step))
        if self.graphs:  # the graphs' outputs of the last step may be overwritten from here on
            torch.compiler.cudagraph_mark_step_begin()
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed * 1_000_003 + self.step)
        self.G.train()
        self.D.train()
        if self.D2 is not None:
            self.D2.train()
        mixed = autocast(self.device, self.amp)  # bf16 on CUDA by default (cuda_speedups)
        with mixed:
            codes, local, fakes = self._generator(self._generate, b, gen)

        # Discriminators (Eq. 3): the real target with its mask against each branch's result.
        d_scale = 0.5 if cfg.losses == "paper" else 1.0
        with mixed:
            loss_d = 0
            for k, fake in fakes.items():
                d = self._disc(k)
                loss_d = loss_d + d_scale * (losses.bce(d(b.target_image, b.target_onehot), True)
                                             + losses.bce(d(fake.detach(), b.target_onehot), False))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.float().backward()
        self.opt_d.step()

        # Generator (Eq. 9); feature matching compares with real features from D as it is now (after its step).
        # D's gradients from this backward are never used: not averaged over ranks either.
        with ddp.no_sync(self._discriminators["D"]), ddp.no_sync(self._discriminators.get("D2")), mixed:
            zero = local.new_zeros(())
            sigmoid = fm = glob = vgg = gp = zero
            for k, fake in fakes.items():
                d = self._disc(k)
                d_fake = d(fake, b.target_onehot)
                sigmoid = sigmoid + losses.bce(d_fake, True)
                if k == "paired":
                    with torch.no_grad():
                        d_real = d(b.target_image, b.target_onehot)
                    fm = losses.feature_matching(d_fake, d_real, cfg.losses, cfg.fm_all_layers)
                    glob = losses.global_(fake, b.source_image, b.target_masks, cfg.losses)
                    if self.vgg is not None and cfg.lambda_vgg > 0:
                        vgg = losses.perceptual(self.vgg, fake, b.source_image, b.target_masks)
                if self.parser is not None and (k == "unpaired" or cfg.losses == "lean"):
                    gp = gp + losses.parsing(self.parser, self.parser_size, fake, b.target_masks, cfg.losses,
                                             self.world)
            kl = zero
            if cfg.vae and cfg.lambda_kl > 0:
                kl = sum(kl_divergence(mu, lv) for mu, lv in codes.values() if lv is not None)
            total = (cfg.lambda_local * local + cfg.lambda_global * glob + cfg.lambda_vgg * vgg + cfg.lambda_gd * sigmoid
                     + cfg.lambda_fm * fm + cfg.lambda_gp * gp + cfg.lambda_kl * kl)
            self.opt_g.zero_grad(set_to_none=True)
            total.float().backward()
        self.opt_g.step()
        self.step += 1
        shown = fakes.get("paired", fakes.get("unpaired")).detach()  # the grid's source is the paired one's
        self.last = (b, shown.clone() if self.graphs else shown)  # a graph's output lives until its next replay
        values = dict(local=local, sigmoid=sigmoid, fm=fm, gp=gp, kl=kl, total=total, d=loss_d)
        if "paired" in fakes:
            values["global"] = glob
            if self.vgg is not None and cfg.lambda_vgg > 0:
                values["vgg"] = vgg
        # One host-device synchronisation per step, not one per loss; with several processes, the whole batch's.
        stacked = ddp.mean_over_ranks(torch.stack([v.detach().float() for v in values.values()]), self.world)
        host, self.device_wait = to_host(stacked)
        return dict(zip(values, host))

    def _generate(self, b: Batch, gen):
        """The generator's part of a step, one call (DistributedDataParallel syncs what it computes): component
        codes, L_local, and each branch's fused result."""
        cfg = self.config
        codes = self.G.encode(b.source_crops)
        feats = {n: self._sample(mu, lv, gen) for n, (mu, lv) in codes.items()}
        local = losses.local(self.G.decoders, feats, b.source_crops, b.source_masks, cfg.losses)
        if cfg.schedule == "both":
            swapped = {n: ddp.roll(f, 1, self.world) for n, f in feats.items()}  # another face's components
            branches = {"paired": feats, "unpaired": swapped}
        else:
            branches = {"paired" if self.step % 2 == 0 else "unpaired": feats}
        fakes = {k: self.G.fuse(self.G.generate(f, b.target_onehot, b.target_centres), b.target_image, b.removed)
                 for k, f in branches.items()}
        return codes, local, fakes

    def _sample(self, mu, logvar, gen):
        """A VAE code mu + eps·sigma with eps drawn for the whole step's batch, this rank's rows taken: the
        noise of step k is the same at any world size."""
        import torch

        if logvar is None:
            return mu
        n, world = mu.shape[0], self.world
        eps = torch.randn((n * world.size, *mu.shape[1:]), generator=gen, device=mu.device, dtype=mu.dtype)
        return mu + eps[world.rank * n:(world.rank + 1) * n] * torch.exp(0.5 * logvar)

    def _disc(self, branch: str):
        """The discriminator (as the step calls it) that judges `branch`."""
        if branch == "unpaired" and "D2" in self._discriminators:
            return self._discriminators["D2"]
        return self._discriminators["D"]

    def use_perceptual(self, path: str | Path | None) -> str:
        """Load VGG19 weights for the perceptual loss from `path` or torch's hub cache; never downloads. Returns
        what happened, for the run's card and the user."""
        from ..weights import find_vgg19, load_vgg19

        if self.config.lambda_vgg <= 0:
            return "off (lambda_vgg 0)"
        found = Path(path) if path else find_vgg19()
        if found is None:
            self.vgg_info = {"perceptual": "off: no VGG19 weights here (--perceptual-weights FILE, or torchvision's "
                                           "vgg19-dcbb9e9d.pth in the torch hub cache); trained without it"}
            return self.vgg_info["perceptual"]
        self.vgg = load_vgg19(found).to(self.device)
        self.vgg_info = {"perceptual": f"VGG19 from {found}", "perceptual_sha256_16": file_digest(found)}
        return self.vgg_info["perceptual"]

    # -- measurement --------------------------------------------------------------------------------------
    def evaluate(self, dataset: Dataset, limit: int = 16) -> dict[str, float]:
        """Paired reconstruction (L_global, L_local) and the parser's agreement with the target mask on
        `limit` samples of `dataset`, without training."""
        import torch
        import torch.nn.functional as F

        from ..nets.framework import onehot
        from ..nets.inputs import centres_of, dilate_components, foreground_region

        source = SampleSource(dataset, self.config.resolution)
        self.G.eval()
        glob = local = agree = 0.0
        k = min(limit, len(dataset))
        with torch.no_grad():
            for i in range(k):
                if self.graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                x, m = batch_tensors([source.get(i)], [False])
                m = torch.from_numpy(dilate_components(m.numpy(), self.config.dilate))
                x, m = x.to(self.device), m.to(self.device)
                crops = self.crops(x, m, centres_of(m.cpu().numpy()))
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
        save_checkpoint(self.out / CHECKPOINT, step=self.step, models=self._models(),
                        optimizers={"G": self.opt_g, "D": self.opt_d}, config=self.config.to_dict(),
                        extra={**self.parser_info, "data": data_description, "world_size": self.world.size},
                        compact=self.compact)
        return save_generator(self.G, self.out / WEIGHTS, step=self.step, data=data_description,
                                extra={**self.parser_info, **self.vgg_info, **run_state(self.step, target),
                                       "precision": precision_name(self.amp)})

    def _models(self) -> dict:
        return {"G": self.G, "D": self.D, **({"D2": self.D2} if self.D2 is not None else {})}

    def resume(self, data_description: str | None = None) -> bool:
        from .checkpoint import load_into, same_run

        path = self.out / CHECKPOINT
        if not path.is_file():
            return False
        meta = load_into(path, self._models(), {"G": self.opt_g, "D": self.opt_d},
                         check=lambda m: same_run(path, m, self.config.to_dict(), data_description))
        self.step = meta["step"]
        self.resumed_world_size = meta["extra"].get("world_size", 1)
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


def run_gan_training(trainer: GANTrainer, steps: int, *, data_description: str,
                     on_step: Callable[[int, dict], None] | None = None, workers: int | None = None,
                     deadline: float | None = None) -> list[dict]:
    """Train until `steps` total steps (loop.run_steps; or `deadline`), a sample grid every config.image_every steps
    and at the end; `workers` data-loading processes (None: default_workers)."""
    return run_steps(trainer, steps, data_description=data_description, on_step=on_step, workers=workers,
                     every_step=_write_samples, deadline=deadline)


def _write_samples(trainer: GANTrainer, log: RunLog, steps: int) -> None:
    from ..io import write_image

    if trainer.step % trainer.config.image_every == 0 or trainer.step == steps:
        grid = trainer.sample_grid()
        log.images(trainer.step, "source|target mask|result", grid)
        write_image(trainer.out / "samples" / f"step-{trainer.step:07d}.png",
                    (grid.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8))
