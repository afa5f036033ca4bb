"""Preprocessing that travels with a model: input size, mean/std, channels, interpolation.

The same :class:`Preprocess` is stored in a Solution's ``config.json`` and rebuilt on load, so a
model never runs with preprocessing that differs from the one it was trained with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Preprocess:
    """How raw inputs become model tensors.

    ``modality`` is ``"image"`` (2D, tensors ``(C, H, W)``), ``"volume"`` (3D, ``(C, D, H, W)``)
    or ``"text"`` (token ids from ``tokenizer``, at most ``max_length`` tokens).
    """

    modality: str = "image"
    input_size: tuple[int, ...] = (3, 224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bicubic"
    crop_pct: float = 1.0
    tokenizer: str | None = None
    max_length: int = 128
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_chans(self) -> int:
        return int(self.input_size[0])

    def with_channels(self, in_chans: int) -> "Preprocess":
        """The same preprocessing for ``in_chans`` input channels (grayscale averages mean/std)."""
        if self.modality == "text" or in_chans == self.in_chans:
            return dataclasses.replace(self)
        mean, std = self.mean, self.std
        if len(mean) != in_chans:
            avg_mean, avg_std = sum(mean) / len(mean), sum(std) / len(std)
            mean, std = (avg_mean,) * in_chans, (avg_std,) * in_chans
        return dataclasses.replace(self, input_size=(in_chans, *self.input_size[1:]), mean=mean, std=std)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_size"], d["mean"], d["std"] = list(self.input_size), list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for key in ("input_size", "mean", "std"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def image_transform(self):
        """A callable PIL image -> float tensor ``(C, H, W)``: resize, center crop, normalise."""
        import torch
        from torchvision.transforms import v2 as T
        from torchvision.transforms import InterpolationMode

        if self.modality != "image":
            raise ValueError(f"image_transform needs an image model, this one takes {self.modality}")
        c, h, w = self.input_size
        interp = InterpolationMode(self.interpolation)
        if h == w:
            resize = T.Resize(int(round(h / self.crop_pct)), interpolation=interp, antialias=True)
        else:
            resize = T.Resize((int(round(h / self.crop_pct)), int(round(w / self.crop_pct))),
                              interpolation=interp, antialias=True)
        mode = "L" if c == 1 else "RGB"
        return T.Compose([
            T.Lambda(lambda im: im.convert(mode) if hasattr(im, "convert") and im.mode != mode else im),
            T.PILToTensor(),
            resize,
            T.CenterCrop((h, w)),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(self.mean, self.std),
        ])
