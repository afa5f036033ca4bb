"""What to explore: folders of images (flat or one sub-folder per class), text lines with optional
labels, text or image-path tables, MedMNIST ``.npz`` files, and safely extracted zips of them."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from .data import LabeledData, load_data
from .errors import SuiteError
from .io import IMAGE_SUFFIXES

DATA_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".jsonl", ".npz")
MAX_ZIP_FILES = 20_000
MAX_ZIP_BYTES = 2 * 1024**3


def safe_extract_zip(source, dest, max_files: int = MAX_ZIP_FILES, max_bytes: int = MAX_ZIP_BYTES) -> Path:
    """Extract a zip (path, bytes or file object) into ``dest`` and return the data folder in it.

    The whole archive is refused when a member would land outside ``dest`` (absolute paths, ``..``),
    is a link, or when the files or their uncompressed bytes exceed the limits. Hidden files and
    ``__MACOSX`` folders are skipped.
    """
    import io

    name = str(source) if isinstance(source, (str, os.PathLike)) else "uploaded zip"
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    dest = Path(dest).resolve()
    try:
        with zipfile.ZipFile(stream) as archive:
            members = _checked_members(archive, name, dest, max_files, max_bytes)
            written = 0
            for info, target in members:
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise SuiteError(f"{name}: expands to more than {max_bytes / 2**20:.0f} MB; refused")
                        out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise SuiteError(f"{name}: not a readable zip file ({exc})") from None
    if not members:
        raise SuiteError(f"{name}: the zip holds no files")
    return _data_root(dest)


def _checked_members(archive: zipfile.ZipFile, name: str, dest: Path, max_files: int, max_bytes: int):
    """``(info, target path)`` of the files to extract, after the safety checks."""
    members = []
    total = 0
    for info in archive.infolist():
        parts = info.filename.replace("\\", "/").split("/")
        if info.filename.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
            raise SuiteError(f"{name}: unsafe path {info.filename!r} (outside the extraction folder); refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise SuiteError(f"{name}: {info.filename!r} is a symbolic link; refused")
        if info.is_dir() or any(p.startswith(".") or p == "__MACOSX" for p in parts if p):
            continue
        target = dest.joinpath(*[p for p in parts if p]).resolve()
        if not target.is_relative_to(dest):
            raise SuiteError(f"{name}: unsafe path {info.filename!r}; refused")
        total += info.file_size
        members.append((info, target))
        if len(members) > max_files:
            raise SuiteError(f"{name}: more than {max_files} files; refused")
        if total > max_bytes:
            raise SuiteError(f"{name}: expands to more than {max_bytes / 2**20:.0f} MB; refused")
    return members


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX")


def _data_root(path: Path) -> Path:
    """``path``, or the folder inside it when it holds nothing but one folder (a zipped folder)."""
    while True:
        entries = _visible(path)
        if len(entries) != 1 or not entries[0].is_dir():
            return path
        path = entries[0]


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
        with np.load(path, allow_pickle=False) as archive:
            split = [k[: -len("_images")] for k in archive.files if k.endswith("_images")]
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
