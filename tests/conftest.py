"""Shared fixtures: real-data location (skips when absent) and small real images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never use the network

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that data is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it exists in CI and dev checkouts)")
    return path


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from skimage import data

    return data.chelsea()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()


@pytest.fixture(scope="session")
def lite0_imagenet():
    """The embedded EfficientNet-Lite0 with its ImageNet classifier (built once per session)."""
    from suite.core import create_model

    return create_model("embedded:efficientnet_lite0", num_classes=1000)


def _photo_crops(n_per_class: int, size: int, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Random crops of three skimage photos: a small, real, clearly separable 3-class set."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    out = {}
    for name, img in {"cat": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket()}.items():
        h, w = img.shape[:2]
        crops = []
        for _ in range(n_per_class):
            y, x = rng.integers(0, h // 3), rng.integers(0, w // 3)
            crop = Image.fromarray(img[y:y + 2 * h // 3, x:x + 2 * w // 3]).resize((size, size))
            crops.append(np.asarray(crop))
        out[name] = crops
    return out


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """A folder-per-class image set (3 classes x 12 PNGs, 64x64)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    for name, crops in _photo_crops(12, 64).items():
        (root / name).mkdir()
        for i, crop in enumerate(crops):
            Image.fromarray(crop).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def photo_data():
    """The same kind of set in memory, as LabeledData (3 classes x 10 arrays, 48x48)."""
    from suite.core.data import LabeledData

    crops = _photo_crops(10, 48, seed=1)
    items = [c for cs in crops.values() for c in cs]
    labels = np.repeat(np.arange(3), 10)
    return LabeledData(items=items, labels=labels, classes=list(crops), modality="image", source="photo crops")


@pytest.fixture
def small_model():
    """Embedded EfficientNet-Lite0 with a 3-class head at 64x64 input (fast on CPU; at 32x32 its features vanish)."""
    import dataclasses

    from suite.core import create_model

    model = create_model("embedded:efficientnet_lite0", num_classes=3)
    model.preprocess = dataclasses.replace(model.preprocess, input_size=(3, 64, 64))
    return model
