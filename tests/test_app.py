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


def test_every_view_is_in_the_navigation_and_no_legacy_pages_folder():
    """A ``pages/`` folder beside Home.py would be served by Streamlit itself to a first visitor who opens
    ``/driving`` directly (no Home.py, no sys.path, a different sidebar): the views live in ``views/``."""
    apps = Path(HOME).parent
    assert not (apps / "pages").exists()
    home = Path(HOME).read_text()
    views = sorted(p.name for p in (apps / "views").glob("*.py") if not p.name.startswith("_"))
    assert views and all(f'PAGES / "{name}"' in home for name in views)


def _backbones_page():
    at = AppTest.from_file(HOME, default_timeout=120).run()
    return at.switch_page("views/backbones.py").run()


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
