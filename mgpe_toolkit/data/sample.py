"""One training sample: what every data set of `data.sets` and `data.pack` loads."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sample:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    mask: np.ndarray  # (S, S) uint8 canonical labels (IGNORE where unsure)
    name: str
    # How much wider than the aligned crop the sample's frame is: 1 for an aligned crop; above 1, the aligned crop
    # is the frame's centre 1/context.
    context: float = 1.0
