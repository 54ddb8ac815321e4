"""Network and loss configuration of the paper's framework, with the named presets `tiny`, `small`, `lean` and
`paper`. `paper` follows the authors' released code (OFFICIAL-ARCH.md facts, nets/paper.py); `lean` and the small
ones are our own design (spatial component maps), see models/README.md.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..errors import UsageError

FEATURE_STRIDE = 4  # every encoder downsamples by 4, so component features and the mask feature share a grid


ARCHS = ("lean", "paper")
# Sanity caps, far above any preset: a mistyped width or batch is refused up front, not an allocation failure.
MAX_WIDTH = 4096
MAX_BATCH = 1024


@dataclass(frozen=True)
class GANConfig:
    arch: str = "lean"  # lean: our spatial component maps; paper: the authors' structure (nets/paper.py)
    resolution: int = 256
    comp_channels: int = 32  # channels of each component feature tensor
    comp_width: int = 32  # first-layer width of the component encoders/decoders
    mask_channels: int = 64  # E_m output channels
    gen_channels: int = 192  # G_m width at the feature grid
    gen_blocks: int = 4  # residual blocks in G_m
    bg_channels: int = 64  # E_b / G_b width at the feature grid
    bg_blocks: int = 2
    vae: bool = False  # component encoders output mu/logvar; synthesis may sample
    disc_channels: int = 64
    disc_layers: int = 3
    disc_norm: str = "instance"
    disc_padding: int = 1  # paper: 2 (receptive field 70 with 4 layers)
    two_discriminators: bool = False  # paper: one judges paired results, the other unpaired ones
    norm: str = "instance"
    latent: int = 512  # paper arch: the VAE latent per component
    init: str = "default"  # or normal: N(0, 0.02) convs, N(1, 0.02) norms (the authors')
    dilate: float = 1.0  # eyes and mouth of input masks grown to the union with a copy scaled by this (paper 1.1)
    # Ablations of the paper's Table 1: local (five components) or global (one auto-encoder of the whole face)
    # embedding; fusion by the net or the background pasted around the generated face.
    embedding: str = "local"
    fusion: str = "net"
    # Loss weights (paper Eq. 9: local 10, global 1, GD 1, GP 1) and the rest.
    lambda_local: float = 10.0
    lambda_global: float = 1.0
    lambda_gd: float = 1.0
    lambda_fm: float = 1.0
    lambda_gp: float = 1.0
    lambda_kl: float = 0.01
    fm_all_layers: bool = False  # the paper matches the discriminators' last layer only
    lambda_vgg: float = 0.0  # paper 30: VGG19 perceptual loss, when its weights are at hand
    # How losses are computed: lean (½·MSE terms) or paper (the authors' code: 5000·MSE local per component,
    # masked; 40·MSE global + region terms; L1 feature matching on the penultimate layer; class-weighted CE).
    losses: str = "lean"
    schedule: str = "alternate"  # (1+1): alternate paired/unpaired steps, or both branches every step (paper)
    # LR: constant for lr_constant, then linear decay to 0 over lr_decay, in lr_unit (steps or epochs);
    # lr_decay 0 keeps it constant.
    lr_constant: float = 0.0
    lr_decay: float = 0.0
    lr_unit: str = "steps"
    # Optimiser (paper: Adam, lr 2e-4, beta1 0.5).
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch: int = 4
    seed: int = 0
    checkpoint_every: int = 500
    image_every: int = 500

    def __post_init__(self):
        if self.resolution % 32:
            raise UsageError(f"resolution {self.resolution} must be a multiple of 32")
        for key, allowed in (("arch", ARCHS), ("norm", ("instance", "batch", "none")),
                             ("disc_norm", ("instance", "batch", "none")), ("init", ("default", "normal")),
                             ("embedding", ("local", "global")), ("fusion", ("net", "paste")),
                             ("losses", ("lean", "paper")), ("schedule", ("alternate", "both")),
                             ("lr_unit", ("steps", "epochs"))):
            if getattr(self, key) not in allowed:
                raise UsageError(f"config {key} must be one of {', '.join(allowed)}, not {getattr(self, key)!r}")
        if self.arch == "paper" and self.resolution != 256:
            raise UsageError("the paper arch runs at resolution 256 (its downsamplings are fixed); narrow it "
                             "with comp_width, latent, ... instead")
        if (self.embedding, self.fusion) != ("local", "net") and self.arch != "paper":
            raise UsageError("the Table 1 ablations (embedding=global, fusion=paste) build on arch=paper")
        if self.schedule == "both" and self.batch < 2:
            raise UsageError("schedule=both permutes features across the batch: batch must be at least 2")
        if not 1.0 <= self.dilate <= 2.0 or self.lr_constant < 0 or self.lr_decay < 0:
            raise UsageError("config dilate must lie in 1..2, lr_constant and lr_decay must not be negative")
        if not 32 <= self.resolution <= 1024:
            raise UsageError(f"resolution {self.resolution} must lie in 32..1024")
        for key in ("batch", "checkpoint_every", "image_every", "comp_channels", "comp_width", "mask_channels",
                    "gen_channels", "bg_channels", "disc_channels", "disc_layers", "latent"):
            if getattr(self, key) < 1:
                raise UsageError(f"config {key}={getattr(self, key)} must be at least 1")
        for key in ("comp_channels", "comp_width", "mask_channels", "gen_channels", "bg_channels", "disc_channels",
                    "latent"):
            if getattr(self, key) > MAX_WIDTH:
                raise UsageError(f"config {key}={getattr(self, key)} must be at most {MAX_WIDTH}")
        if self.batch > MAX_BATCH or self.disc_layers > 8:
            raise UsageError(f"config batch must be at most {MAX_BATCH} and disc_layers at most 8")
        if not 0 < self.lr <= 1 or not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise UsageError(f"config lr={self.lr} must lie in (0, 1] and beta1, beta2 in [0, 1)")
        if not 0 <= self.seed < 2 ** 63:
            raise UsageError(f"config seed={self.seed} must lie in 0..2**63-1")
        bad = [k for k in self.__dataclass_fields__ if k.startswith("lambda_")
               and not (math.isfinite(getattr(self, k)) and getattr(self, k) >= 0)]
        if bad or not (math.isfinite(self.dilate) and math.isfinite(self.lr_constant) and math.isfinite(self.lr_decay)):
            name = bad[0] if bad else "dilate, lr_constant, lr_decay"
            raise UsageError(f"config {name} must be finite and not negative")

    @property
    def grid(self) -> int:
        return self.resolution // FEATURE_STRIDE

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GANConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UsageError(f"unknown config key(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(names))})")
        return cls(**data)


PRESETS: dict[str, GANConfig] = {
    "tiny": GANConfig(resolution=64, comp_channels=16, comp_width=16, mask_channels=32, gen_channels=64,
                      gen_blocks=2, bg_channels=32, bg_blocks=1, disc_channels=32, disc_layers=2, batch=8,
                      lr=1e-3, checkpoint_every=100, image_every=100),
    "small": GANConfig(resolution=128, comp_channels=24, comp_width=24, mask_channels=48, gen_channels=128,
                       gen_blocks=3, bg_channels=48, bg_blocks=2, disc_channels=48, batch=8),
    # Our design: spatial component maps, one two-scale discriminator; 4.3 M parameters, exports to int8.
    "lean": GANConfig(),
    # The authors' structure and losses (OFFICIAL-ARCH.md): 163.6 M parameters at inference.
    "paper": GANConfig(arch="paper", comp_width=64, comp_channels=256, mask_channels=256, gen_channels=256,
                       gen_blocks=9, bg_channels=64, latent=512, norm="batch", vae=True, init="normal", dilate=1.1,
                       disc_channels=64, disc_layers=4, disc_norm="batch", disc_padding=2, two_discriminators=True,
                       losses="paper", schedule="both", lambda_local=5000.0, lambda_global=40.0, lambda_gd=1.0,
                       lambda_fm=5.0, lambda_gp=100.0, lambda_kl=0.0, lambda_vgg=30.0, lr=2e-4, batch=4,
                       lr_constant=10.0, lr_decay=45.0, lr_unit="epochs"),
}


def load_config(spec: str, **overrides) -> GANConfig:
    """A preset name or a JSON file (a preset name under "base" plus overrides, or every field)."""
    if spec in PRESETS:
        cfg = PRESETS[spec]
    else:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"--config {spec!r}: not a preset ({', '.join(PRESETS)}) or a JSON file")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        base = data.pop("base", "paper")
        if base not in PRESETS:
            raise UsageError(f"{path}: base {base!r} is not a preset ({', '.join(PRESETS)})")
        cfg = replace(PRESETS[base], **GANConfig.from_dict({**PRESETS[base].to_dict(), **data}).to_dict())
    overrides = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name: f.type for f in fields(GANConfig)}
    unknown = set(overrides) - set(known)
    if unknown:
        raise UsageError(f"unknown config key(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    for key, value in overrides.items():
        want = type(getattr(cfg, key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            overrides[key] = float(value)
        elif not isinstance(overrides[key], want) or (want is int and isinstance(value, bool)):
            raise UsageError(f"config {key}={value!r}: expected {want.__name__}")
    return replace(cfg, **overrides)
