"""The paper's whole generator G(x_s, m_s, x_t, m_t): local embedding -> mask-guided generation -> background
fusing. Also the tensor-side helpers that turn label masks into what the networks take."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..labels import COMPONENTS, component_center, crop_box
from .config import GANConfig
from .fusion import BackgroundEncoder, BackgroundFuser
from .generator import NUM_CLASSES, ForegroundGenerator, MaskEncoder, place
from .local import ComponentDecoder, ComponentEncoder

COMPONENT_NAMES = tuple(COMPONENTS)  # left_eye, right_eye, mouth, skin, hair
PLACED = tuple(n for n in COMPONENT_NAMES if COMPONENTS[n].crop_256 is not None)  # eyes and mouth
FULL = tuple(n for n in COMPONENT_NAMES if COMPONENTS[n].crop_256 is None)  # skin and hair
_FOREGROUND = torch.zeros(256, dtype=torch.bool)
for _name in COMPONENT_NAMES:
    _FOREGROUND[list(COMPONENTS[_name].indices)] = True


def onehot(masks: torch.Tensor) -> torch.Tensor:
    """(N, S, S) int labels -> (N, 19, S, S) float."""
    return torch.nn.functional.one_hot(masks.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()


def foreground_region(masks: torch.Tensor) -> torch.Tensor:
    """(N, 1, S, S) float: 1 on the five components (what the fusing net repaints), 0 on the background."""
    return _FOREGROUND.to(masks.device)[masks.long()].unsqueeze(1).float()


def centres_of(masks: np.ndarray) -> np.ndarray:
    """(N, 3, 2) float32 image-pixel centres of eyes and mouth (template fallback when absent)."""
    return np.array([[component_center(m, name) for name in PLACED] for m in masks], np.float32)


def input_spec(config: GANConfig) -> dict:
    """How a model's inputs are prepared (edit_inputs takes these): the paper arch masks the mouth crop to the
    mouth's labels, and may dilate eyes and mouth of every mask."""
    return {"masked_mouth": config.arch == "paper", "dilate": float(config.dilate)}


DILATED = (("l_eye",), ("r_eye",), ("u_lip", "mouth", "l_lip"))


def dilate_components(labels: np.ndarray, factor: float) -> np.ndarray:
    """(S, S) or (N, S, S) labels with each eye and the mouth grown to the union with a copy of itself scaled by
    `factor` about its bounding-box centre (the authors' 1.1× dilation); other labels give way."""
    import cv2

    from ..labels import LABEL_INDEX

    if factor == 1.0:
        return labels
    if labels.ndim == 3:
        return np.stack([dilate_components(m, factor) for m in labels])
    out = labels.copy()
    for names in DILATED:
        part = np.isin(labels, [LABEL_INDEX[n] for n in names])
        if not part.any():
            continue
        ys, xs = np.nonzero(part)
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        m = np.array([[factor, 0, cx * (1 - factor)], [0, factor, cy * (1 - factor)]], np.float64)
        grown = cv2.warpAffine(np.where(part, labels, 0).astype(np.uint8), m, labels.shape[::-1],
                               flags=cv2.INTER_NEAREST)
        out = np.where((grown > 0) & ~part, grown, out)
    return out.astype(labels.dtype)


def component_crops(images: torch.Tensor, masks: torch.Tensor, centres: np.ndarray, *,
                    masked_mouth: bool = False, face: bool = False) -> dict[str, torch.Tensor]:
    """The five inputs of the local embedding: fixed windows for eyes and mouth (the mouth's masked to its labels
    with `masked_mouth`, as the paper arch takes it), masked full images for skin/hair."""
    n, _, s, _ = images.shape
    crops = {}
    for k, name in enumerate(PLACED):
        w, h = COMPONENTS[name].crop_size(s)
        boxes = [crop_box(tuple(centres[i, k]), (w, h), (s, s)) for i in range(n)]
        source = _masked(images, masks, name) if masked_mouth and name == "mouth" else images
        crops[name] = torch.stack([source[i, :, y0:y1, x0:x1] for i, (x0, y0, x1, y1) in enumerate(boxes)])
    for name in FULL:
        crops[name] = _masked(images, masks, name)
    if face:  # the whole face and hair, for the one encoder of the `embedding=global` ablation
        crops["face"] = torch.where(foreground_region(masks).bool(), images, torch.zeros_like(images))
    return crops


def _masked(images: torch.Tensor, masks: torch.Tensor, name: str) -> torch.Tensor:
    keep = torch.zeros(256, dtype=torch.bool)
    keep[list(COMPONENTS[name].indices)] = True
    region = keep.to(masks.device)[masks.long()].unsqueeze(1)
    return torch.where(region, images, torch.zeros_like(images))


def component_region(masks: torch.Tensor, name: str) -> torch.Tensor:
    """(N, 1, S, S) float: 1 on a component's labels."""
    keep = torch.zeros(256, dtype=torch.bool)
    keep[list(COMPONENTS[name].indices)] = True
    return keep.to(masks.device)[masks.long()].unsqueeze(1).float()


def edit_inputs(images: list[np.ndarray], masks: list[np.ndarray], targets: list[np.ndarray], size: int, *,
                masked_mouth: bool = False, dilate: float = 1.0):
    """What the learned stages take for a batch of aligned faces: crops of `images` (uint8 RGB) under their own
    `masks`, and `targets` (edited masks) as the masks to paint. Everything is brought to `size` first; the
    keywords are the model's input_spec. Returns (crops, target one-hot, target centres, removal mask, target
    images), numpy, images in [-1, 1]."""
    import cv2

    def img(a):
        if a.shape[0] != size:
            a = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA if a.shape[0] > size else cv2.INTER_LINEAR)
        return a.astype(np.float32) / 127.5 - 1

    def lab(m):
        return m if m.shape[0] == size else cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)

    x = np.ascontiguousarray(np.stack([img(a) for a in images]).transpose(0, 3, 1, 2))
    src = dilate_components(np.stack([lab(m) for m in masks]), dilate)
    crops = component_crops(torch.from_numpy(x), torch.from_numpy(src), centres_of(src), masked_mouth=masked_mouth)
    tgt = dilate_components(np.stack([lab(m) for m in targets]), dilate)
    one = np.eye(NUM_CLASSES, dtype=np.float32)[tgt].transpose(0, 3, 1, 2)
    removed = foreground_region(torch.from_numpy(tgt)).numpy()
    return {n: c.numpy() for n, c in crops.items()}, one, centres_of(tgt), removed, x


class MaskGuidedFramework(nn.Module):
    """G(x_s, m_s, x_t, m_t) of either arch. encode: crops -> {component: (mu, logvar or None)}; generate:
    features (lean: spatial maps; paper: latent vectors) on a target mask -> foreground (lean: RGB; paper: a
    feature map); fuse: foreground + target image -> the final image in [-1, 1]."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c = config
        if c.arch == "paper":
            self._build_paper(c)
        else:
            self.encoders = nn.ModuleDict({n: ComponentEncoder(c.comp_channels, c.comp_width, c.norm, c.vae)
                                           for n in COMPONENT_NAMES})
            self.decoders = nn.ModuleDict({n: ComponentDecoder(c.comp_channels, c.comp_width, c.norm)
                                           for n in COMPONENT_NAMES})
            self.mask_encoder = MaskEncoder(c.mask_channels, c.norm)
            self.generator = ForegroundGenerator(c.mask_channels + len(COMPONENT_NAMES) * c.comp_channels,
                                                 c.gen_channels, c.gen_blocks, c.norm)
            self.bg_encoder = BackgroundEncoder(c.bg_channels, c.norm)
            self.fuser = BackgroundFuser(c.bg_channels, c.bg_blocks, c.norm)
        if c.init == "normal":
            from .paper import init_normal

            init_normal(self)

    def _build_paper(self, c: GANConfig) -> None:
        from . import paper as P

        # The Table 1 ablation `embedding=global`: one auto-encoder of the whole face and hair (a full-image
        # component like skin) instead of five.
        names = COMPONENT_NAMES if c.embedding == "local" else ("face",)
        hw = {n: COMPONENTS["skin" if n == "face" else n].crop_size(c.resolution)[::-1] for n in names}
        kind = {n: "skin" if n == "face" else n for n in names}
        self.encoders = nn.ModuleDict({n: P.VAEComponentEncoder(kind[n], hw[n], c.comp_width, c.latent, c.norm)
                                       for n in names})
        self.feature_decoders = nn.ModuleDict({n: P.feature_decoder(kind[n], hw[n], c.comp_width, c.latent,
                                                                    c.comp_channels, c.norm) for n in names})
        self.decoders = nn.ModuleDict({n: P.image_decoder(kind[n], hw[n], c.comp_width, c.latent, c.norm)
                                       for n in names})
        self.mask_encoder = P.PaperMaskEncoder(NUM_CLASSES, c.mask_channels, c.norm)
        self.generator = P.PaperGenerator(c.mask_channels + len(names) * c.comp_channels, c.gen_channels,
                                          c.gen_blocks, c.bg_channels, c.norm)
        if c.fusion == "net":
            self.bg_encoder = P.PaperBackgroundEncoder(c.bg_channels, c.norm)
            self.fuser = P.PaperFuser(c.bg_channels)
        else:  # pasted background: G_m's map straight to RGB
            self.to_rgb = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c.bg_channels, 3, 7), nn.Tanh())

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    def feature_shape(self, name: str) -> tuple[int, ...]:
        """Shape of one sample's feature of a component, as encode gives it."""
        c = self.config
        if c.arch == "paper":
            return (c.latent,)
        w, h = COMPONENTS[name].crop_size(c.resolution)
        return (c.comp_channels, h // 4, w // 4)

    @property
    def foreground_channels(self) -> int:
        return self.config.bg_channels if self.config.arch == "paper" else 3

    def encode(self, crops: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        return {n: self.encoders[n](crops[n]) for n in self.components}

    def generate(self, features: dict[str, torch.Tensor], target_onehot: torch.Tensor,
                 target_centres: torch.Tensor) -> torch.Tensor:
        """Foreground from component features placed on the target mask. centres: (N, 3, 2) image px."""
        res = self.config.resolution
        if self.config.arch == "paper":
            return self._generate_paper(features, target_onehot, target_centres)
        placed = [place(features[n], target_centres[:, k], COMPONENTS[n].crop_size(res), res)
                  for k, n in enumerate(PLACED)]
        fused = torch.cat([self.mask_encoder(target_onehot), *placed, *(features[n] for n in FULL)], 1)
        return self.generator(fused)

    def _generate_paper(self, features, target_onehot, target_centres) -> torch.Tensor:
        from .generator import place_at
        from .paper import paper_offsets

        grid = self.config.resolution // 4
        maps = []
        for n in self.components:
            m = self.feature_decoders[n](features[n])
            if n in PLACED:  # its own zero map, the decoded map placed at the target's centre
                k = PLACED.index(n)
                m = place_at(m, paper_offsets(target_centres[:, k].float(), tuple(m.shape[-2:]), grid), grid)
            maps.append(m)
        return self.generator(torch.cat([self.mask_encoder(target_onehot), *maps], 1))

    def fuse(self, foreground: torch.Tensor, target_image: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        if self.config.arch == "paper":
            if self.config.fusion == "paste":
                return self.to_rgb(foreground) * removed + target_image * (1 - removed)
            return self.fuser(foreground, self.bg_encoder(target_image) * (1 - removed))
        background = target_image * (1 - removed)
        return self.fuser(foreground, self.bg_encoder(background, removed), background, removed)

    def forward(self, crops: dict[str, torch.Tensor], target_onehot: torch.Tensor, target_centres: torch.Tensor,
                target_image: torch.Tensor, removed: torch.Tensor):
        codes = self.encode(crops)
        feats = {n: mu for n, (mu, _) in codes.items()}
        fg = self.generate(feats, target_onehot, target_centres)
        return self.fuse(fg, target_image, removed), fg
