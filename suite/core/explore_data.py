"""What to explore: folders of images (flat or one sub-folder per class), text lines with optional
labels, text or image-path tables, MedMNIST ``.npz`` files, and safely extracted zips of them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .archive import MAX_ZIP_BYTES, MAX_ZIP_FILES, safe_extract_zip  # noqa: F401  (the old import path)
from .archive import data_root as _data_root
from .archive import visible_entries as _visible
from .data import LabeledData, load_data
from .errors import CorruptFileError, SuiteError
from .io import IMAGE_SUFFIXES

DATA_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".npz")


def load_items(path, label_sep: str | None = None, split=None, text_col: str | None = None) -> LabeledData:
    """Items to explore, labelled where the data says so (labels ``-1`` elsewhere).

    ``path`` is a folder of images (one sub-folder per class gives labels), a ``.txt`` file of one
    text per line (``label_sep`` splits a trailing label, e.g. ``@`` for ``sentence@label``), a text
    or image CSV/JSON (the label column is optional), a MedMNIST ``.npz`` (all splits unless
    ``split``), or a folder holding one such file.
    """
    path = Path(path)
    if not path.exists():
        raise SuiteError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_folder(_data_root(path), label_sep, split, text_col)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _load_lines(path, label_sep)
    if suffix == ".npz":
        return _load_npz(path, split)
    if suffix in (".csv", ".tsv", ".json", ".jsonl"):
        return _load_table(path, text_col)
    if suffix == ".zip":
        raise SuiteError(f"{path}: extract the zip first (safe_extract_zip), or pass it to `suite explore`")
    raise SuiteError(f"{path}: cannot explore a {suffix or 'suffix-less'} file; expected a folder of images, "
                     f"or one of {', '.join(DATA_SUFFIXES)}")


def _load_folder(root: Path, label_sep, split, text_col) -> LabeledData:
    """Class folders (labelled), else the images under ``root`` (unlabelled), else its one data file."""
    from .data.datasets import _keep_readable

    direct = [p for p in _visible(root) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    has_class_folders = any(p.is_dir() and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.rglob("*"))
                            for p in _visible(root))
    if has_class_folders and not direct:
        return load_data(root)
    if direct:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        keep, skipped = _keep_readable(files, skip_bad=True)
        kept = [str(p) for p, ok in zip(files, keep) if ok]
        if not kept:
            raise SuiteError(f"{root}: none of the {len(files)} image files is readable")
        data = unlabelled(kept, "image", f"image folder {root}")
        data.skipped = skipped
        if skipped:
            data.warnings.append(f"{root}: skipped {len(skipped)} unreadable file(s), first: {skipped[0][0]} "
                                 f"({skipped[0][1]})")
        return data
    files = [p for p in _visible(root) if p.is_file() and p.suffix.lower() in DATA_SUFFIXES]
    if len(files) == 1:
        return load_items(files[0], label_sep, split, text_col)
    found = ", ".join(p.name for p in files) or "nothing usable"
    raise SuiteError(f"{root}: expected images (flat or one sub-folder per class) or a single data file "
                     f"({', '.join(DATA_SUFFIXES)}); found {found}")


def unlabelled(items: list, modality: str, source: str) -> LabeledData:
    """``items`` without labels (all ``-1``, no classes)."""
    return LabeledData(items=items, labels=np.full(len(items), -1, dtype=np.int64), classes=[],
                       modality=modality, source=source)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def with_label_names(items: list, names: list[str], modality: str, source: str) -> LabeledData:
    """``items`` with label names (``""`` = unlabelled) encoded as class indices, classes sorted."""
    classes = sorted({n for n in names if n})
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index.get(n, -1) for n in names], dtype=np.int64)
    return LabeledData(items=items, labels=labels, classes=classes, modality=modality, source=source,
                       task="binary" if len(classes) == 2 else "multiclass")


def _load_lines(path: Path, label_sep: str | None) -> LabeledData:
    lines = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    if not lines:
        raise SuiteError(f"{path}: no text lines")
    if not label_sep:
        return unlabelled(lines, "text", f"text file {path}")
    missing = [n for n, line in enumerate(lines, 1) if label_sep not in line]
    if missing:
        raise SuiteError(f"{path}: {len(missing)} line(s) have no {label_sep!r} label separator "
                         f"(first: line {missing[0]}); drop --label-sep for unlabelled texts")
    texts, labels = zip(*(line.rsplit(label_sep, 1) for line in lines))
    return with_label_names([t.strip() for t in texts], [lab.strip() for lab in labels], "text", f"text file {path}")


def _load_npz(path: Path, split) -> LabeledData:
    if split is None:
        import zipfile

        if not zipfile.is_zipfile(path):
            raise CorruptFileError(path, "not a readable .npz archive (expected a zip of .npy arrays)")
        try:
            with zipfile.ZipFile(path) as archive:  # the names only; load_data reads the arrays
                names = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError) as exc:
            raise CorruptFileError(path, f"not a readable .npz archive ({exc})") from None
        split = [k[: -len("_images")] for k in names if k.endswith("_images")] or "train"
    return load_data(path, split=split)


def _load_table(path: Path, text_col: str | None) -> LabeledData:
    """A CSV/JSON of texts or image paths; without a label column every item is unlabelled."""
    import csv
    import io
    import json

    text = _read_text(path)
    if path.suffix.lower() in (".json", ".jsonl"):
        rows = ([json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl"
                else json.loads(text))
    else:
        first = text.split("\n", 1)[0]
        rows = list(csv.DictReader(io.StringIO(text), delimiter=max(",\t;", key=first.count)))
    if not rows or not isinstance(rows[0], dict):
        raise SuiteError(f"{path}: no rows")
    header = list(rows[0])
    column = text_col or next((c for c in ("text", "sentence", "path") if c in header), None)
    if column is None or column not in header:
        raise SuiteError(f"{path}: no {'column ' + repr(text_col) if text_col else 'text or path column'}; "
                         f"columns: {header}")
    values = [str(r.get(column) or "") for r in rows]
    names = [str(r.get("label") or "").strip() for r in rows]
    if column != "path":
        return with_label_names(values, names, "text", f"text file {path}")
    from .data.datasets import _keep_readable

    files = [path.parent / v for v in values]
    keep, skipped = _keep_readable(files, skip_bad=True)
    if not any(keep):
        raise SuiteError(f"{path}: none of the {len(files)} listed images is readable")
    data = with_label_names([str(f) for f, ok in zip(files, keep) if ok], [n for n, ok in zip(names, keep) if ok],
                        "image", f"image list {path}")
    if skipped:
        data.warnings.append(f"{path}: skipped {len(skipped)} missing or unreadable image(s), first: "
                             f"{skipped[0][0]} ({skipped[0][1]})")
    return data


def subsample(data: LabeledData, max_items: int | None, seed: int = 0) -> LabeledData:
    """At most ``max_items`` items drawn at random (order kept); the source says so."""
    if not max_items or len(data) <= max_items:
        return data
    picked = np.sort(np.random.default_rng(seed).choice(len(data), max_items, replace=False))
    part = data.subset(picked)
    part.source = f"{data.source} (random {max_items} of {len(data)}, seed {seed})"
    return part


def item_names(data: LabeledData) -> list[str]:
    """A short display name per item: the path below the common folder, the text, or ``#index``."""
    if data.modality == "text":
        return [str(t) for t in data.items]
    if data.items and all(isinstance(i, (str, os.PathLike)) for i in data.items):
        paths = [str(p) for p in data.items]
        root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
        if os.path.isfile(root):
            root = os.path.dirname(root)
        return [os.path.relpath(p, root) for p in paths]
    return [f"#{i}" for i in range(len(data))]
