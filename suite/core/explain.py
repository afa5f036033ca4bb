"""Grad-CAM for image models, 2D and 3D (Selvaraju et al. 2017, as ``monai.visualize.GradCAM``).

``gradcam(model, x)`` returns one map per input in [0, 1], shaped like the input's spatial dims.
An ensemble's map is the mean of the maps at each member's target layer, all from one pass.
The target layer is found automatically: the last module, in execution order, whose output is
still a spatial feature map (``(B, C, H, W)`` or ``(B, C, D, H, W)`` with more than one position),
which is the final convolutional stage of timm, torchvision and MONAI backbones.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .errors import SuiteError


def _spatial_outputs(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """(name, output shape) of every module with a spatial tensor output, in the order they finished."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooks = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(_m, _inp, out, name=name):
            if torch.is_tensor(out) and out.ndim in (4, 5):
                seen.append((name, tuple(out.shape)))

        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(x[:1])
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return seen


def find_target_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the last module producing a spatial map with more than one position (see module doc)."""
    candidates = [(n, s) for n, s in _spatial_outputs(model, x)
                  if int(np.prod(s[2:])) > 1 and "pool" not in n.rsplit(".", 1)[-1].lower()]
    if not candidates:
        raise SuiteError(f"no convolutional feature map found in {type(model).__name__} for input "
                         f"{tuple(x.shape)}: Grad-CAM needs a CNN backbone and a large enough input")
    return candidates[-1][0]


def target_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The Grad-CAM target of each network in ``model``: one layer, or one per ensemble member (the
    members share one architecture, so the first one's layer names them all)."""
    from .ensemble import EnsembleModel

    if not isinstance(model, EnsembleModel):
        return [find_target_layer(model, x)]
    layer = find_target_layer(model.members[0], x)
    return [f"members.{i}.{layer}" for i in range(len(model.members))]


def _min_max(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map to [0, 1] with high = more evidence (MONAI's default normaliser inverts)."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    shape = (-1,) + (1,) * (maps.ndim - 1)
    return (maps - lo.view(shape)) / scale.view(shape)


def gradcam(model: nn.Module, x: torch.Tensor, class_idx: int | list[int] | None = None,
            layer: str | None = None) -> np.ndarray:
    """Grad-CAM maps ``(B, H, W)`` or ``(B, D, H, W)`` in [0, 1] for a batch ``x`` of model inputs.

    ``class_idx`` is the class to explain (default: each input's predicted class); ``layer`` names
    the target module (default: :func:`target_layers`: for an ensemble, each member's own, the maps
    averaged, every one taken through the ensemble's output).
    """
    if not torch.is_tensor(x) or x.ndim not in (4, 5):
        raise SuiteError(f"Grad-CAM needs an image batch (B, C, H, W) or volume batch (B, C, D, H, W), "
                         f"got {getattr(x, 'shape', type(x).__name__)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device)
    hooks = []
    try:
        layers = [layer] if layer else target_layers(model, x)
        modules = dict(model.named_modules())
        seen: dict[str, torch.Tensor] = {}

        def keep(name):
            def hook(_m, _inp, out):
                seen[name] = out
                if out.requires_grad:
                    out.retain_grad()
            return hook

        hooks = [modules[name].register_forward_hook(keep(name)) for name in layers]
        if class_idx is None:
            with torch.no_grad():
                class_idx = model(x).argmax(-1).tolist()
        elif not isinstance(class_idx, (list, tuple)):
            class_idx = [int(class_idx)] * len(x)
        with torch.enable_grad():
            # one input at a time, so each input's gradient is that of its own class score only
            maps = torch.cat([_maps_of_one(model, x[i:i + 1], int(c), layers, seen) for i, c in enumerate(class_idx)])
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    maps = maps.detach().float().cpu()[:, 0]
    return np.nan_to_num(maps.numpy(), nan=0.0).clip(0.0, 1.0)


def _maps_of_one(model: nn.Module, x: torch.Tensor, class_idx: int, layers: list[str], seen: dict) -> torch.Tensor:
    """The Grad-CAM map ``(1, 1, *spatial)`` of one input: one forward and one backward pass; the mean
    over ``layers`` of each layer's map (channels weighted by their mean gradient, ReLU, upsampled)."""
    x = x.detach().clone().requires_grad_(True)  # gradients flow even through a frozen backbone
    model.zero_grad(set_to_none=True)
    model(x)[:, class_idx].sum().backward()
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    maps = []
    for name in layers:
        acti = seen[name]
        if acti.grad is None:
            raise SuiteError(f"Grad-CAM: no gradient reached layer {name!r}")
        weights = acti.grad.flatten(2).mean(2).view(*acti.shape[:2], *[1] * (acti.ndim - 2))
        cam = nn.functional.relu((weights * acti).sum(1, keepdim=True))
        cam = nn.functional.interpolate(cam, size=x.shape[2:], mode=mode, align_corners=False)
        maps.append(_min_max(cam.detach()))
    mean = torch.stack(maps).mean(0)
    return mean if len(maps) == 1 else _min_max(mean)


def overlay(image, cam: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> np.ndarray:
    """Blend a map in [0, 1] over an image (H, W) or (H, W, C); returns RGB uint8 ``(H, W, 3)``.

    The map is resized to the image when their sizes differ.
    """
    import matplotlib

    from PIL import Image

    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)  # (C, H, W) -> (H, W, C)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    img = img.astype(np.float32)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    rgb = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
    cam = np.asarray(cam, dtype=np.float32)
    if cam.shape != rgb.shape[:2]:
        cam = np.asarray(Image.fromarray(cam).resize((rgb.shape[1], rgb.shape[0]), Image.BILINEAR))
    heat = matplotlib.colormaps[colormap](np.clip(cam, 0, 1))[..., :3]
    out = (1 - alpha) * rgb + alpha * heat
    return (out * 255).round().clip(0, 255).astype(np.uint8)


def explain_image(solution, item, class_idx: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Grad-CAM of one raw image through a Solution: (map (H, W) in [0, 1], overlay RGB, class index).

    The overlay is drawn on the model's input (after the Solution's preprocessing).
    """
    x = solution.transform(item)[None]
    if class_idx is None:
        with torch.no_grad():
            class_idx = int(solution.model(x.to(solution.device)).argmax(-1)[0])
    cam = gradcam(solution.model, x, class_idx=class_idx)[0]
    mean = np.asarray(solution.preprocess.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(solution.preprocess.std, dtype=np.float32)[:, None, None]
    shown = x[0].numpy() * std + mean
    return cam, overlay(shown, cam), class_idx
