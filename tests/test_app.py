"""The Streamlit app, page by page, with AppTest (no browser)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

HOME = str(Path(__file__).resolve().parents[1] / "apps" / "Home.py")


def test_home_page_renders():
    at = AppTest.from_file(HOME, default_timeout=120).run()
    assert not at.exception
    assert "transfer learning" in at.title[0].value
    assert any("Not for clinical" in m.value for m in at.markdown)


def _backbones_page():
    at = AppTest.from_file(HOME, default_timeout=120).run()
    return at.switch_page("pages/backbones.py").run()


def test_backbones_page_predicts_an_uploaded_photo(chelsea):
    at = _backbones_page()
    assert not at.exception and len(at.dataframe) == 1
    buf = io.BytesIO()
    Image.fromarray(chelsea).save(buf, format="PNG")
    at.file_uploader(key="photo").upload("chelsea.png", buf.getvalue(), "image/png").run()
    assert not at.exception
    assert at.metric[0].value == "Egyptian cat"


def test_backbones_page_reports_a_bad_upload_and_keeps_working():
    at = _backbones_page()
    at.file_uploader(key="photo").upload("notes.png", b"this is text, not a PNG", "image/png").run()
    assert not at.exception
    assert any("notes.png" in e.value and "not an image" in e.value for e in at.error)
    assert len(at.dataframe) == 1
