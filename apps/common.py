"""Helpers the app pages share: cached model loading and safe upload handling."""

from __future__ import annotations

import streamlit as st

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


@st.cache_resource(show_spinner="Loading model...")
def imagenet_solution():
    """The embedded EfficientNet-Lite0 with its ImageNet head, loaded once per process."""
    from timm.data import ImageNetInfo

    from suite.core import Solution, create_model

    info = ImageNetInfo()
    labels = [info.index_to_description(i) for i in range(info.num_classes())]
    return Solution(create_model("embedded:efficientnet_lite0", num_classes=len(labels)), labels,
                    name="EfficientNet-Lite0 (ImageNet)")


def read_upload(upload):
    """An uploaded file as a PIL image, or ``None`` after showing a clear error."""
    from suite.core import SuiteError, read_image

    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_BYTES:
        st.error(f"{upload.name}: {len(data) / 1e6:.1f} MB is more than the {MAX_UPLOAD_BYTES // 2**20} MB limit.")
        return None
    try:
        return read_image(data, name=upload.name)
    except SuiteError as exc:
        st.error(str(exc))
        return None
