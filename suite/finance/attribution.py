"""Token-level attribution of a sentence's sentiment: integrated gradients or gradient x input on the
word embeddings, for the score logit(positive) - logit(negative) (or one class's logit).

Integrated gradients (Sundararajan et al. 2017) is complete: the attributions sum to the target at
the input minus the target at the baseline (the same sentence with every word replaced by [PAD]).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from suite.core.errors import SuiteError

METHODS = ("integrated_gradients", "grad_x_input")


def _embedding_layer(model) -> torch.nn.Module:
    encoder = getattr(model.backbone, "encoder", None)
    if encoder is None or not hasattr(encoder, "get_input_embeddings"):
        raise SuiteError(f"{model.spec}: token attribution needs a Hugging Face text encoder")
    return encoder.get_input_embeddings()


@contextmanager
def _replace_output(module: torch.nn.Module, value: torch.Tensor):
    """Make ``module`` return ``value`` instead of its output while inside the block."""
    handle = module.register_forward_hook(lambda mod, inputs, output: value)
    try:
        yield
    finally:
        handle.remove()


def _target(logits: torch.Tensor, labels: list[str], target: str) -> torch.Tensor:
    names = [str(x).lower() for x in labels]
    if target == "score":
        if "positive" not in names or "negative" not in names:
            raise SuiteError(f"target='score' needs positive and negative labels, got {labels}")
        return logits[:, names.index("positive")] - logits[:, names.index("negative")]
    if target.lower() not in names:
        raise SuiteError(f"target must be 'score' or one of {labels}, got {target!r}")
    return logits[:, names.index(target.lower())]


def _merge_wordpieces(tokens: list[str], values: np.ndarray) -> list[tuple[str, float]]:
    """Whole words with summed attribution (``##`` continuations and ``▁``/``Ġ`` word starts)."""
    words: list[list] = []
    for tok, v in zip(tokens, values):
        if tok.startswith("##") and words:
            words[-1][0] += tok[2:]
            words[-1][1] += float(v)
        else:
            words.append([tok.lstrip("▁Ġ"), float(v)])
    return [(w, v) for w, v in words]


def token_attributions(solution, text: str, target: str = "score", method: str = "integrated_gradients",
                       steps: int = 32, words: bool = True) -> dict:
    """Attribution of each token (or word) of ``text`` to ``target``.

    Returns ``tokens`` [(token, attribution)], ``target_value`` (at the input), ``baseline_value``
    (all-[PAD] baseline) and ``delta`` = sum of attributions - (target_value - baseline_value), the
    integrated-gradients approximation error (0 for an exact integral; not defined for grad_x_input).
    [CLS]/[SEP] are left out (their embedding equals the baseline's, so their attribution is 0).
    """
    if method not in METHODS:
        raise SuiteError(f"method must be one of {METHODS}, got {method!r}")
    model = solution.model.eval()
    enc = solution.encode([text])
    device = next(model.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    ids = enc["input_ids"]
    tokenizer = model.tokenizer
    special = torch.tensor(tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True),
                           dtype=torch.bool, device=device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    baseline_ids = torch.where(special, ids[0], torch.full_like(ids[0], pad_id)).unsqueeze(0)
    layer = _embedding_layer(model)
    with torch.no_grad():
        emb, base = layer(ids), layer(baseline_ids)

    def target_at(embeddings: torch.Tensor) -> torch.Tensor:
        batch = {k: v.expand(len(embeddings), -1) for k, v in enc.items()}
        with _replace_output(layer, embeddings):
            return _target(model(batch).float(), solution.labels, target)

    with torch.no_grad():
        value, base_value = float(target_at(emb)), float(target_at(base))
    if method == "grad_x_input":
        x = emb.clone().requires_grad_(True)
        grad, = torch.autograd.grad(target_at(x).sum(), x)
        attr = (grad * x).sum(-1)[0]
    else:
        nodes, weights = np.polynomial.legendre.leggauss(steps)  # Gauss-Legendre on [0, 1]
        alphas = torch.tensor((nodes + 1) / 2, dtype=emb.dtype, device=device).view(-1, 1, 1)
        path = (base + alphas * (emb - base)).requires_grad_(True)
        grads, = torch.autograd.grad(target_at(path).sum(), path)
        w = torch.tensor(weights / 2, dtype=emb.dtype, device=device).view(-1, 1, 1)
        attr = ((grads * w).sum(0) * (emb - base)[0]).sum(-1)
    attr = attr.detach().cpu().numpy()
    keep = ~special.cpu().numpy()
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    kept_tokens = [t for t, k in zip(tokens, keep) if k]
    kept = attr[keep]
    pairs = _merge_wordpieces(kept_tokens, kept) if words else [(t, float(v)) for t, v in zip(kept_tokens, kept)]
    total = float(attr.sum())
    return {"tokens": pairs, "target": target, "method": method, "target_value": value,
            "baseline_value": base_value,
            "delta": total - (value - base_value) if method == "integrated_gradients" else None}


def attribution_html(pairs: list[tuple[str, float]]) -> str:
    """Words coloured by attribution (green pushes towards positive, red towards negative)."""
    import html

    scale = max((abs(v) for _, v in pairs), default=0.0) or 1.0
    spans = []
    for word, v in pairs:
        a = min(1.0, abs(v) / scale) * 0.8
        colour = f"rgba(42,157,143,{a:.2f})" if v >= 0 else f"rgba(231,111,81,{a:.2f})"
        spans.append(f'<span title="{v:+.3f}" style="background:{colour};padding:1px 3px;border-radius:3px">'
                     f"{html.escape(word)}</span>")
    return " ".join(spans)
