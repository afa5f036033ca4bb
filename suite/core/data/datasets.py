"""Labelled data sets from folders, CSV/JSON manifests and MedMNIST-style ``.npz`` files.

Every loader returns a :class:`LabeledData`; problems a user can fix raise :class:`SuiteError`
naming the file. ``TorchDataset`` (built on first use, so importing this module stays light)
wraps a ``LabeledData`` for a ``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import CorruptFileError, DataError, SuiteError
from ..io import IMAGE_SUFFIXES, check_image, read_image

MULTILABEL_SEPARATOR = "|"
SPLIT_FOLDER_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}


@dataclass
class LabeledData:
    """Items with labels: what every loader returns and every trainer consumes.

    ``labels`` are int64 class indices ``(N,)`` (``-1`` = unlabelled) or, for multilabel data,
    0/1 rows ``(N, K)`` (a row of ``-1`` = unlabelled). ``warnings`` lists non-fatal problems
    found while loading, ``skipped`` the unreadable files left out as ``(path, reason)``.
    ``soft_labels`` (optional, float ``(N, K)`` rows summing to 1) are training targets that the
    trainer uses in place of ``labels`` (e.g. the share of annotators who chose each class);
    ``labels`` stay the hard labels for splits, sampling and metrics.
    """

    items: list
    labels: np.ndarray
    classes: list[str]
    modality: str
    groups: list[str] | None = None
    source: str = ""
    task: str = "multiclass"
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    soft_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices) -> "LabeledData":
        """The items at ``indices`` (integer indices or a boolean mask), same classes and task."""
        idx = np.asarray(indices)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64).ravel()
        return replace(
            self,
            items=[self.items[i] for i in idx],
            labels=self.labels[idx],
            soft_labels=None if self.soft_labels is None else self.soft_labels[idx],
            groups=None if self.groups is None else [self.groups[i] for i in idx],
            warnings=list(self.warnings),
            skipped=list(self.skipped),
        )

    def load(self, i: int):
        """Item ``i`` ready for a transform: a PIL image, a string, or a volume array."""
        item = self.items[i]
        if self.modality == "text":
            return str(item)
        if self.modality == "volume":
            return np.asarray(item)
        name = str(item) if isinstance(item, (str, Path)) else f"{self.source or 'data'} item {i}"
        return read_image(item, name=name)

    def class_counts(self) -> dict[str, int]:
        """Labelled items per class (for multilabel: positives per class)."""
        if self.labels.ndim == 2:
            return {c: int(n) for c, n in zip(self.classes, (self.labels == 1).sum(axis=0))}
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}


# ----------------------------------------------------------------------------- labels


def _natural_key(name: str):
    """Sort numeric class names numerically ("2" before "10"), others alphabetically."""
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name)


def _task_for(classes: list[str], multilabel: bool) -> str:
    return "multilabel" if multilabel else ("binary" if len(classes) == 2 else "multiclass")


def _check_classes(classes, where: str) -> list[str] | None:
    if classes is None:
        return None
    classes = [str(c) for c in classes]
    duplicated = sorted(c for c, n in Counter(classes).items() if n > 1)
    if duplicated:
        raise SuiteError(f"{where}: classes are listed more than once: {duplicated}")
    return classes


def _encode_labels(names: list[str], classes, where: str, lines: list[int]):
    """Class indices (or multi-hot rows) from label names; ``""`` means unlabelled."""
    names = [n.strip() for n in names]
    multilabel = any(MULTILABEL_SEPARATOR in n for n in names)
    tokens = [[t.strip() for t in n.split(MULTILABEL_SEPARATOR) if t.strip()] if multilabel
              else ([n] if n else []) for n in names]
    classes = _check_classes(classes, where)
    if classes is None:
        classes = sorted({t for ts in tokens for t in ts}, key=_natural_key)
    else:
        index = set(classes)
        unknown = [(t, line) for ts, line in zip(tokens, lines) for t in ts if t not in index]
        if unknown:
            shown = ", ".join(f"{t!r} (line {line})" for t, line in unknown[:5])
            raise DataError(where, f"{len(unknown)} label(s) not in the given classes {classes}: {shown}")
    if not classes:
        raise DataError(where, "no labelled rows (every label cell is empty)")
    position = {c: k for k, c in enumerate(classes)}
    if multilabel:
        labels = np.zeros((len(names), len(classes)), dtype=np.int64)
        for row, ts in enumerate(tokens):
            if ts:
                labels[row, [position[t] for t in ts]] = 1
            else:
                labels[row] = -1
    else:
        labels = np.array([position[ts[0]] if ts else -1 for ts in tokens], dtype=np.int64)
    return labels, classes, _task_for(classes, multilabel)


def _class_size_warnings(data: LabeledData, noun: str) -> list[str]:
    """Warnings for classes with no or a single example, and for unlabelled items."""
    warnings = []
    for name, n in data.class_counts().items():
        if n == 0:
            warnings.append(f"{data.source}: class {name!r} has no {noun}s")
        elif n == 1:
            warnings.append(f"{data.source}: class {name!r} has a single {noun}; "
                            f"it cannot appear in both training and validation")
    unlabelled = int((data.labels.reshape(len(data.labels), -1)[:, 0] < 0).sum())
    if unlabelled:
        warnings.append(f"{data.source}: {unlabelled} item(s) have no label (kept as -1)")
    if len(data.classes) == 1:
        warnings.append(f"{data.source}: only one class ({data.classes[0]!r}); a classifier needs two or more")
    return warnings


# ----------------------------------------------------------------------------- image files


def _image_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable image, or None. Decodes it, so it cannot fail later in training."""
    return check_image(path)


def _keep_readable(paths: list[Path], skip_bad: bool) -> tuple[list[bool], list[tuple[str, str]]]:
    """Which paths are readable images; unreadable ones are reported, or raise without skip_bad."""
    keep, skipped = [], []
    for path in paths:
        problem = _image_problem(path)
        if problem and not skip_bad:
            raise CorruptFileError(path, problem)
        keep.append(problem is None)
        if problem:
            skipped.append((str(path), problem))
    return keep, skipped


def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _existing_dir(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise SuiteError(f"{path}: folder not found")
    if not path.is_dir():
        raise SuiteError(f"{path}: not a folder")
    return path


def from_folder(path, classes=None, skip_bad: bool = True) -> LabeledData:
    """Images in one sub-folder per class (searched recursively inside each class folder)."""
    root = _existing_dir(path)
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: _natural_key(p.name))
    if not folders:
        raise SuiteError(f"{root}: no class folders; expected one sub-folder per class holding its images")
    warnings = []
    classes = _check_classes(classes, str(root))
    if classes is None:
        classes = [p.name for p in folders]
    else:
        missing = [c for c in classes if not (root / c).is_dir()]
        if missing:
            raise SuiteError(f"{root}: no folder for class(es) {missing}; "
                             f"folders present: {[p.name for p in folders]}")
        ignored = [p.name for p in folders if p.name not in classes]
        if ignored:
            warnings.append(f"{root}: folders not in the given classes were ignored: {ignored}")
    if SPLIT_FOLDER_NAMES & {c.lower() for c in classes}:
        warnings.append(f"{root}: class folders look like split folders ({classes}); "
                        f"point at the folder holding the class folders instead")
    paths, labels = [], []
    for k, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if _is_image_file(p))
        paths += files
        labels += [k] * len(files)
    if not paths:
        raise SuiteError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders {classes}")
    keep, skipped = _keep_readable(paths, skip_bad)
    if not any(keep):
        raise SuiteError(f"{root}: none of the {len(paths)} image files is readable "
                         f"(first: {skipped[0][0]}: {skipped[0][1]})")
    data = LabeledData(
        items=[str(p) for p, ok in zip(paths, keep) if ok],
        labels=np.array([y for y, ok in zip(labels, keep) if ok], dtype=np.int64),
        classes=list(classes), modality="image", source=f"image folder {root}",
        task=_task_for(classes, False), skipped=skipped,
    )
    if skipped:
        warnings.append(f"{root}: skipped {len(skipped)} unreadable file(s), first: {skipped[0][0]} ({skipped[0][1]})")
    data.warnings = warnings + _class_size_warnings(data, "image")
    return data


# ----------------------------------------------------------------------------- tables


def _decode(path: Path) -> tuple[str, list[str]]:
    """File text as UTF-8 (BOM allowed), else latin-1 with a warning."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return raw.decode("latin-1"), [f"{path}: not valid UTF-8, read as latin-1"]


def _existing_file(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    return path


MAX_MALFORMED_SHARE = 0.05  # CSV rows that do not fit the header are skipped up to this share, else refused


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]], list[int], list[str]]:
    """Header, rows as dicts, their line numbers and decoding warnings of a CSV/TSV file."""
    text, warnings = _decode(path)
    first_line = text.split("\n", 1)[0]
    delimiter = max(",\t;", key=first_line.count) if first_line.strip() else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            raise DataError(path, "empty file, expected a header row with column names")
        rows, lines, bad = [], [], []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                bad.append((reader.line_num, len(cells)))
                continue
            rows.append(dict(zip(header, cells)))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV near line {reader.line_num} ({exc})") from None
    if bad:
        line, n = bad[0]
        problem = f"line {line} has {n} field(s) but the header has {len(header)}"
        if len(bad) > MAX_MALFORMED_SHARE * (len(rows) + len(bad)):  # a wrong delimiter or a broken file
            raise DataError(path, f"malformed CSV, {len(bad)} of {len(rows) + len(bad)} rows do not fit the "
                                  f"header; {problem}")
        warnings.append(f"{path}: skipped {len(bad)} malformed row(s); {problem}")
    if not rows:
        raise DataError(path, "no data rows under the header")
    return header, rows, lines, warnings


def _read_json_records(path: Path) -> tuple[list[str], list[dict], list[int], list[str]]:
    """Objects of a ``.jsonl`` file (one per line) or a ``.json`` list, with their line/position."""
    text, warnings = _decode(path)
    try:
        if path.suffix.lower() == ".jsonl":
            pairs = [(n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        else:
            records = json.loads(text)
            if not isinstance(records, list):
                raise SuiteError(f"{path}: expected a JSON list of objects, found {type(records).__name__}")
            pairs = list(enumerate(records, 1))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc})") from None
    bad = next((n for n, r in pairs if not isinstance(r, dict)), None)
    if bad is not None:
        raise SuiteError(f"{path}: record {bad} is not a JSON object")
    if not pairs:
        raise SuiteError(f"{path}: no records")
    header = list(dict.fromkeys(k for _, r in pairs for k in r))
    return header, [r for _, r in pairs], [n for n, _ in pairs], warnings


def _require_columns(path: Path, header: list[str], wanted: dict[str, str | None]) -> None:
    missing = [f"{role} column {name!r}" for role, name in wanted.items() if name and name not in header]
    if missing:
        raise DataError(path, f"missing {', '.join(missing)}; available columns: {header}")


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def read_manifest(path, path_col: str, label_col: str, other_cols: dict[str, str | None], root=None,
                  classes=None):
    """A CSV manifest of files: ``(path, rows, lines, warnings, files, (labels, classes, task))``.

    Paths are relative to the CSV's folder or ``root``; ``other_cols`` (role -> column) must exist too.
    """
    path = _existing_file(path)
    header, rows, lines, warnings = _read_csv(path)
    _require_columns(path, header, {"path": path_col, "label": label_col, **other_cols})
    base = _existing_dir(root) if root is not None else path.parent
    empty = [line for row, line in zip(rows, lines) if not _cell(row, path_col).strip()]
    if empty:
        raise SuiteError(f"{path}: empty {path_col!r} cell on line(s) {empty[:5]}")
    files = [base / _cell(row, path_col).strip() for row in rows]
    encoded = _encode_labels([_cell(r, label_col) for r in rows], classes, str(path), lines)
    return path, rows, lines, warnings, files, encoded


def from_csv(path, path_col: str = "path", label_col: str = "label", group_col: str | None = None,
             root=None, classes=None, skip_bad: bool = True) -> LabeledData:
    """Images listed in a CSV manifest: a path column (relative to the CSV's folder or ``root``),
    a label column (``a|b`` separators make it multilabel) and an optional group column."""
    path, rows, lines, warnings, files, (labels, classes, task) = read_manifest(
        path, path_col, label_col, {"group": group_col}, root, classes)
    keep, skipped = _keep_readable(files, skip_bad)
    if not any(keep):
        raise SuiteError(f"{path}: none of the {len(files)} listed images is readable "
                         f"(first: {skipped[0][0]}: {skipped[0][1]})")
    kept = np.flatnonzero(keep)
    data = LabeledData(
        items=[str(files[i]) for i in kept], labels=labels[kept], classes=classes, modality="image",
        groups=[_cell(rows[i], group_col).strip() for i in kept] if group_col else None,
        source=f"CSV manifest {path}", task=task, skipped=skipped,
    )
    if skipped:
        warnings.append(f"{path}: skipped {len(skipped)} missing or unreadable image(s), "
                        f"first: {skipped[0][0]} ({skipped[0][1]})")
    data.warnings = warnings + _class_size_warnings(data, "image")
    return data


def from_text_csv(path, text_col: str = "text", label_col: str = "label", classes=None) -> LabeledData:
    """Labelled texts from a CSV, a ``.jsonl`` file or a ``.json`` list of objects."""
    path = _existing_file(path)
    is_json = path.suffix.lower() in (".json", ".jsonl")
    header, rows, lines, warnings = (_read_json_records if is_json else _read_csv)(path)
    _require_columns(path, header, {"text": text_col, "label": label_col})
    texts = [_cell(row, text_col) for row in rows]
    labels, classes, task = _encode_labels([_cell(r, label_col) for r in rows], classes, str(path), lines)
    data = LabeledData(items=texts, labels=labels, classes=classes, modality="text",
                       source=f"text file {path}", task=task)
    blank = [line for text, line in zip(texts, lines) if not text.strip()]
    if blank:
        warnings.append(f"{path}: {len(blank)} empty text(s), first on line {blank[0]}")
    data.warnings = warnings + _class_size_warnings(data, "text")
    return data


# ----------------------------------------------------------------------------- arrays


def _npz_labels(raw: np.ndarray, where: str) -> tuple[np.ndarray, bool]:
    """Flat class indices from (N,) or (N, 1), or multi-hot rows from (N, K > 1)."""
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim not in (1, 2) or not np.issubdtype(raw.dtype, np.number):
        raise SuiteError(f"{where}: labels must be numbers shaped (N,), (N, 1) or (N, K), got {raw.dtype} {raw.shape}")
    return raw.astype(np.int64), raw.ndim == 2


def _npz_items(images: np.ndarray, channel_last: bool, where: str) -> tuple[list, str]:
    """Per-item arrays and the modality: (N,H,W) and (N,H,W,C) images, (N,D,H,W[,C]) volumes."""
    if not channel_last and images.ndim in (4, 5) and images.shape[1] in (1, 3):
        images = np.moveaxis(images, 1, -1)
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3)):
        return list(images), "image"
    if images.ndim in (4, 5):
        return list(images), "volume"
    raise SuiteError(f"{where}: images must be shaped (N,H,W), (N,H,W,C) or (N,D,H,W), got {images.shape}")


def from_npz(path, split="train", channel_last: bool = True, classes=None) -> LabeledData:
    """A MedMNIST-style ``.npz`` (``train_images``, ``train_labels``, ``val_images``, ...).

    ``split`` is one split name or a list of them (concatenated in that order).
    """
    path = _existing_file(path)
    if not zipfile.is_zipfile(path):
        raise SuiteError(f"{path}: not a readable .npz archive (expected a zip of .npy arrays)")
    splits = [split] if isinstance(split, str) else list(split)
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            available = sorted(k[: -len("_images")] for k in keys if k.endswith("_images"))
            absent = [s for s in splits if f"{s}_images" not in keys or f"{s}_labels" not in keys]
            if absent:
                raise SuiteError(f"{path}: no split {absent} (need '<split>_images' and '<split>_labels'); "
                                 f"splits present: {available}; keys: {keys}")
            parts = [(archive[f"{s}_images"], archive[f"{s}_labels"]) for s in splits]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
            zlib.error) as exc:  # corrupt, unsupported (zip version, compression) or encrypted members
        raise CorruptFileError(path, f"not a readable .npz archive ({exc})") from None
    except ValueError as exc:
        raise SuiteError(f"{path}: cannot load arrays ({exc}); object arrays are refused") from None
    items, label_parts, modalities, multilabel = [], [], set(), set()
    for s, (images, raw_labels) in zip(splits, parts):
        where = f"{path} [{s}]"
        if images.ndim == 0 or raw_labels.ndim == 0:
            raise DataError(where, f"images and labels must be arrays with one entry per item, got shapes "
                                   f"{images.shape} and {raw_labels.shape}")
        if len(images) != len(raw_labels):
            raise SuiteError(f"{where}: {len(images)} images but {len(raw_labels)} labels")
        split_items, modality = _npz_items(images, channel_last, where)
        labels, is_multi = _npz_labels(raw_labels, where)
        items += split_items
        label_parts.append(labels)
        modalities.add(modality)
        multilabel.add(is_multi)
    if len(modalities) > 1 or len(multilabel) > 1 or len({p.shape[1:] for p in label_parts}) > 1:
        raise SuiteError(f"{path}: splits {splits} differ in image or label layout and cannot be combined")
    labels, is_multi = np.concatenate(label_parts), multilabel.pop()
    if len(items) == 0 or (is_multi and labels.shape[1] == 0):
        raise DataError(path, f"split(s) {splits} hold no items or no label columns")
    n_classes = labels.shape[1] if is_multi else int(labels.max(initial=-1)) + 1
    classes = _check_classes(classes, str(path)) or [str(k) for k in range(n_classes)]
    if n_classes > len(classes) or (is_multi and labels.shape[1] != len(classes)):
        raise SuiteError(f"{path}: labels need {n_classes} classes but {len(classes)} were given: {classes}")
    data = LabeledData(items=items, labels=labels, classes=classes, modality=modalities.pop(),
                       source=f"{path} [{'+'.join(splits)}]", task=_task_for(classes, is_multi))
    data.warnings = _class_size_warnings(data, "item")
    return data


# ----------------------------------------------------------------------------- dispatch


def load_data(path, **kw) -> LabeledData:
    """Load whatever ``path`` is: a class-folder tree, a CSV manifest or text CSV, ``.npz``, JSON text."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        return from_folder(path, **kw)
    if not path.exists():
        raise SuiteError(f"{path}: no such file or folder")
    if suffix in (".csv", ".tsv"):
        lists_images = "path_col" in kw or "path" in _read_csv(path)[0]
        return (from_csv if lists_images else from_text_csv)(path, **kw)
    if suffix == ".npz":
        return from_npz(path, **kw)
    if suffix in (".json", ".jsonl"):
        return from_text_csv(path, **kw)
    raise SuiteError(f"{path}: cannot tell how to load a {suffix or 'suffix-less'} file; expected a "
                     f"class-folder tree, .csv/.tsv, .npz, .json or .jsonl")


# ----------------------------------------------------------------------------- torch


def _label_tensor(label: np.ndarray):
    """A multi-hot row as float32 (for BCE losses), a class index as an int64 scalar."""
    import torch

    if np.ndim(label) == 1:
        return torch.as_tensor(label, dtype=torch.float32)
    return torch.as_tensor(int(label), dtype=torch.int64)


def _build_torch_dataset_class():
    from torch.utils.data import Dataset

    class TorchDataset(Dataset):
        """``(transform(item), label)`` pairs; labels are int64 scalars, or float multi-hot or soft-label rows.

        With ``transform=None`` the loaded item is returned as is (a string for text).
        """

        def __init__(self, data: LabeledData, transform: Callable | None = None):
            self.data, self.transform = data, transform
            self.targets = data.labels if data.soft_labels is None else data.soft_labels.astype(np.float32)

        def __len__(self) -> int:
            return len(self.data)

        def __getitem__(self, i: int):
            item = self.data.load(i)
            return (item if self.transform is None else self.transform(item)), _label_tensor(self.targets[i])

    TorchDataset.__module__, TorchDataset.__qualname__ = __name__, "TorchDataset"
    return TorchDataset


def text_collate(tokenizer: Callable, max_length: int = 128) -> Callable:
    """A DataLoader ``collate_fn`` for text: ``(dict of token tensors, stacked labels)``."""

    def collate(batch: list[tuple[str, Any]]):
        import torch

        texts, labels = zip(*batch)
        encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
        return dict(encoded), torch.stack(list(labels))

    return collate


def __getattr__(name: str):
    if name == "TorchDataset":  # built lazily so that importing the loaders does not import torch
        globals()[name] = _build_torch_dataset_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
