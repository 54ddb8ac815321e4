from __future__ import annotations

import os
from pathlib import Path

import pytest

HELEN = Path(os.environ.get("MGPE_HELEN_SAMPLES", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "helen-samples"))


@pytest.fixture
def helen_dir() -> Path:
    if not (HELEN / "labels").is_dir():
        pytest.skip(f"Helen samples not found at {HELEN}")
    return HELEN


@pytest.fixture(scope="session")
def astronaut():
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper():
    import matplotlib.cbook

    from mgpe_toolkit.io import read_image

    return read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
