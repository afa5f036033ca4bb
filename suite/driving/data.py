"""Street-scene data sets as image/label pairs in the CamVid 11-class schema.

    camvid(root, "val")             CamVid (SegNet layout: val/ + valannot/, label ids 0..11)
    cityscapes(root)                Cityscapes leftImg8bit/ + gtFine/ (labelIds or labelTrainIds)
    color_coded(images, labels)     labels colour-coded in the Cityscapes palette (CARLA exports)
    gta5(root), synthia(root)       GTA5 (images/ + labels/) and SYNTHIA-RAND-CITYSCAPES (RGB/ + GT/LABELS/)
    simulated(n, seed)              frames of the built-in simulator
    load_driving_data(path)         any of the folder layouts above, detected

Each returns a :class:`SegmentationData`; ``data.load(i)`` gives ``(rgb uint8 (H, W, 3), label uint8 (H, W))``
with labels already mapped to CamVid ids (11 = ignore), or ``label=None`` for unlabelled data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..core.errors import SuiteError
from .schema import (CAMVID_CLASSES, IGNORE, cityscapes_colors_to_camvid, cityscapes_to_camvid,
                     synthia_to_camvid)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class SegmentationData:
    """Images and (optional) label maps; ``read_label`` turns a label file into CamVid ids."""

    images: list
    labels: list | None
    read_label: Callable[[str | os.PathLike], np.ndarray] | None = None
    source: str = ""
    classes: tuple = CAMVID_CLASSES
    frames: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labelled(self) -> bool:
        return self.labels is not None or self.frames is not None

    def image(self, i: int) -> np.ndarray:
        if self.frames is not None:
            return self.frames(self.images[i])[0]
        return read_rgb(self.images[i])

    def label(self, i: int) -> np.ndarray | None:
        if self.frames is not None:
            return self.frames(self.images[i])[1]
        if self.labels is None:
            return None
        return self.read_label(self.labels[i])

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self.frames is not None:
            return self.frames(self.images[i])
        return self.image(i), self.label(i)

    def subset(self, idx: Sequence[int]) -> "SegmentationData":
        idx = list(idx)
        return SegmentationData([self.images[i] for i in idx],
                                None if self.labels is None else [self.labels[i] for i in idx],
                                self.read_label, self.source, self.classes, self.frames)

    def unlabelled(self) -> "SegmentationData":
        """The same images without their labels (unlabelled target data for adaptation)."""
        return SegmentationData(list(self.images), None, None, self.source + " (labels unused)", self.classes,
                                None if self.frames is None else self.frames)


def read_rgb(path) -> np.ndarray:
    """An image file as RGB uint8 ``(H, W, 3)`` (alpha composited), through the core's checked reader."""
    from suite.core.io import read_image

    return np.asarray(read_image(path).convert("RGB"))


def _read_gray(path) -> np.ndarray:
    from suite.core.io import read_label_map

    return read_label_map(path)


def read_camvid_label(path) -> np.ndarray:
    """CamVid (SegNet) label ids; anything above 11 becomes 11 (ignore)."""
    a = _read_gray(path).astype(np.int64)
    return np.where((a >= 0) & (a <= IGNORE), a, IGNORE).astype(np.uint8)


def read_cityscapes_label(path) -> np.ndarray:
    """A Cityscapes ``*_labelIds.png`` or ``*_labelTrainIds.png`` (also GTA5 labels) -> CamVid ids."""
    kind = "trainIds" if "trainid" in Path(path).name.lower() else "labelIds"
    return cityscapes_to_camvid(_read_gray(path), kind)


def read_color_label(path) -> np.ndarray:
    """A label image colour-coded in the Cityscapes palette (RGB or RGBA) -> CamVid ids."""
    from PIL import Image

    with Image.open(path) as im:
        return cityscapes_colors_to_camvid(np.asarray(im.convert("RGB")))


def read_synthia_label(path) -> np.ndarray:
    """SYNTHIA ``GT/LABELS`` PNG: class id in the first channel of a 16-bit image (or a 1-channel map)."""
    import cv2

    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise SuiteError(f"{path}: cannot read label image")
    ids = a if a.ndim == 2 else a[..., 2]  # OpenCV gives BGR: the first (R) channel is last
    return synthia_to_camvid(np.clip(ids, 0, 255).astype(np.uint8))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise SuiteError(f"{path}: {what} folder not found")
    return path


def _pair_by_stem(images: list[Path], labels: list[Path], strip=lambda s: s) -> tuple[list, list]:
    by_stem = {strip(p.stem): p for p in labels}
    missing = [p.name for p in images if strip(p.stem) not in by_stem]
    if missing:
        raise SuiteError(f"{len(missing)} images have no label file (first: {missing[0]})")
    return images, [by_stem[strip(p.stem)] for p in images]


def camvid(root: str | os.PathLike, split: str = "val", labelled: bool = True) -> SegmentationData:
    """CamVid in the SegNet layout: ``root/<split>/`` and ``root/<split>annot/`` (``train_240x180`` and
    ``trainannot_240x180`` are found for ``split="train"`` when ``train`` is absent)."""
    root = Path(root)
    img_dir = root / split
    ann_dir = root / f"{split}annot"
    if not img_dir.is_dir():
        alt = sorted(p for p in root.glob(f"{split}_*") if p.is_dir())
        if not alt:
            raise SuiteError(f"{root}: no CamVid split {split!r} (expected {split}/ and {split}annot/)")
        img_dir = alt[0]
        ann_dir = root / img_dir.name.replace(split, f"{split}annot", 1)
    images = _images(img_dir)
    if not labelled:
        return SegmentationData(images, None, None, f"CamVid {img_dir.name} (unlabelled)")
    images, labels = _pair_by_stem(images, _images(_require_dir(ann_dir, "CamVid annotation")))
    return SegmentationData(images, labels, read_camvid_label, f"CamVid {img_dir.name}")


def cityscapes(root: str | os.PathLike, split: str | None = None, kind: str = "labelIds") -> SegmentationData:
    """Cityscapes: ``root/leftImg8bit/[split/city/]*_leftImg8bit.png`` with ``root/gtFine/...``
    ``*_gtFine_<kind>.png`` (``kind`` ``labelIds`` or ``labelTrainIds``)."""
    root = Path(root)
    img_root = _require_dir(root / "leftImg8bit" / (split or ""), "Cityscapes leftImg8bit")
    images = sorted(img_root.rglob("*_leftImg8bit.png"))
    gt_root = root / "gtFine" / (split or "")
    labels_by = {p.name.replace(f"_gtFine_{kind}.png", ""): p for p in gt_root.rglob(f"*_gtFine_{kind}.png")}
    keys = [p.name.replace("_leftImg8bit.png", "") for p in images]
    missing = [k for k in keys if k not in labels_by]
    if missing:
        raise SuiteError(f"{len(missing)} Cityscapes images have no gtFine {kind} file (first: {missing[0]})")
    return SegmentationData(images, [labels_by[k] for k in keys], read_cityscapes_label, f"Cityscapes {split or ''}".strip())


def color_coded(images: str | os.PathLike, labels: str | os.PathLike, source: str = "colour-coded labels") -> SegmentationData:
    """Images with label images colour-coded in the Cityscapes palette, paired by file name (CARLA)."""
    imgs, labs = _pair_by_stem(_images(_require_dir(Path(images), "image")),
                               _images(_require_dir(Path(labels), "label")))
    return SegmentationData(imgs, labs, read_color_label, source)


def gta5(root: str | os.PathLike) -> SegmentationData:
    """GTA5 (Richter et al. 2016): ``root/images/*.png`` and ``root/labels/*.png`` in Cityscapes labelIds."""
    root = Path(root)
    imgs, labs = _pair_by_stem(_images(_require_dir(root / "images", "GTA5 images")),
                               _images(_require_dir(root / "labels", "GTA5 labels")))
    return SegmentationData(imgs, labs, read_cityscapes_label, "GTA5")


def synthia(root: str | os.PathLike) -> SegmentationData:
    """SYNTHIA-RAND-CITYSCAPES: ``root/RGB/*.png`` and ``root/GT/LABELS/*.png``."""
    root = Path(root)
    imgs, labs = _pair_by_stem(_images(_require_dir(root / "RGB", "SYNTHIA RGB")),
                               _images(_require_dir(root / "GT" / "LABELS", "SYNTHIA GT/LABELS")))
    return SegmentationData(imgs, labs, read_synthia_label, "SYNTHIA")


def simulated(n: int, seed: int = 0, height: int = 360, width: int = 480, start: int = 0) -> SegmentationData:
    """``n`` frames of the built-in simulator (rendered on demand, deterministic in ``seed``)."""
    from .sim import DrivingSimulator

    sim = DrivingSimulator(height, width, seed)
    return SegmentationData(list(range(start, start + n)), None, None, f"simulator seed {seed}", frames=sim.frame)


def load_driving_data(path: str | os.PathLike, split: str = "val") -> SegmentationData:
    """Detect a layout under ``path``: Cityscapes, GTA5, SYNTHIA, CARLA-style colour labels, CamVid."""
    root = Path(path)
    if (root / "leftImg8bit").is_dir():
        return cityscapes(root)
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return gta5(root)
    if (root / "RGB").is_dir() and (root / "GT" / "LABELS").is_dir():
        return synthia(root)
    if (root / "RGB").is_dir() and (root / "Segmentation_Images").is_dir():
        return color_coded(root / "RGB", root / "Segmentation_Images", "CARLA")
    if any(root.glob(f"{split}*")):
        return camvid(root, split)
    raise SuiteError(f"{root}: no known street-scene layout (Cityscapes leftImg8bit/+gtFine/, GTA5 images/+labels/, "
                     "SYNTHIA RGB/+GT/LABELS/, CARLA RGB/+Segmentation_Images/, CamVid <split>/+<split>annot/)")
