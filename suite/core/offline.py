"""Decide quickly whether a hub download can happen, so offline requests fail fast and clearly."""

from __future__ import annotations

import functools
import os
import socket

from .errors import OfflineError

_HUB_HOSTS = {"hf": "huggingface.co", "torch": "download.pytorch.org", "github": "github.com"}


def offline_forced() -> bool:
    """True when the user asked for offline mode (``HF_HUB_OFFLINE`` or ``SUITE_OFFLINE``)."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "SUITE_OFFLINE"))


@functools.lru_cache(maxsize=None)
def host_reachable(host: str, timeout: float = 1.5) -> bool:
    """One quick TCP connect to ``host:443``; cached for the process."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def can_download(hub: str = "hf") -> bool:
    """Whether a download from ``hub`` (``hf``, ``torch`` or ``github``) can be attempted now."""
    return not offline_forced() and host_reachable(_HUB_HOSTS[hub])


def offline_error(spec: str, what: str) -> OfflineError:
    """The one message every hub source raises when weights are neither cached nor downloadable."""
    reason = "offline mode is on (HF_HUB_OFFLINE/SUITE_OFFLINE)" if offline_forced() else "the hub cannot be reached"
    return OfflineError(
        f"{spec}: {what} not found in the local cache, and {reason}. Remedies: "
        f"(1) give a local copy, e.g. 'hf:/path/to/model_dir' or '{spec.split('?')[0]}?weights=/path/to/weights.safetensors'; "
        "(2) fill the cache on a machine with network (HF_HOME / TORCH_HOME) and copy it here; "
        "(3) use an embedded backbone that works offline: 'embedded:efficientnet_lite0' (images) "
        "or 'embedded:minilm_l6' (text); "
        "(4) pass pretrained=False (--no-pretrained) to start from random weights."
    )
