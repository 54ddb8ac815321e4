"""VGG19's convolutional layers up to relu5_1, for the authors' perceptual loss. The weights are torchvision's
ImageNet ones (`vgg19-dcbb9e9d.pth`, keys `features.N.*`), loaded by `weights.load_vgg19` when the user has them."""
from __future__ import annotations

import torch
from torch import nn

# VGG19's layers (channels, or M for max-pool) up to conv5_1, and the relu outputs the loss reads.
LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's `features`
LAYER_WEIGHTS = (1 / 4, 1 / 4, 1 / 4, 1 / 8, 1 / 8)


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
