"""The model hub: one registry of backbone sources and a thin factory, ``create_model``.

A spec is ``source:name[?key=value&...]`` (``timm:resnet50``, ``tv:resnet18``,
``hf:ProsusAI/finbert``, ``monai:DenseNet121?spatial_dims=3``, ``embedded:efficientnet_lite0``),
or a path: a Solution directory, a Hugging Face model directory, or a ``.safetensors`` file whose
metadata names its spec. Any spec takes ``?weights=/path/to/file.safetensors`` to load local
weights into the backbone.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qsl

from .errors import SuiteError
from .model import Backbone, TransferModel

BuildFn = Callable[..., Backbone]


@dataclass(frozen=True)
class Spec:
    """A parsed model spec: ``source:name?options``."""

    source: str
    name: str
    options: dict = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        opts = "&".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.source}:{self.name}" + (f"?{opts}" if opts else "")


@dataclass
class ModelInfo:
    """One row of ``list_models``: a spec, what it takes, and whether it works offline now."""

    spec: str
    modality: str
    offline: bool
    note: str = ""


@dataclass
class Source:
    prefix: str
    build: BuildFn
    description: str
    examples: Callable[[], Iterable[ModelInfo]] | None = None


_SOURCES: dict[str, Source] = {}
_BUILTIN_SOURCES = ("embedded", "timm_source", "torchvision_source", "hf_source", "monai_source", "small")
_loaded = False


def register_source(prefix: str, description: str, examples: Callable[[], Iterable[ModelInfo]] | None = None):
    """Decorator: register ``build(spec, pretrained=..., in_chans=...) -> Backbone`` under ``prefix``."""

    def deco(fn: BuildFn) -> BuildFn:
        _SOURCES[prefix] = Source(prefix, fn, description, examples)
        return fn

    return deco


def _ensure_sources() -> None:
    global _loaded
    if not _loaded:
        for mod in _BUILTIN_SOURCES:
            importlib.import_module(f"suite.core.sources.{mod}")
        _loaded = True


def sources() -> dict[str, Source]:
    """The registered backbone sources by prefix."""
    _ensure_sources()
    return dict(_SOURCES)


def parse_spec(spec: str) -> Spec:
    """Split ``source:name?k=v`` into a :class:`Spec`; unknown sources list the valid ones."""
    _ensure_sources()
    spec = spec.strip()
    head, _, query = spec.partition("?")
    source, sep, name = head.partition(":")
    if not sep or not name:
        raise SuiteError(f"{spec!r}: not a model spec; use SOURCE:NAME with SOURCE one of "
                         f"{', '.join(sorted(_SOURCES))}, or a path to a Solution directory")
    if source not in _SOURCES:
        raise SuiteError(f"{spec!r}: unknown source {source!r}; valid sources: {', '.join(sorted(_SOURCES))}")
    return Spec(source, name, dict(parse_qsl(query)))


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or Path(spec).expanduser().exists()


def create_model(spec: str, num_classes: int = 0, in_chans: int | None = None, pretrained: bool = True,
                 task: str = "multiclass", dropout: float = 0.0, head_hidden: int = 0) -> TransferModel:
    """Turn a spec into a ready-to-fine-tune :class:`TransferModel`.

    ``num_classes=0`` gives a feature extractor (identity head). When ``num_classes`` equals the
    classes of a pretrained classifier the backbone came with (1000 for ImageNet), that classifier
    is kept, as timm does. ``in_chans`` adapts the first convolution (1 for grayscale).
    ``head_hidden`` puts a Linear-BN-ReLU bottleneck of that width before the classifier.
    """
    spec = str(spec)
    if _looks_like_path(spec):
        return _create_from_path(Path(spec).expanduser(), num_classes, in_chans, pretrained, task, dropout,
                                 head_hidden)
    parsed = parse_spec(spec)
    options = dict(parsed.options)
    weights = options.pop("weights", None)
    backbone = _SOURCES[parsed.source].build(
        Spec(parsed.source, parsed.name, options), pretrained=pretrained and not weights, in_chans=in_chans)
    if weights:
        _load_backbone_weights(backbone, Path(weights).expanduser(), spec)
    model = TransferModel(backbone, num_classes, spec=spec, task=task, dropout=dropout, head_hidden=head_hidden)
    head_state = backbone.info.get("head_state")
    if head_state is not None and num_classes == head_state["weight"].shape[0] and not weights and not head_hidden:
        model.head[-1].load_state_dict(head_state)
        model.head_pretrained = True
    return model


def _load_backbone_weights(backbone: Backbone, path: Path, spec: str) -> None:
    from .weights import load_state_dict

    tensors = load_state_dict(path)
    own = backbone.module.state_dict()
    for prefix in ("", "backbone.", "model.", "module."):
        picked = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix) and k[len(prefix):] in own}
        if len(picked) == len(own):
            break
    missing = [k for k in own if k not in picked]
    if missing:
        raise SuiteError(f"{path}: does not fit {spec}: {len(missing)} of {len(own)} backbone tensors "
                         f"missing (first: {missing[0]})")
    bad = [k for k, v in picked.items() if v.shape != own[k].shape]
    if bad:
        raise SuiteError(f"{path}: shape mismatch for {bad[0]}: {tuple(picked[bad[0]].shape)} vs "
                         f"{tuple(own[bad[0]].shape)}")
    backbone.module.load_state_dict(picked)
    backbone.pretrained = False  # weights come from a user file: the Solution stores them in full
    backbone.info.pop("head_state", None)


def _create_from_path(path: Path, num_classes, in_chans, pretrained, task, dropout, head_hidden) -> TransferModel:
    if path.is_dir() and (path / "config.json").is_file():
        from .solution import Solution, is_solution_dir

        if is_solution_dir(path):
            model = Solution.load(path).model
            if num_classes and num_classes != model.num_classes:
                model.reset_classifier(num_classes)
            return model
        return create_model(f"hf:{path}", num_classes, in_chans, pretrained, task, dropout, head_hidden)
    if path.is_file() and path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if "suite.spec" not in meta:
            raise SuiteError(f"{path}: this weight file does not name its architecture; "
                             f"use SPEC?weights={path} (for example timm:resnet18?weights={path})")
        return create_model(f"{meta['suite.spec']}?weights={path}", num_classes, in_chans, pretrained, task, dropout,
                            head_hidden)
    if path.is_file():
        raise SuiteError(f"{path}: a bare {path.suffix or 'file'} does not name its architecture; "
                         f"use SPEC?weights={path} (weights load with safetensors or torch weights_only)")
    raise SuiteError(f"{path}: no such file or directory")


def list_models(check_offline: bool = True) -> list[ModelInfo]:
    """Example specs of every source, each marked with whether it works offline right now."""
    rows: list[ModelInfo] = []
    for src in sources().values():
        if src.examples is not None:
            rows.extend(src.examples())
    return rows
