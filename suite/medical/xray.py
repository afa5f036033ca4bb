"""Chest X-ray inputs and Solutions: PNG/JPEG/DICOM/arrays in, predictions with warnings out.

``load_xray`` turns any supported input into a display-ready grayscale image (DICOM through
:mod:`suite.medical.dicom`). ``XraySolution`` is a :class:`~suite.core.Solution` whose inputs may be
DICOM files and whose preprocessing may first bring a full-size radiograph down to the resolution
its training images had (``extra["native_size"]``: MedMNIST images are 28x28), so a 2000x2500
DICOM reaches the model looking like the images it learned from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import SuiteError
from ..core.solution import Solution
from .dicom import DICOM_SUFFIXES, describe, is_dicom, read_dicom

NOT_FOR_CLINICAL_USE = ("Not for clinical use: a research and demonstration model, not a medical device. "
                        "It must not be used to diagnose, treat or triage patients.")
COLOUR_LIMIT = 12.0  # mean per-pixel channel spread (0-255) above which an input is a colour photo
RADIOGRAPH_MODALITIES = {"CR", "DX", "DR", "RG", "PX", "OT", ""}


@dataclass
class XrayInput:
    """A loaded input: ``image`` (PIL, mode ``L``, display-ready), where it came from, how colourful it was."""

    image: Any
    kind: str  # "dicom", "image" or "array"
    name: str = ""
    colour: float = 0.0
    meta: dict = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "dicom":
            return describe(self.meta)
        return f"{self.kind} {self.image.width}x{self.image.height}" + (
            f", colour (channel spread {self.colour:.1f})" if self.colour > COLOUR_LIMIT else "")


def colourfulness(img) -> float:
    """Mean per-pixel spread between the RGB channels, 0-255 (0 for grayscale)."""
    if img.mode != "RGB":
        return 0.0
    arr = np.asarray(img.resize((min(img.width, 256), min(img.height, 256))), dtype=np.int16)
    return float((arr.max(axis=-1) - arr.min(axis=-1)).mean())


def load_xray(source: Any, name: str | None = None) -> XrayInput:
    """Read a radiograph from a path, bytes, PIL image or array: DICOM (rescale, VOI, MONOCHROME1)
    or any image PIL reads (8/16-bit PNG, JPEG); always returned as grayscale."""
    from ..core.io import read_image

    if isinstance(source, XrayInput):
        return source
    if isinstance(source, (str, os.PathLike)):
        name = name or str(source)
    if is_dicom(source):
        dicom = read_dicom(source, name=name)
        return XrayInput(dicom.to_pil(), "dicom", name or "upload", 0.0, dicom.meta)
    kind = "array" if isinstance(source, np.ndarray) else "image"
    img = read_image(source, name=name)
    colour = colourfulness(img)
    return XrayInput(img if img.mode == "L" else img.convert("L"), kind, name or kind, colour)


def input_warnings(x: XrayInput) -> list[str]:
    """Reasons an input does not look like a chest radiograph (from the file itself, not the model)."""
    warns = []
    if x.colour > COLOUR_LIMIT:
        warns.append(f"{x.name}: a colour image (mean channel spread {x.colour:.0f}/255); radiographs are "
                     "grayscale, so this is probably not an X-ray and the prediction means nothing")
    if x.kind == "dicom":
        modality = x.meta.get("modality", "").upper()
        if modality not in RADIOGRAPH_MODALITIES:
            warns.append(f"{x.name}: DICOM modality {modality} is not a radiograph (CR/DX)")
        part = x.meta.get("body_part", "").upper()
        if part and part not in ("CHEST", "THORAX", "LUNG"):
            warns.append(f"{x.name}: body part {part}, the model was trained on chest radiographs")
    return warns


def to_native_size(img, size: int):
    """Resize the shorter side to ``size`` (antialiased) and centre-crop a square: how MedMNIST made
    its images, so a full-size radiograph looks like the training images before the model's own resize."""
    from PIL import Image

    if img.width == size and img.height == size:
        return img
    scale = size / min(img.width, img.height)
    w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
    img = img.resize((w, h), Image.Resampling.LANCZOS)
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


class XraySolution(Solution):
    """A Solution for radiographs: DICOM inputs, native-resolution preprocessing, a decision threshold
    for binary tasks, input warnings and the not-for-clinical-use notice on every prediction."""

    @property
    def native_size(self) -> int | None:
        size = self.extra.get("native_size")
        return int(size) if size else None

    @property
    def input_suffixes(self) -> tuple[str, ...]:
        return tuple(super().input_suffixes) + tuple(DICOM_SUFFIXES)

    def check_input(self, item: Any, name: str | None = None) -> str | None:
        if not is_dicom(item):
            return super().check_input(item, name)
        try:
            read_dicom(item, name=name)
        except SuiteError as exc:
            return getattr(exc, "problem", str(exc))
        return None

    def transform(self, item: Any):
        x = load_xray(item)
        img = x.image
        if self.native_size:
            img = to_native_size(img, self.native_size)
        return super().transform(img)

    def predict(self, inputs: Any, batch_size: int = 32, tta: bool | Sequence[str] | None = None
                ) -> dict | list[dict]:
        """Like :meth:`Solution.predict` (binary labels use the stored threshold); each result adds
        ``warnings``, ``input`` (what was read) and ``notice``."""
        single = not isinstance(inputs, (list, tuple))
        loaded = [load_xray(x) for x in ([inputs] if single else inputs)]
        results = super().predict(loaded, batch_size, tta=tta)
        for x, row in zip(loaded, results):
            row["warnings"] = input_warnings(x)
            if row.get("ood"):
                row["warnings"].append(f"{x.name}: unlike the training X-rays (input guard score "
                                       f"{row.get('ood_score', float('nan')):.2f}); the prediction is unreliable")
            row["input"] = x.describe()
            row["notice"] = NOT_FOR_CLINICAL_USE
        return results[0] if single else results

    def default_card(self) -> str:
        return super().default_card() + f"\n{NOT_FOR_CLINICAL_USE}\n"


def load_solution(path: str | os.PathLike) -> XraySolution:
    """Load a Solution directory as an :class:`XraySolution`."""
    if not Path(path).is_dir():
        raise SuiteError(f"{path}: no such Solution directory")
    return XraySolution.load(path)
