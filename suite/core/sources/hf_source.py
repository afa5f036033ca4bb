"""Hugging Face text encoders: ``hf:<repo id>`` or ``hf:/local/model_dir``.

A sequence-classification checkpoint (``ProsusAI/finbert``, any ``*ForSequenceClassification``)
brings its classifier: with a BERT-style pooler and a linear classifier, the encoder pools with
that pooler and ``create_model(spec, num_classes=<its classes>)`` keeps the trained classifier
(``info["head_labels"]`` names its outputs); other heads are dropped and the encoder is used.
``trust_remote_code`` is never enabled: only architectures that ship with transformers load.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from ..errors import SuiteError, UnsafeFileError
from ..groups import check_groups, regex_groups
from ..hub import ModelInfo, Spec, register_source
from ..model import Backbone
from ..offline import can_download, offline_error
from ..preprocess import Preprocess


class TextEncoder(nn.Module):
    """A transformer encoder pooled to one vector per text: ``(B, L)`` tokens -> ``(B, D)``.

    ``pool``: ``mean`` over tokens, the ``cls`` token, or the encoder's own ``pooler`` (BERT's
    dense+tanh on the first token, what its sequence classifiers were trained on)."""

    def __init__(self, encoder: nn.Module, pool: str = "mean"):
        super().__init__()
        if pool not in ("mean", "cls", "pooler"):
            raise SuiteError(f"pool must be 'mean', 'cls' or 'pooler', got {pool!r}")
        if pool == "pooler" and getattr(encoder, "pooler", None) is None:
            raise SuiteError("pool='pooler' needs an encoder with a pooler (BERT-style)")
        if pool != "pooler" and getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # unused: pooling happens here; unused weights would break DDP
        self.encoder = encoder
        self.pool = pool

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.pool == "pooler":
            return out.pooler_output
        hidden = out.last_hidden_state
        if self.pool == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)


def _from_pretrained(cls, location: str, local_only: bool, spec: str, what: str):
    """Load from a local dir or the cache; download only when allowed and possible."""
    try:
        return cls.from_pretrained(location, local_files_only=True, trust_remote_code=False)
    except pickle.UnpicklingError:  # a pickle-based weights file holding more than tensors
        raise UnsafeFileError(f"{spec}: refused to load {what} from {location}: a pickle-based file holds "
                              "objects other than tensors (nothing in it was run); use .safetensors weights") from None
    except (OSError, ValueError) as exc:
        if Path(location).is_dir():
            raise SuiteError(f"{spec}: cannot load {what} from {location}: {str(exc).splitlines()[0]}") from None
        if local_only or not can_download("hf"):
            raise offline_error(spec, what) from None
    return cls.from_pretrained(location, trust_remote_code=False)


POOLER_CLASSIFIERS = ("bert", "albert", "mobilebert", "megatron-bert", "ernie")  # one Linear on the pooler


def _sequence_classifier(location: str, local_only: bool, spec: str):
    """``(encoder, classifier state, label names)`` of a ``*ForSequenceClassification`` checkpoint;
    the classifier is ``None`` unless it is one linear layer on a BERT-style pooler."""
    from transformers import AutoModelForSequenceClassification

    full = _from_pretrained(AutoModelForSequenceClassification, location, local_only, spec, "the model weights")
    encoder, classifier = full.base_model, getattr(full, "classifier", None)
    if not isinstance(classifier, nn.Linear) or getattr(encoder, "pooler", None) is None:
        return encoder, None, None
    id2label = full.config.id2label or {}
    labels = [str(id2label.get(i, id2label.get(str(i), i))) for i in range(classifier.out_features)]
    return encoder, {k: v.detach().clone() for k, v in classifier.state_dict().items()}, labels


def text_backbone(location: str, pretrained: bool = True, max_length: int = 128, pool: str | None = None,
                  local_only: bool = False, spec: str | None = None) -> Backbone:
    """A pooled text encoder and its tokenizer from a Hugging Face location.

    ``pool=None`` means ``pooler`` for a BERT-style sequence classifier (its trained classifier is
    kept), else ``mean``.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    spec = spec or f"hf:{location}"
    tokenizer = _from_pretrained(AutoTokenizer, location, local_only, spec, "the tokenizer")
    config = _from_pretrained(AutoConfig, location, local_only, spec, "the model config")
    is_classifier = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
    if pool is None:
        pool = "pooler" if is_classifier and config.model_type in POOLER_CLASSIFIERS else "mean"
    head_state = head_labels = None
    if pretrained and is_classifier:
        encoder, head_state, head_labels = _sequence_classifier(location, local_only, spec)
    elif pretrained:
        encoder = _from_pretrained(AutoModel, location, local_only, spec, "the model weights")
    else:
        encoder = AutoModel.from_config(config, trust_remote_code=False)
    if pool != "pooler":
        head_state = head_labels = None  # the classifier was trained on pooler outputs only
    module = TextEncoder(encoder, pool)
    groups = regex_groups(module, r"\.layers?\.(\d+)\.")
    check_groups(module, groups)
    pre = Preprocess("text", (1, max_length), (), (), "none", 1.0, tokenizer=location, max_length=max_length)
    info = {"params": sum(p.numel() for p in module.parameters()), "source_domain": "text", "pool": pool}
    if head_state is not None:
        info.update(head_state=head_state, head_labels=head_labels)
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
                         pool=spec.options.get("pool"), spec=str(spec))
