"""Parser `unet`: the paper's P_F, loading weights written by `mgpe train parser` (safetensors)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..types import FaceMask
from ..weights import describe_search, find_weights, read_safetensors
from ..weights import weights_problem as _weights_problem

WEIGHTS_NAME = "parser-unet.safetensors"


def weights_problem(weights: str | Path | None = None) -> str | None:
    """None when weights can be found, else why not (for `mgpe plugins`)."""
    return _weights_problem(WEIGHTS_NAME, "train one with `mgpe train parser`", weights)


def load_unet(path: str | Path, device: str = "cpu"):
    """(model in eval mode, input size) from a parser weights file."""
    import torch

    from ..nets.unet import UNet, UNetConfig

    path = Path(path)
    state, meta = read_safetensors(path, "unet")
    model = UNet(UNetConfig(**json.loads(meta["unet"])))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the U-Net: {str(exc).splitlines()[0]}") from None
    return model.eval().to(torch.device(device)), int(meta.get("size", 256))


class UNetParser:
    name = "unet"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu"):
        path = Path(weights) if weights else find_weights(WEIGHTS_NAME)
        if path is None:
            raise InputError(WEIGHTS_NAME, describe_search(WEIGHTS_NAME))
        self.path = path
        self.model, self.size = load_unet(path, device)
        self.device = device

    def logits(self, image: np.ndarray):
        """(1, 19, H, W) logits for an aligned RGB face of any size (resized to the model's and back)."""
        import torch
        import torch.nn.functional as F

        h, w = image.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)[None].float().div(127.5).sub(1)
        x = x.to(self.device)
        if (h, w) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        with torch.no_grad():
            y = self.model(x)
        if (h, w) != (self.size, self.size):
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        return y

    def parse(self, image: np.ndarray) -> FaceMask:
        labels = self.logits(image).argmax(1)[0].to("cpu").numpy().astype(np.uint8)
        return FaceMask(labels=labels, parser=self.name)
