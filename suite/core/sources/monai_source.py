"""MONAI networks, 2D or 3D: ``monai:DenseNet121``, ``monai:resnet18?spatial_dims=3&size=64``."""

from __future__ import annotations

import inspect

from ..errors import SuiteError
from ..groups import check_groups, children_groups
from ..hub import ModelInfo, Spec, register_source
from ..model import Backbone
from ..offline import can_download, offline_error
from ..preprocess import Preprocess
from ._common import pop_last_linear

_CHANNEL_ARGS = ("in_channels", "n_input_channels")
_CLASS_ARGS = ("out_channels", "num_classes")


def _network(name: str):
    from monai.networks import nets

    lookup = {n.lower(): n for n in dir(nets)
              if not n.startswith("_") and (inspect.isclass(getattr(nets, n)) or inspect.isfunction(getattr(nets, n)))}
    if name.lower() not in lookup:
        choices = [n for n in ("DenseNet121", "DenseNet169", "resnet18", "resnet34", "resnet50", "EfficientNetBN",
                               "SEResNet50", "ViT") if n.lower() in lookup]
        raise SuiteError(f"monai:{name}: unknown MONAI network; e.g. {', '.join(choices)}")
    return getattr(nets, lookup[name.lower()])


def _parameters(cls) -> dict:
    """Constructor parameters; factory functions with ``**kwargs`` (``resnet18``) add their class's."""
    import re

    from monai.networks import nets

    params = dict(inspect.signature(cls).parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        base = re.sub(r"\d+$", "", cls.__name__).lower()
        for name in dir(nets):
            if name.lower() == base and inspect.isclass(getattr(nets, name)):
                params.update(inspect.signature(getattr(nets, name)).parameters)
    return params


def _examples():
    return [ModelInfo("monai:DenseNet121", "image", True, "2D, random init offline (pretrained needs network)"),
            ModelInfo("monai:resnet18?spatial_dims=3", "volume", True, "3D ResNet-18, random init"),
            ModelInfo("monai:DenseNet121?spatial_dims=3", "volume", True, "3D DenseNet-121, random init")]


def _network_options(spec: Spec, params: dict) -> dict:
    """Constructor arguments given in the spec (``widen_factor=0.25``, ``no_max_pool=true``), typed
    like their defaults; ``size`` and ``spatial_dims`` are the suite's own."""
    fixed = {"size", "spatial_dims", "pretrained", *_CHANNEL_ARGS, *_CLASS_ARGS}
    out = {}
    for key, text in spec.options.items():
        if key in fixed:
            continue
        if key not in params:
            valid = sorted(k for k, p in params.items() if k not in fixed and p.default is not inspect.Parameter.empty)
            raise SuiteError(f"{spec}: unknown option {key!r}; valid options: size, spatial_dims, {', '.join(valid)}")
        default = params[key].default
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1")
            elif isinstance(default, int):
                out[key] = int(text)
            elif isinstance(default, float):
                out[key] = float(text)
            else:
                out[key] = text
        except ValueError:
            raise SuiteError(f"{spec}: option {key}={text!r} must be a {type(default).__name__}") from None
    return out


@register_source("monai", "MONAI networks, 2D and 3D (spatial_dims=2|3, size=N)", examples=_examples)
def build_monai(spec: Spec, pretrained: bool = True, in_chans: int | None = None) -> Backbone:
    cls = _network(spec.name)
    dims = int(spec.options.get("spatial_dims", 2))
    if dims not in (2, 3):
        raise SuiteError(f"{spec}: spatial_dims must be 2 or 3")
    params = _parameters(cls)
    kwargs = {"spatial_dims": dims}
    chan_arg = next((a for a in _CHANNEL_ARGS if a in params), None)
    if chan_arg:
        kwargs[chan_arg] = in_chans or 1
    class_arg = next((a for a in _CLASS_ARGS if a in params), None)
    if class_arg:
        kwargs[class_arg] = 2
    kwargs.update(_network_options(spec, params))
    if pretrained:
        if "pretrained" not in params:
            raise SuiteError(f"{spec}: MONAI ships no pretrained weights for {cls.__name__}; "
                             "pass pretrained=False (--no-pretrained) to train it from scratch")
        if not can_download("torch"):
            raise offline_error(str(spec), "the pretrained weights")
        kwargs["pretrained"] = True
    try:
        model = cls(**kwargs)
    except Exception as exc:
        raise SuiteError(f"{spec}: cannot build {cls.__name__}: {exc}") from None
    num_features, _ = pop_last_linear(model)
    groups = children_groups(model)
    check_groups(model, groups)
    size = int(spec.options.get("size", 224 if dims == 2 else 64))
    chans = in_chans or 1
    pre = Preprocess("image" if dims == 2 else "volume", (chans, *([size] * dims)), (0.0,) * chans,
                     (1.0,) * chans, "bilinear", 1.0)
    info = {"params": sum(p.numel() for p in model.parameters()), "spatial_dims": dims}
    return Backbone(model, num_features, groups, pre, pretrained, info=info)
