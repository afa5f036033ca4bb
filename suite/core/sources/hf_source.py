"""Hugging Face text encoders: ``hf:<repo id>`` or ``hf:/local/model_dir``.

``trust_remote_code`` is never enabled: only architectures that ship with transformers load.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import SuiteError
from ..groups import check_groups, regex_groups
from ..hub import ModelInfo, Spec, register_source
from ..model import Backbone
from ..offline import can_download, offline_error
from ..preprocess import Preprocess


class TextEncoder(nn.Module):
    """A transformer encoder pooled to one vector per text: ``(B, L)`` tokens -> ``(B, D)``."""

    def __init__(self, encoder: nn.Module, pool: str = "mean"):
        super().__init__()
        if pool not in ("mean", "cls"):
            raise SuiteError(f"pool must be 'mean' or 'cls', got {pool!r}")
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused: pooling happens here; unused weights would break DDP
        self.encoder = encoder
        self.pool = pool

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        if self.pool == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)


def _from_pretrained(cls, location: str, local_only: bool, spec: str, what: str):
    """Load from a local dir or the cache; download only when allowed and possible."""
    try:
        return cls.from_pretrained(location, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        if Path(location).is_dir():
            raise SuiteError(f"{spec}: cannot load {what} from {location}: {str(exc).splitlines()[0]}") from None
        if local_only or not can_download("hf"):
            raise offline_error(spec, what) from None
    return cls.from_pretrained(location, trust_remote_code=False)


def text_backbone(location: str, pretrained: bool = True, max_length: int = 128, pool: str = "mean",
                  local_only: bool = False, spec: str | None = None) -> Backbone:
    """A pooled text encoder and its tokenizer from a Hugging Face location."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    spec = spec or f"hf:{location}"
    tokenizer = _from_pretrained(AutoTokenizer, location, local_only, spec, "the tokenizer")
    if pretrained:
        encoder = _from_pretrained(AutoModel, location, local_only, spec, "the model weights")
    else:
        config = _from_pretrained(AutoConfig, location, local_only, spec, "the model config")
        encoder = AutoModel.from_config(config, trust_remote_code=False)
    module = TextEncoder(encoder, pool)
    groups = regex_groups(module, r"\.layers?\.(\d+)\.")
    check_groups(module, groups)
    pre = Preprocess("text", (1, max_length), (), (), "none", 1.0, tokenizer=location, max_length=max_length)
    info = {"params": sum(p.numel() for p in module.parameters()), "source_domain": "text"}
    return Backbone(module, encoder.config.hidden_size, groups, pre, pretrained, tokenizer=tokenizer, info=info)


def _examples():
    from huggingface_hub import try_to_load_from_cache

    rows = []
    for repo, note in [("ProsusAI/finbert", "FinBERT financial sentiment"),
                       ("bert-base-uncased", "BERT base"),
                       ("distilbert-base-uncased", "DistilBERT base")]:
        cached = isinstance(try_to_load_from_cache(repo, "config.json"), str)
        rows.append(ModelInfo(f"hf:{repo}", "text", cached, note + ("" if cached else " (needs network or cache)")))
    return rows


@register_source("hf", "Hugging Face transformers encoders (repo id or local directory)", examples=_examples)
def build_hf(spec: Spec, pretrained: bool = True, in_chans: int | None = None) -> Backbone:
    if spec.options.get("trust_remote_code"):
        raise SuiteError(f"{spec}: trust_remote_code is not supported: only architectures built into "
                         "transformers load, so a model directory cannot run its own code")
    return text_backbone(spec.name, pretrained=pretrained, max_length=int(spec.options.get("max_length", 128)),
                         pool=spec.options.get("pool", "mean"), spec=str(spec))
