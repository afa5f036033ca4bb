"""Leakage between splits: exact and near-duplicate items, and groups shared across splits."""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter

import numpy as np

from ..errors import SuiteError
from .datasets import LabeledData

HASH_SIDE = 32  # pHash thumbnail side; the 8x8 lowest DCT frequencies give 64 bits
BLOCK_ROWS = 1024  # rows of the Hamming-distance matrix computed at once
# pHash alone matches distinct but similar-looking images (e.g. 28x28 chest X-rays at distance
# 2-4, thumbnail correlation <= 0.945); resized or JPEG re-encoded copies correlate >= 0.975.
MIN_SIMILARITY = 0.95


def _dct_matrix(n: int) -> np.ndarray:
    k, x = np.arange(n)[:, None], np.arange(n)[None, :]
    return np.cos(np.pi * k * (2 * x + 1) / (2 * n))


def _phash(thumbnails: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes (uint64) of grayscale thumbnails ``(N, 32, 32)``: the 8x8 lowest
    DCT frequencies compared with their median."""
    dct = _dct_matrix(HASH_SIDE)
    low = (dct @ thumbnails @ dct.T)[:, :8, :8].reshape(len(thumbnails), 64)
    bits = low > np.median(low, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def _thumbnail(img) -> np.ndarray:
    from PIL import Image

    return np.asarray(img.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS), dtype=np.float64)


def _volume_image(volume: np.ndarray):
    """A 2D picture of a volume for near-duplicate hashing: its mean projection along depth."""
    from PIL import Image

    projection = volume.reshape(volume.shape[:3] + (-1,)).mean(axis=(0, 3))
    lo, hi = projection.min(), projection.max()
    scaled = np.zeros_like(projection) if hi <= lo else (projection - lo) / (hi - lo) * 255
    return Image.fromarray(scaled.astype(np.uint8), "L")


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.digest()


def _image_fingerprints(data: LabeledData, indices: np.ndarray) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """Exact digests of decoded pixels (volumes: raw voxels), grayscale thumbnails and pHashes."""
    exact, thumbs = [], []
    for i in indices:
        if data.modality == "volume":
            volume = np.ascontiguousarray(data.load(i))
            exact.append(_digest(str((volume.shape, volume.dtype.str)).encode(), volume.tobytes()))
            thumbs.append(_thumbnail(_volume_image(volume)))
        else:
            img = data.load(i)
            exact.append(_digest(f"{img.mode}{img.size}".encode(), img.tobytes()))
            thumbs.append(_thumbnail(img))
    thumbs = np.stack(thumbs)
    return exact, thumbs, _phash(thumbs)


def _text_fingerprints(data: LabeledData, indices: np.ndarray) -> tuple[list[str], list[str]]:
    """Exact keys (NFC, stripped) and near keys (also lowercased, whitespace collapsed)."""
    exact = [unicodedata.normalize("NFC", data.load(i)).strip() for i in indices]
    return exact, [" ".join(text.lower().split()) for text in exact]


def _similarity(thumbs: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Pearson correlation of the thumbnails of each pair ``(a[k], b[k])``."""
    flat = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True) + 1e-6
    return np.concatenate([np.einsum("ij,ij->i", flat[a[k:k + chunk]], flat[b[k:k + chunk]])
                           for k in range(0, len(a), chunk)] or [np.zeros(0, np.float32)])


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


def _close_hash_pairs(hashes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``(a, b, distance)`` with ``a < b`` and Hamming distance <= threshold, in row blocks."""
    found_a, found_b, found_d = [], [], []
    for start in range(0, len(hashes), BLOCK_ROWS):
        block = hashes[start:start + BLOCK_ROWS]
        distance = _popcount(block[:, None] ^ hashes[None, start:])
        a, b = np.nonzero(np.triu(distance <= threshold, k=1))
        found_a.append(a + start)
        found_b.append(b + start)
        found_d.append(distance[a, b])
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_d).astype(int)


def _key_ids(keys: list) -> np.ndarray:
    """Equal keys get equal small integers."""
    ids: dict = {}
    return np.array([ids.setdefault(key, len(ids)) for key in keys], dtype=np.int64)


def _equal_id_pairs(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ``(a, b)`` with ``a < b`` and ``ids[a] == ids[b]``."""
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, ids[order][1:] != ids[order][:-1]])
    found_a, found_b = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for start, end in zip(starts, np.r_[starts[1:], len(order)]):
        if end - start > 1:
            x, y = np.triu_indices(end - start, k=1)
            found_a.append(order[start:end][x])
            found_b.append(order[start:end][y])
    return np.concatenate(found_a), np.concatenate(found_b)


def _split_of_items(splits: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Each item's split code (-1: in no split), the split names, and indices listed in two splits."""
    names = list(splits)
    code = np.full(n, -1)
    overlap = []
    for k, name in enumerate(names):
        idx = np.asarray(splits[name], dtype=np.int64).ravel()
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise SuiteError(f"find_leakage: split {name!r} has indices outside 0..{n - 1}")
        overlap.append(idx[code[idx] >= 0])
        code[idx] = np.where(code[idx] >= 0, code[idx], k)
    return code, names, np.unique(np.concatenate(overlap or [np.zeros(0, dtype=np.int64)]))


def find_leakage(data: LabeledData, splits: dict[str, np.ndarray], near_threshold: int = 4,
                 min_similarity: float = MIN_SIMILARITY, max_pairs: int = 1000) -> dict:
    """Duplicates that cross splits (or repeat inside ``train``), and groups in several splits.

    Exact duplicates have identical decoded pixels (texts: identical after NFC and stripping);
    near duplicates have pHashes within ``near_threshold`` bits, confirmed by a thumbnail
    correlation of at least ``min_similarity`` (texts: equal after lowercasing and collapsing
    whitespace). Pair lists hold at most ``max_pairs`` entries; counts are complete.
    """
    code, names, overlap = _split_of_items(splits, len(data))
    checked = np.flatnonzero(code >= 0)
    if len(checked) == 0:
        raise SuiteError("find_leakage: the splits hold no item indices")
    if data.modality == "text":
        exact_keys, near_keys = _text_fingerprints(data, checked)
        near_a, near_b = _equal_id_pairs(_key_ids(near_keys))
        near_d, near_s = np.zeros(len(near_a), dtype=int), np.ones(len(near_a))
    else:
        exact_keys, thumbs, hashes = _image_fingerprints(data, checked)
        near_a, near_b, near_d = _close_hash_pairs(hashes, near_threshold)
        near_s = _similarity(thumbs, near_a, near_b)
        confirmed = near_s >= min_similarity
        near_a, near_b, near_d, near_s = near_a[confirmed], near_b[confirmed], near_d[confirmed], near_s[confirmed]
    exact_id = _key_ids(exact_keys)
    exact_a, exact_b = _equal_id_pairs(exact_id)
    not_exact = exact_id[near_a] != exact_id[near_b]
    near_a, near_b, near_d, near_s = (checked[near_a[not_exact]], checked[near_b[not_exact]],
                                      near_d[not_exact], near_s[not_exact])
    exact_a, exact_b = checked[exact_a], checked[exact_b]

    train = names.index("train") if "train" in names else -2
    leaks_exact = (code[exact_a] != code[exact_b]) | (code[exact_a] == train) & (code[exact_b] == train)
    leaks_near = (code[near_a] != code[near_b]) | (code[near_a] == train) & (code[near_b] == train)
    exact_a, exact_b = exact_a[leaks_exact], exact_b[leaks_exact]
    near_a, near_b, near_d, near_s = near_a[leaks_near], near_b[leaks_near], near_d[leaks_near], near_s[leaks_near]
    report = {
        "exact": _pairs(data, code, names, exact_a[:max_pairs], exact_b[:max_pairs]),
        "near": _pairs(data, code, names, near_a[:max_pairs], near_b[:max_pairs],
                       distance=near_d[:max_pairs], similarity=near_s[:max_pairs]),
        "n_exact": int(len(exact_a)),
        "n_near": int(len(near_a)),
        "groups_shared": _groups_shared(data, code),
        "overlapping_indices": [int(i) for i in overlap],
    }
    parts = [f"checked {len(checked)} items ("
             + ", ".join(f"{name} {int((code == k).sum())}" for k, name in enumerate(names)) + ")",
             f"{report['n_exact']} exact duplicate pair(s) ({_where(code, names, exact_a, exact_b)})",
             f"{report['n_near']} near-duplicate pair(s) ({_where(code, names, near_a, near_b)})",
             f"{len(report['groups_shared'])} group(s) in more than one split"]
    if len(overlap):
        parts.append(f"{len(overlap)} item index(es) listed in more than one split")
    report["summary"] = "; ".join(parts)
    return report


def _where(code: np.ndarray, names: list[str], a: np.ndarray, b: np.ndarray) -> str:
    """Pair counts by split pair, e.g. ``train-val: 3, within train: 1``."""
    counts = Counter((min(x, y), max(x, y)) for x, y in zip(code[a].tolist(), code[b].tolist()))
    text = [f"within {names[x]}" if x == y else f"{names[x]}-{names[y]}" for x, y in counts]
    return ", ".join(f"{t}: {n}" for t, n in zip(text, counts.values())) or "none"


def _pairs(data: LabeledData, code, names, a, b, **measures) -> list[dict]:
    """Pair records: indices, split names, item ids and per-pair ``measures`` (rounded)."""
    pairs = []
    for n, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        pair = {"a": x, "b": y, "split_a": names[code[x]], "split_b": names[code[y]],
                "item_a": _item_id(data, x), "item_b": _item_id(data, y)}
        for key, values in measures.items():
            value = values[n].item()
            pair[key] = round(value, 3) if isinstance(value, float) else value
        pairs.append(pair)
    return pairs


def _item_id(data: LabeledData, i: int) -> str:
    item = data.items[i]
    if data.modality == "text":
        return f"#{i} {str(item)[:60]!r}"
    return str(item) if isinstance(item, str) else f"#{i}"


def _groups_shared(data: LabeledData, code: np.ndarray) -> list[str]:
    if data.groups is None:
        return []
    splits_of: dict[str, set[int]] = {}
    for group, c in zip(data.groups, code):
        if c >= 0:
            splits_of.setdefault(str(group), set()).add(int(c))
    return sorted(g for g, s in splits_of.items() if len(s) > 1)


def find_leakage_across(parts: dict[str, LabeledData | None], **kwargs) -> dict:
    """:func:`find_leakage` over separately given splits (e.g. an official train/val/test or a
    user's own validation and test sets): ``parts`` maps split names to their data."""
    from dataclasses import replace

    given = [(name, d) for name, d in parts.items() if d is not None and len(d)]
    if not given:
        raise SuiteError("find_leakage_across: no split holds any item")
    first = given[0][1]
    combined = replace(first, items=[x for _, d in given for x in d.items],
                       labels=np.concatenate([d.labels for _, d in given]),
                       groups=None if any(d.groups is None for _, d in given) else
                       [g for _, d in given for g in d.groups])
    bounds = np.cumsum([0] + [len(d) for _, d in given])
    splits = {name: np.arange(bounds[k], bounds[k + 1]) for k, (name, _) in enumerate(given)}
    return find_leakage(combined, splits, **kwargs)
