"""Fourier domain adaptation (Yang & Soatto 2020): give source images the target's low-frequency
amplitude spectrum (its colours, illumination, texture statistics), keeping the source phase
(its content)."""

from __future__ import annotations

import numpy as np


def fda_swap(source: np.ndarray, target: np.ndarray, beta: float = 0.01) -> np.ndarray:
    """``source`` with the central ``beta`` band of its amplitude spectrum taken from ``target``.

    Both ``(H, W, C)`` or ``(H, W)`` float arrays of the same shape; returns float, unclipped.
    """
    if source.shape != target.shape:
        raise ValueError(f"shapes differ: {source.shape} vs {target.shape}")
    axes = (0, 1)
    fs = np.fft.fftshift(np.fft.fft2(source, axes=axes), axes=axes)
    ft = np.fft.fftshift(np.fft.fft2(target, axes=axes), axes=axes)
    amp, phase = np.abs(fs), np.angle(fs)
    h, w = source.shape[:2]
    b = max(1, int(np.floor(min(h, w) * beta)))
    ch, cw = h // 2, w // 2
    amp[ch - b:ch + b + 1, cw - b:cw + b + 1] = np.abs(ft)[ch - b:ch + b + 1, cw - b:cw + b + 1]
    mixed = amp * np.exp(1j * phase)
    return np.real(np.fft.ifft2(np.fft.ifftshift(mixed, axes=axes), axes=axes))


class FDATransform:
    """A PIL -> PIL augmentation: swap in the low-frequency amplitude of a random target image.

    ``targets``: a list of target images (PIL); ``p``: probability of applying it.
    """

    def __init__(self, targets: list, beta: float = 0.01, p: float = 1.0, seed: int = 0):
        if not targets:
            raise ValueError("FDA needs at least one target image")
        self.targets, self.beta, self.p = targets, beta, p
        self.rng = np.random.default_rng(seed)

    def __call__(self, img):
        from PIL import Image

        if self.rng.random() >= self.p:
            return img
        target = self.targets[int(self.rng.integers(len(self.targets)))]
        src = np.asarray(img.convert("RGB"), dtype=np.float64)
        trg = np.asarray(target.convert("RGB").resize(img.size, Image.BILINEAR), dtype=np.float64)
        return Image.fromarray(np.clip(fda_swap(src, trg, self.beta), 0, 255).astype(np.uint8))
