"""Continued pretraining of a text backbone on unlabelled in-domain text (masked language modelling).

Gururangan et al. 2020 ("Don't Stop Pretraining") showed that a few epochs of the pretraining
objective on the task's own unlabelled texts (task-adaptive pretraining) help most when labels are
few. :func:`continue_pretraining` does that for a text ``TransferModel`` in place, before it is
fine-tuned: a fresh BERT-style prediction head (dense, GELU, LayerNorm, decoder tied to the word
embeddings) is trained with the encoder and thrown away afterwards, so the model keeps its shape.

With ``lora_rank`` only low-rank adapters on the encoder's linear layers train and are merged at
the end: every changed matrix then differs from the base by rank ``lora_rank`` at most, which
``Solution.save(low_rank=...)`` stores as two small factors.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import SuiteError
from .trainer import lr_factor

MASK_SHARE = 0.15  # BERT: 15% of tokens are predicted; of those 80% [MASK], 10% random, 10% unchanged
LORA_TARGETS = ("query", "key", "value", "dense")


class _MaskedLMHead(nn.Module):
    """BERT's prediction head with its decoder tied to the encoder's word embeddings."""

    def __init__(self, embeddings: nn.Embedding, hidden: int, eps: float):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=eps))
        self.embeddings = embeddings
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.transform(hidden) @ self.embeddings.weight.T + self.bias


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int], mask_id: int,
                vocab_size: int, generator: torch.Generator, share: float = MASK_SHARE):
    """``(masked input ids, targets)``: targets are -100 except at the chosen positions."""
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids))
    chosen = candidates & (torch.rand(input_ids.shape, generator=generator) < share)
    for row in torch.nonzero(candidates.any(1) & ~chosen.any(1)).flatten():  # at least one per text
        positions = torch.nonzero(candidates[row]).flatten()
        chosen[row, positions[torch.randint(len(positions), (1,), generator=generator)]] = True
    targets = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    draw = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (draw < 0.8)] = mask_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[swap] = torch.randint(vocab_size, (int(swap.sum()),), generator=generator)
    return masked, targets


def _encoder_of(model) -> nn.Module:
    encoder = getattr(getattr(model, "backbone", None), "encoder", None)
    if getattr(getattr(model, "preprocess", None), "modality", None) != "text" or encoder is None \
            or not hasattr(encoder, "get_input_embeddings") or model.tokenizer is None:
        raise SuiteError("continued pretraining needs a text model with a Hugging Face encoder and its tokenizer")
    if getattr(model.tokenizer, "mask_token_id", None) is None:
        raise SuiteError("the tokenizer has no mask token: masked language modelling is not possible")
    return encoder


def continue_pretraining(model, texts: list[str], epochs: int = 10, lr: float = 1e-4, batch_size: int = 32,
                         max_length: int | None = None, weight_decay: float = 0.01, warmup: float = 0.06,
                         lora_rank: int | None = None, seed: int = 0,
                         progress: Callable[[dict], None] | None = None) -> dict:
    """Masked-language-model training of ``model``'s text encoder on ``texts``, in place.

    Returns ``{"epochs", "texts", "seconds", "history": [{"epoch", "loss", "accuracy"}]}``: the
    masked-token loss and accuracy per epoch (on the training texts; they should fall and rise).
    """
    encoder = _encoder_of(model)
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) < 2:
        raise SuiteError("continued pretraining needs at least 2 non-empty texts")
    if epochs < 1 or lr <= 0 or batch_size < 1:
        raise SuiteError("epochs and batch_size must be >= 1 and lr > 0")
    tokenizer, config = model.tokenizer, encoder.config
    max_length = max_length or model.preprocess.max_length
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = _MaskedLMHead(encoder.get_input_embeddings(), config.hidden_size, getattr(config, "layer_norm_eps", 1e-12))
    if lora_rank:
        from peft import LoraConfig, get_peft_model

        names = {n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)}
        targets = [t for t in LORA_TARGETS if t in names]
        if not targets:
            raise SuiteError(f"no linear layers named {LORA_TARGETS} in the encoder for LoRA")
        encoder = get_peft_model(encoder, LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.05,
                                                     target_modules=targets))
    else:
        encoder.requires_grad_(True)
    params = [p for p in list(encoder.parameters()) + list(head.transform.parameters()) + [head.bias]
              if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(texts) / batch_size)
    warm = max(1, int(warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps, warm, "linear"))
    special = list(tokenizer.all_special_ids)
    history, start, rng = [], time.perf_counter(), np.random.default_rng(seed)
    was_training = encoder.training
    encoder.train()
    head.train()
    for epoch in range(epochs):
        total = correct = count = 0.0
        order = rng.permutation(len(texts))
        for first in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[first:first + batch_size]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            ids, targets = mask_tokens(enc["input_ids"], enc["attention_mask"], special, tokenizer.mask_token_id,
                                       len(tokenizer), generator)
            hidden = encoder(input_ids=ids, attention_mask=enc["attention_mask"]).last_hidden_state
            picked = targets != -100
            logits = head(hidden[picked])  # only the masked positions go through the vocabulary
            loss = nn.functional.cross_entropy(logits, targets[picked])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            n = int(picked.sum())
            total += float(loss.detach()) * n
            correct += float((logits.argmax(-1) == targets[picked]).sum())
            count += n
        history.append({"epoch": epoch + 1, "loss": round(total / count, 4), "accuracy": round(correct / count, 4)})
        if progress:
            progress(history[-1])
    if lora_rank:
        encoder = encoder.merge_and_unload()
        model.backbone.encoder = encoder
        model.refresh_groups()
    encoder.train(was_training)
    return {"epochs": epochs, "texts": len(texts), "lora_rank": lora_rank, "lr": lr,
            "seconds": round(time.perf_counter() - start, 1), "history": history}
