"""VGG19's convolutional layers up to relu5_1, for the authors' perceptual loss. The weights are torchvision's
ImageNet ones (`vgg19-dcbb9e9d.pth`, keys `features.N.*`) when the user has them; nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# VGG19's layers (channels, or M for max-pool) up to conv5_1, and the relu outputs the loss reads.
LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's `features`
LAYER_WEIGHTS = (1 / 4, 1 / 4, 1 / 4, 1 / 8, 1 / 8)
FILE_NAME = "vgg19-dcbb9e9d.pth"


class VGG19Features(nn.Module):
    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=False)]
                cin = item
        self.features = nn.Sequential(*layers[:TAPS[-1] + 1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x)
        return out


def to_vgg_input(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] RGB -> ImageNet-normalised input."""
    mean = image.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = image.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((image + 1) / 2 - mean) / std


def find_vgg19() -> Path | None:
    """torchvision's VGG19 file in torch's hub cache ($TORCH_HOME/hub/checkpoints), if it is there."""
    try:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # no home folder: nothing cached
        return None
    found = hub / FILE_NAME
    return found if found.is_file() else None


def load_vgg19(path: str | Path) -> VGG19Features:
    """Frozen VGG19 features from a torchvision state dict (.pth, loaded with weights_only) or a safetensors
    file with the same `features.N.*` keys. Raises InputError naming the file when it does not fit."""
    from ..errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file (VGG19 weights for the perceptual loss)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and safetensors errors have no common base
        raise InputError(path, f"not readable VGG19 weights ({type(exc).__name__}: {exc})") from None
    net = VGG19Features()
    wanted = net.state_dict()
    state = {k: v for k, v in state.items() if k in wanted}
    if set(state) != set(wanted) or any(state[k].shape != wanted[k].shape for k in wanted):
        raise InputError(path, "not VGG19 weights (expected torchvision's `features.N.weight` layout)")
    net.load_state_dict(state)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()
