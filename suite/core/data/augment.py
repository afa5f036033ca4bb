"""Training augmentations (PIL -> PIL presets on albumentations) and corruptions for robustness reports.

An augmentation runs in front of the model's ``Preprocess.image_transform()``; it keeps the
image mode (``L`` stays ``L``) and, with ``size``, returns ``size x size`` images.
"""

from __future__ import annotations

import sys
import zlib
from typing import Callable

import numpy as np

from ..errors import SuiteError

PRESETS = {"none", "light", "standard", "medical", "field", "field_mix"}
CLUTTER_PROBABILITY = 0.5  # "field": chance of replacing the background around the subject by texture
FIELD_MIX_SHARE = 0.5  # "field_mix": share of images that get "field"; the others get "light"
# soil, dry grass, grass, stone, sand, bark: colours for the random background texture
CLUTTER_COLOURS = np.array([(62, 46, 30), (140, 128, 80), (68, 104, 42), (96, 96, 90), (176, 160, 130), (88, 64, 44)],
                           dtype=np.float32)


# ----------------------------------------------------------------------------- background clutter


def _texture(height: int, width: int, rng) -> np.ndarray:
    """A random natural-looking RGB texture: multi-scale smooth noise between two earthy colours."""
    import cv2

    mix = np.zeros((height, width), np.float32)
    for cell, weight in ((48, 0.5), (12, 0.3), (3, 0.2)):
        coarse = rng.random((height // cell + 2, width // cell + 2)).astype(np.float32)
        mix += weight * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    mix = np.clip((mix - mix.min()) / (np.ptp(mix) + 1e-6), 0, 1)[..., None]
    low, high = CLUTTER_COLOURS[rng.choice(len(CLUTTER_COLOURS), 2, replace=False)]
    return low * (1 - mix) + high * mix


def _background_mask(rgb: np.ndarray, tolerance: float = 40) -> np.ndarray:
    """Pixels close to the median border colour and connected to the border (a plain backdrop)."""
    import cv2

    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float32)
    distance = np.abs(rgb.astype(np.float32) - np.median(border, axis=0)).max(axis=-1)
    _, components = cv2.connectedComponents((distance < tolerance).astype(np.uint8), connectivity=4)
    edge = np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]])
    return np.isin(components, np.unique(edge[edge > 0]))


LEAF_HUE = (12, 95)  # OpenCV hue units (0-180): yellow-brown through green to blue-green


def leaf_mask(rgb: np.ndarray, min_saturation: int = 40, min_value: int = 35) -> np.ndarray:
    """Leaf pixels of an RGB uint8 image ``(H, W, 3)`` by colour segmentation -> bool ``(H, W)``.

    Plant-coloured pixels (hue in ``LEAF_HUE``, saturated, not dark), cleaned by a morphological
    opening and closing; regions smaller than a fifth of the largest are dropped and holes (dark or
    grey lesions inside the leaf) are filled. Grey, blue or purple backdrops and shadows are background.
    """
    import cv2

    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    hue, sat, val = np.moveaxis(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV), -1, 0)
    plant = ((hue >= LEAF_HUE[0]) & (hue <= LEAF_HUE[1]) & (sat >= min_saturation) & (val >= min_value))
    side = max(3, (min(rgb.shape[:2]) // 64) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    plant = cv2.morphologyEx(plant.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    plant = cv2.morphologyEx(plant, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                                 (2 * side + 1, 2 * side + 1)))
    count, components, stats, _ = cv2.connectedComponentsWithStats(plant, connectivity=8)
    if count <= 1:
        return np.zeros(rgb.shape[:2], bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.isin(components, 1 + np.flatnonzero(areas >= 0.2 * areas.max()))
    outside = np.pad(~keep, 1, constant_values=True).astype(np.uint8)  # holes: not reachable from the border
    cv2.floodFill(outside, None, (0, 0), 2)
    return (outside[1:-1, 1:-1] != 2) | keep


def add_background_clutter(rgb: np.ndarray, rng, opacity: float = 1.0) -> np.ndarray:
    """``rgb`` with its background (10-90% of the image) replaced by a random texture.

    The background is what :func:`leaf_mask` does not call leaf (shadows on the backdrop included);
    when colour segmentation finds no plausible leaf, a plain backdrop around the border is used.
    """
    import cv2

    mask = ~leaf_mask(rgb)
    if not 0.1 <= mask.mean() <= 0.9:
        mask = _background_mask(rgb)
    if not 0.1 <= mask.mean() <= 0.9:
        return rgb
    soft = opacity * cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=1.5)[..., None]
    texture = _texture(*rgb.shape[:2], rng)
    return np.clip(rgb * (1 - soft) + texture * soft, 0, 255).round().astype(np.uint8)


# ----------------------------------------------------------------------------- presets


def _preset_transforms(preset: str, side: int) -> list:
    """The albumentations steps of a preset for ``side``-pixel images (after any resizing)."""
    import albumentations as A
    import cv2

    def affine(shift: float, scale: float, degrees: float, p: float):
        return A.Affine(translate_percent=(-shift, shift), scale=(1 - scale, 1 + scale), rotate=(-degrees, degrees),
                        border_mode=cv2.BORDER_REFLECT_101, p=p)

    if preset == "none":
        return []
    if preset == "light":
        return [A.HorizontalFlip(p=0.5), affine(0.05, 0.05, 10, p=0.5),
                A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.3)]
    if preset == "standard":
        return [A.HorizontalFlip(p=0.5), affine(0.1, 0.15, 15, p=0.6),
                A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03, p=0.5),
                A.GaussianBlur(sigma_limit=(0.2, 1.2), p=0.1)]
    if preset == "medical":
        return [affine(0.05, 0.1, 10, p=0.7),
                A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5)]
    return [  # field photos: hand-held camera, sun, shadows, cheap sensors and compression
        A.HorizontalFlip(p=0.5),
        affine(0.05, 0.15, 20, p=0.5),
        A.Perspective(scale=(0.02, 0.08), border_mode=cv2.BORDER_REFLECT_101, p=0.3),
        A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=20, val_shift_limit=10, p=0.4),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.4),
        A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 2), shadow_intensity_range=(0.2, 0.5),
                       p=0.3),
        A.RandomSunFlare(flare_roi=(0, 0, 1, 0.5), src_radius=max(8, side // 4), num_flare_circles_range=(2, 5),
                         p=0.15),
        A.OneOf([A.MotionBlur(blur_limit=(3, 7)), A.Defocus(radius=(1, 3), alias_blur=(0.1, 0.3)),
                 A.GaussianBlur(sigma_limit=(0.5, 1.5))], p=0.3),
        A.ImageCompression(quality_range=(40, 90), p=0.3),
    ]


class Augmentation:
    """A PIL -> PIL training augmentation; build it with :func:`augmentation`.

    Random state comes from ``seed``; inside a DataLoader worker it is re-derived from the
    worker's torch seed so workers (and epochs) do not repeat each other.
    """

    def __init__(self, preset: str, size: int | None, seed: int | None):
        self.preset, self.size, self.seed = preset, size, seed
        self._pipelines: dict[tuple[int, int], Callable] = {}
        self._rng = np.random.default_rng(seed)
        self._worker_seed: int | None = None

    def __repr__(self) -> str:
        return f"augmentation({self.preset!r}, size={self.size})"

    def _follow_worker_seed(self) -> None:
        torch = sys.modules.get("torch")
        info = torch.utils.data.get_worker_info() if torch is not None else None
        if info is None or info.seed == self._worker_seed:
            return
        self._worker_seed = info.seed
        seed = int(np.random.SeedSequence([self.seed or 0, info.seed]).generate_state(1)[0])
        self._rng = np.random.default_rng(seed)
        for pipeline in self._pipelines.values():
            pipeline.set_random_seed(seed)

    def _pipeline(self, preset: str, height: int, width: int):
        import albumentations as A

        out = (self.size, self.size) if self.size else (height, width)
        if (preset, out) not in self._pipelines:
            resize = [A.Resize(*out, area_for_downscale="image")] if self.size else []
            steps = _preset_transforms(preset, min(out))
            self._pipelines[preset, out] = A.Compose(resize + steps, seed=int(self._rng.integers(2**31)))
        return self._pipelines[preset, out]

    def _draw_preset(self) -> str:
        """The preset for this image: ``field_mix`` picks ``field`` or ``light``, the others are fixed."""
        if self.preset != "field_mix":
            return self.preset
        return "field" if self._rng.random() < FIELD_MIX_SHARE else "light"

    def __call__(self, img):
        from PIL import Image

        if self.preset == "none" and (self.size is None or img.size == (self.size, self.size)):
            return img
        self._follow_worker_seed()
        mode = img.mode if img.mode in ("L", "RGB") else "RGB"
        rgb = np.asarray(img.convert("RGB"))
        preset = self._draw_preset()
        if preset == "field" and self._rng.random() < CLUTTER_PROBABILITY:
            rgb = add_background_clutter(rgb, self._rng)
        out = self._pipeline(preset, *rgb.shape[:2])(image=rgb)["image"]
        return Image.fromarray(out).convert(mode)


def volume_augmentation(preset: str, seed: int | None = None):
    """An array -> array training augmentation of volumes ``(D, H, W)`` or ``(C, D, H, W)``: a random
    flip along each spatial axis; presets beyond ``light`` also shift by up to 2 voxels (wrapping)."""
    if preset not in PRESETS:
        raise SuiteError(f"unknown augmentation preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    rng = np.random.default_rng(seed)

    def apply(volume):
        v = np.asarray(volume)
        if preset == "none":
            return v
        axes = tuple(range(v.ndim - 3, v.ndim))
        flips = tuple(ax for ax in axes if rng.random() < 0.5)
        if flips:
            v = np.flip(v, flips)
        if preset != "light":
            v = np.roll(v, tuple(int(s) for s in rng.integers(-2, 3, size=3)), axis=axes)
        return np.ascontiguousarray(v)

    return apply


def augmentation(preset: str, size: int | None = None, seed: int | None = None) -> Augmentation:
    """A PIL -> PIL augmentation preset: ``none``, ``light``, ``standard``, ``medical`` (no colour
    changes or flips: small shifts/rotations/scaling, brightness/contrast), ``field`` (shadows,
    glare, blur, perspective, JPEG, colour shifts, background clutter) or ``field_mix`` (each image
    gets ``field`` or ``light``, half and half: the model also sees lab-like photos)."""
    if preset not in PRESETS:
        raise SuiteError(f"unknown augmentation preset {preset!r}; choose one of {sorted(PRESETS)}")
    if size is not None and (not isinstance(size, int) or size < 8):
        raise SuiteError(f"augmentation size must be an integer of at least 8 pixels, got {size!r}")
    return Augmentation(preset, size, seed)


# ----------------------------------------------------------------------------- corruptions


def _blur(img, severity, rng):
    """Gaussian blur with ImageNet-C's sigmas, scaled from 224 pixels to the image's size."""
    import cv2

    sigma = (1, 2, 3, 4, 6)[severity - 1] * min(img.size) / 224
    return _from_array(cv2.GaussianBlur(np.asarray(img, np.float32), (0, 0), sigmaX=sigma))


def _jpeg(img, severity, rng):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=(25, 18, 15, 10, 7)[severity - 1])
    return Image.open(buffer).convert("RGB")


def _noise(img, severity, rng):
    sigma = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1] * 255
    return _from_array(np.asarray(img, np.float32) + rng.normal(0, sigma, (img.height, img.width, 3)))


def _brightness(img, severity, rng):
    from PIL import Image

    hsv = np.asarray(img.convert("HSV"), np.float32)
    hsv[..., 2] += (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1] * 255
    return Image.fromarray(np.clip(hsv, 0, 255).astype(np.uint8), "HSV").convert("RGB")


def _contrast(img, severity, rng):
    arr = np.asarray(img, np.float32)
    mean = arr.mean(axis=(0, 1), keepdims=True)
    return _from_array((arr - mean) * (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1] + mean)


def _shadow(img, severity, rng):
    """A soft-edged shadow over part of the image, cast along a random direction."""
    import cv2

    covered = (0.25, 0.35, 0.45, 0.5, 0.6)[severity - 1]
    remaining_light = (0.8, 0.65, 0.5, 0.4, 0.3)[severity - 1]
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[: img.height, : img.width]
    projection = x * np.cos(angle) + y * np.sin(angle)
    inside = (projection < np.quantile(projection, covered)).astype(np.float32)
    soft = cv2.GaussianBlur(inside, (0, 0), sigmaX=max(1.0, min(img.size) / 50))[..., None]
    return _from_array(np.asarray(img, np.float32) * (1 - soft * (1 - remaining_light)))


def _glare(img, severity, rng):
    """A bright, washed-out spot such as sun glare on a lens."""
    radius = (0.15, 0.25, 0.35, 0.45, 0.55)[severity - 1] * np.hypot(img.width, img.height)
    strength = (0.4, 0.55, 0.7, 0.8, 0.9)[severity - 1]
    cy, cx = rng.uniform(0, img.height), rng.uniform(0, img.width)
    y, x = np.mgrid[: img.height, : img.width]
    light = strength * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / radius**2)[..., None]
    arr = np.asarray(img, np.float32)
    return _from_array(arr + (255 - arr) * light)


def _perspective(img, severity, rng):
    """A camera tilt: each corner moves inwards by up to a severity-dependent share of the size."""
    from PIL import Image

    w, h = img.size
    shift = (0.04, 0.07, 0.1, 0.13, 0.16)[severity - 1]
    corners = np.array([(0, 0), (w, 0), (w, h), (0, h)], dtype=np.float64)
    inward = np.array([(1, 1), (-1, 1), (-1, -1), (1, -1)]) * rng.uniform(0.3, 1.0, (4, 2)) * shift * (w, h)
    rows, rhs = [], []
    for (x, y), (u, v) in zip(corners, corners + inward):  # output corner (x, y) samples input (u, v)
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    coefficients = np.linalg.solve(np.array(rows), np.array(rhs))
    return img.transform(img.size, Image.Transform.PERSPECTIVE, tuple(coefficients), Image.Resampling.BILINEAR)


def _clutter(img, severity, rng):
    """The backdrop around the leaf (see :func:`leaf_mask`) blended with soil, grass or stone texture."""
    opacity = (0.35, 0.55, 0.7, 0.85, 1.0)[severity - 1]
    return _from_array(add_background_clutter(np.asarray(img), rng, opacity=opacity).astype(np.float32))


def _colour(img, severity, rng):
    """A colour cast (white balance of another camera or light): warm or cool, growing with severity."""
    shift = (0.08, 0.14, 0.2, 0.27, 0.35)[severity - 1] * rng.choice([-1, 1])
    gains = np.array([1 + shift, 1 + 0.2 * shift, 1 - shift], np.float32)
    return _from_array(np.asarray(img, np.float32) * gains)


def _from_array(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")


CORRUPTIONS = {"blur": _blur, "jpeg": _jpeg, "noise": _noise, "brightness": _brightness, "contrast": _contrast,
               "shadow": _shadow, "glare": _glare, "perspective": _perspective, "clutter": _clutter,
               "colour": _colour}


class Corruption:
    """A PIL -> PIL corruption; build it with :func:`corruption`."""

    def __init__(self, name: str, severity: int, seed: int):
        self.name, self.severity, self.seed = name, severity, seed

    def __repr__(self) -> str:
        return f"corruption({self.name!r}, {self.severity})"

    def __call__(self, img):
        mode = img.mode if img.mode in ("L", "RGB") else "RGB"
        rgb = img.convert("RGB")
        rng = np.random.default_rng([self.seed, zlib.crc32(rgb.tobytes())])
        return CORRUPTIONS[self.name](rgb, self.severity, rng).convert(mode)


def corruption(name: str, severity: int, seed: int = 0) -> Corruption:
    """A PIL -> PIL corruption at ``severity`` 1 (mild) .. 5 (severe), for robustness reports.

    Deterministic: the same image, seed and severity always give the same result (the random
    parts, such as where a shadow falls, are drawn from ``seed`` and the image's pixels).
    """
    if name not in CORRUPTIONS:
        raise SuiteError(f"unknown corruption {name!r}; choose one of {sorted(CORRUPTIONS)}")
    if severity not in (1, 2, 3, 4, 5):
        raise SuiteError(f"corruption severity must be an integer from 1 to 5, got {severity!r}")
    return Corruption(name, severity, seed)
