"""The shared Adapt and Compare tabs (AppTest): upload a zip, train live, download, try the result."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

ADAPT_PAGE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from apps.adapt_view import adapt_view, solution_choice
adapt_view("t", modality="image", epochs=1, image_size=64)
solution = solution_choice("t", {{}})
if solution is not None:
    st.session_state["predicted"] = solution.predict(st.session_state["probe"])["label"]
"""


def _zip_folder(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(folder.rglob("*.png")):
            z.write(path, Path("leaves") / path.relative_to(folder))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def test_adapt_tab_trains_reports_and_hands_the_solution_to_try(photo_folder):
    probe = sorted(photo_folder.rglob("*.png"))[0]
    at = AppTest.from_string(ADAPT_PAGE, default_timeout=300)
    at.session_state["probe"] = str(probe)
    at.run()
    assert not at.exception
    at.file_uploader(key="t_data_upload").upload("leaves.zip", _zip_folder(photo_folder), "application/zip").run()
    assert not at.exception
    assert any("36 items" in m.value for m in at.markdown)
    at.button[-1].click().run()  # the form's Train button
    assert not at.exception
    assert any("Trained" in s.value for s in at.success)
    metrics = at.dataframe[-1].value
    accuracy = float(metrics.loc[metrics["metric"] == "accuracy", "value"].iloc[0])
    assert 0.0 <= accuracy <= 1.0
    assert "trained in this session" in at.radio(key="t_solution_choice").options
    at.radio(key="t_solution_choice").set_value("trained in this session").run()
    assert not at.exception
    assert at.session_state["predicted"] in {p.name for p in photo_folder.iterdir()}


def test_adapt_tab_refuses_a_traversing_zip_and_keeps_working(photo_folder):
    at = AppTest.from_string(ADAPT_PAGE, default_timeout=120)
    at.session_state["probe"] = "unused"
    at.run()
    bad = _zip_folder(photo_folder, {"../../evil.txt": b"x"})
    at.file_uploader(key="t_data_upload").upload("bad.zip", bad, "application/zip").run()
    assert not at.exception
    assert any("bad.zip" in e.value or "outside" in e.value for e in at.error)
    assert not (Path("/tmp") / "evil.txt").exists()
    at.file_uploader(key="t_data_upload").upload("leaves.zip", _zip_folder(photo_folder), "application/zip").run()
    assert not at.exception and not at.error


def test_compare_tab_shows_measured_tables():
    page = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from apps.compare_view import compare_view
compare_view("agriculture")
"""
    at = AppTest.from_string(page, default_timeout=60).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "pretrained" in text and "scratch" in text
    assert any("benchmarks/data_efficiency.py" in c.value for c in at.caption)
    # the shipped recipe's own data-efficiency table and the guard's refusal rates
    assert "`embedded:efficientnet_lite2`, PlantVillage tomato" in text and "Unknown-input rates" in text
    assert "| field_mix288c |" in text and "pooled" in text  # the shipped recipe over its leaf-aware splits
