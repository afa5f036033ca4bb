"""Extracting untrusted zip uploads safely: no path traversal, no links, bounded size and count.

An archive is checked member by member before anything is written, then streamed out with the byte
limit enforced on what is actually decompressed (headers can lie). On any refusal the files already
written are removed again, so a refused upload leaves nothing behind.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
import zlib
from pathlib import Path

from .errors import CorruptFileError, SuiteError, TooLargeError, UnsafeFileError

MAX_ZIP_FILES = 20_000
MAX_ZIP_BYTES = 2 * 1024**3
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of a member; images and text stay far below
RATIO_CHECK_BYTES = 1 << 20  # members smaller than this are never refused for their ratio


def safe_extract_zip(source, dest, max_files: int = MAX_ZIP_FILES, max_bytes: int = MAX_ZIP_BYTES,
                     max_ratio: float = MAX_ZIP_RATIO) -> Path:
    """Extract a zip (path, bytes or file object) into ``dest`` and return the data folder in it.

    The whole archive is refused (:class:`UnsafeFileError`) when a member would land outside
    ``dest`` (absolute paths, drive letters, ``..``) or is a link, and (:class:`TooLargeError`)
    when it holds more than ``max_files`` files, expands to more than ``max_bytes`` or a member
    compresses more than ``max_ratio`` times (a zip bomb). Hidden files and ``__MACOSX`` are skipped.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "uploaded zip"
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    dest = Path(dest).resolve()
    written: list[Path] = []
    try:
        with zipfile.ZipFile(stream) as archive:
            members = _checked_members(archive, name, dest, max_files, max_bytes, max_ratio)
            if not members:
                raise CorruptFileError(name, "the zip holds no files")
            _extract(archive, members, name, max_bytes, written)
    except SuiteError:
        _remove(written, dest)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, ValueError, OverflowError) as exc:
        _remove(written, dest)
        raise CorruptFileError(name, f"not a readable zip file ({exc})") from None
    except (RuntimeError, NotImplementedError) as exc:  # encrypted members, unknown compression methods
        _remove(written, dest)
        raise CorruptFileError(name, f"cannot extract this zip ({exc}); re-create it without a password "
                                     "using the standard deflate compression") from None
    except OSError as exc:
        _remove(written, dest)
        raise CorruptFileError(name, f"cannot extract this zip ({exc})") from None
    return data_root(dest)


def _checked_members(archive: zipfile.ZipFile, name: str, dest: Path, max_files: int, max_bytes: int,
                     max_ratio: float):
    """``(info, target path)`` of the files to extract, after the safety checks."""
    members, total = [], 0
    for info in archive.infolist():
        raw = info.filename
        if not raw:
            raise CorruptFileError(name, "a member has an empty name; refused")
        parts = raw.replace("\\", "/").split("/")
        if raw.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts or "\0" in raw:
            raise UnsafeFileError(f"{name}: unsafe path {raw!r} (outside the extraction folder); refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeFileError(f"{name}: {raw!r} is a symbolic link; refused")
        if info.is_dir() or any(p.startswith(".") or p == "__MACOSX" for p in parts if p):
            continue
        target = dest.joinpath(*[p for p in parts if p]).resolve()
        if not target.is_relative_to(dest) or target == dest:
            raise UnsafeFileError(f"{name}: unsafe path {raw!r}; refused")
        if info.file_size > RATIO_CHECK_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise TooLargeError(name, f"{raw!r} expands {info.file_size / max(info.compress_size, 1):.0f} times "
                                      f"(more than {max_ratio:.0f}): a zip bomb; refused")
        total += info.file_size
        members.append((info, target))
        if len(members) > max_files:
            raise TooLargeError(name, f"more than {max_files} files; refused")
        if total > max_bytes:
            raise TooLargeError(name, f"expands to more than {max_bytes / 2**20:.0f} MB; refused")
    return members


def _extract(archive: zipfile.ZipFile, members, name: str, max_bytes: int, written: list[Path]) -> None:
    """Stream the members out, counting the bytes really decompressed against ``max_bytes``."""
    total = 0
    for info, target in members:
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as out:
            written.append(target)
            while chunk := src.read(1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise TooLargeError(name, f"expands to more than {max_bytes / 2**20:.0f} MB; refused")
                out.write(chunk)


def _remove(written: list[Path], dest: Path) -> None:
    """Delete the files of a refused archive and the folders that became empty (never ``dest``)."""
    for path in written:
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != dest and parent.is_relative_to(dest):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def visible_entries(path: Path) -> list[Path]:
    """Entries of a folder, without hidden ones and ``__MACOSX``, sorted."""
    return sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX")


def data_root(path: Path) -> Path:
    """``path``, or the folder inside it when it holds nothing but one folder (a zipped folder)."""
    while True:
        entries = visible_entries(path)
        if len(entries) != 1 or not entries[0].is_dir():
            return path
        path = entries[0]
