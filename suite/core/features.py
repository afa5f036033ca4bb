"""Frozen-backbone features, computed once and cached in memory and on disk.

The cache is keyed per model (spec, a fingerprint of the backbone weights, the preprocessing) and
per item (file path, size and modification time, array bytes or text), so a changed model or file
never reuses stale features, while any subset or reordering of known items costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from .weights import fingerprint, save_state_dict

_MEMORY: dict[str, dict[str, torch.Tensor]] = {}  # model key -> item key -> feature row
_MEMORY_LIMIT = 8  # models


class _Weighted(torch.utils.data.Dataset):
    """Adds a per-sample weight to each ``(x, y)`` pair."""

    def __init__(self, dataset, weights: torch.Tensor):
        self.dataset, self.weights = dataset, weights

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return x, y, self.weights[i]


def input_loader(model, data, batch_size: int, transform=None, shuffle=False, sampler=None,
                 num_workers: int = 0, generator=None, sample_weights: torch.Tensor | None = None,
                 drop_last: bool = False):
    """A DataLoader of model inputs for ``data`` (images through ``transform`` or the eval
    preprocessing, texts through the model's tokenizer): batches ``(x, y)``, or ``(x, y, w)`` with
    ``sample_weights``."""
    from torch.utils.data import DataLoader

    from .data import TorchDataset, text_collate

    pre = model.preprocess
    if pre.modality == "text":
        dataset, collate = TorchDataset(data, None), text_collate(model.tokenizer, pre.max_length)
    else:
        dataset, collate = TorchDataset(data, transform or eval_transform(model)), None
    if sample_weights is not None:
        dataset = _Weighted(dataset, sample_weights)
        if collate is not None:
            text = collate
            collate = lambda batch: (*text([(x, y) for x, y, _ in batch]), torch.stack([w for *_, w in batch]))  # noqa: E731
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, collate_fn=collate, generator=generator,
                      persistent_workers=num_workers > 0, drop_last=drop_last)


def to_device(x, device):
    """A model input (a tensor, or a mapping of token tensors) on ``device``."""
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x.to(device)


@torch.no_grad()
def predict_logits(model, data, batch_size: int = 64, num_workers: int = 0,
                   features: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``(N, K)`` for ``data`` (eval mode, the model's own preprocessing, no augmentation);
    from ``features`` ``(N, D)`` through the head alone when they are given."""
    model.eval()
    device = next(model.parameters()).device
    if features is not None:
        return torch.cat([model.forward_head(f.to(device)).float().cpu() for f in features.split(batch_size)])
    out = [model(to_device(x, device)).float().cpu()
           for x, _ in input_loader(model, data, batch_size, num_workers=num_workers)]
    return torch.cat(out) if out else torch.zeros(0, model.num_classes)


def eval_transform(model):
    """The model's own preprocessing (resize, crop, normalise), no augmentation."""
    pre = model.preprocess
    if pre.modality == "image":
        return pre.image_transform()
    if pre.modality == "volume":
        return lambda v: volume_tensor(v, pre.mean, pre.std)
    raise ValueError(f"no tensor transform for {pre.modality}")


def volume_tensor(volume, mean=(0.0,), std=(1.0,)) -> torch.Tensor:
    """A volume ``(D, H, W)`` or ``(C, D, H, W)`` as float ``(C, D, H, W)``: 8-bit voxels scaled to
    [0, 1] (as images are), then normalised per channel with ``mean``/``std``."""
    array = np.asarray(volume)
    x = torch.as_tensor(array, dtype=torch.float32)
    if array.dtype == np.uint8:
        x = x / 255.0
    if x.ndim == 3:
        x = x.unsqueeze(0)
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1, 1)
    return (x - m) / s


def item_keys(data) -> list[str]:
    """One short digest per item: a file's path, size and modification time, an array's bytes, a text."""
    keys = []
    for item in data.items:
        h = hashlib.sha1()
        if isinstance(item, (str, os.PathLike)) and data.modality != "text" and Path(item).exists():
            st = Path(item).stat()
            h.update(f"{Path(item).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        elif isinstance(item, np.ndarray):
            h.update(str((item.shape, item.dtype.str)).encode())
            h.update(np.ascontiguousarray(item).tobytes())
        else:
            h.update(str(item).encode("utf-8", "surrogatepass"))
        keys.append(h.hexdigest()[:20])
    return keys


def model_key(model) -> str:
    """Identifies (backbone weights, preprocessing): equal keys give equal features for an item."""
    parts = {"spec": model.spec, "weights": fingerprint(model.backbone.state_dict()),
             "preprocess": model.preprocess.to_dict()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _read_disk_cache(folder: Path) -> dict[str, torch.Tensor]:
    """Item key -> feature row, from every shard written for one model."""
    from safetensors import safe_open

    rows: dict[str, torch.Tensor] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        with safe_open(str(shard), "pt") as f:
            keys = json.loads((f.metadata() or {}).get("items", "[]"))
            feats = f.get_tensor("features")
        rows.update(zip(keys, feats))
    return rows


@torch.no_grad()
def _compute(model, data, batch_size, device, num_workers, progress) -> torch.Tensor:
    device = torch.device(device) if device else next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    loader = input_loader(model, data, batch_size, num_workers=num_workers)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="features", leave=False)
    for x, _ in loader:
        chunks.append(model.forward_features(to_device(x, device)).float().cpu())
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0, model.num_features)


def extract_features(model, data, batch_size: int = 64, cache_dir: str | os.PathLike | None = None,
                     device: str | torch.device | None = None, num_workers: int = 0,
                     progress: bool = False) -> torch.Tensor:
    """Pooled backbone features ``(N, D)`` for every item of ``data`` (eval mode, no augmentation).

    Features are cached per item (memory, and ``cache_dir/features-<model key>/`` on disk), so any
    subset or reordering of items already seen, by ``suite embed`` or an earlier run, costs nothing.
    """
    mkey, keys = model_key(model), item_keys(data)
    memory = _MEMORY.setdefault(mkey, {})
    folder = Path(cache_dir) / f"features-{mkey}" if cache_dir else None
    if folder is not None and any(k not in memory for k in keys) and folder.is_dir():
        memory.update(_read_disk_cache(folder))
    first_of_missing: dict[str, int] = {}  # duplicate items are computed once
    for i, k in enumerate(keys):
        if k not in memory:
            first_of_missing.setdefault(k, i)
    missing = sorted(first_of_missing.values())
    if missing:
        feats = _compute(model, data.subset(missing), batch_size, device, num_workers, progress)
        new = dict(zip((keys[i] for i in missing), feats))
        memory.update(new)
        if folder is not None:
            shard = hashlib.sha1("".join(new).encode()).hexdigest()[:16]
            save_state_dict({"features": feats}, folder / f"{shard}.safetensors",
                            metadata={"spec": model.spec, "items": json.dumps(list(new))})
    while len(_MEMORY) > _MEMORY_LIMIT:
        _MEMORY.pop(next(iter(_MEMORY)))
    if not keys:
        return torch.zeros(0, model.num_features)
    return torch.stack([memory[k] for k in keys])


def clear_memory_cache() -> None:
    _MEMORY.clear()
