"""Safe weight files: safetensors, or ``torch.load(weights_only=True)`` for legacy checkpoints.

Nothing here ever unpickles arbitrary objects: a pickle that holds anything but tensors and plain
containers is refused before any of its code can run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Mapping

import torch

from .errors import SuiteError, UnsafeFileError

LEGACY_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a legacy torch file loaded with ``weights_only``."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: weight file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # corrupt or truncated
            raise SuiteError(f"{path}: not a valid safetensors file ({exc})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnsafeFileError(
            f"{path}: refused to load: it is not a plain tensor checkpoint "
            f"(weights_only loading failed: {str(exc).splitlines()[0]}). "
            "Convert it to .safetensors in a trusted environment."
        ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SuiteError(f"{path}: expected a mapping of names to tensors")
    return dict(obj)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success flush it to disk and rename it into place.

    A crash leaves the old file or the new one, never half of one. The file gets the usual
    permissions (0666 minus the umask), not the owner-only mode of temporary files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_state_dict(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                    metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors, atomically (a temporary file renamed into place)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, tmp, metadata=metadata)


def fingerprint(tensors: Mapping[str, torch.Tensor]) -> str:
    """A short SHA-256 over names, shapes, dtypes and bytes: identifies a set of base weights."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]
