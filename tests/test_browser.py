"""End to end in a real browser: start the app, upload a real image, see the prediction, screenshot.

Needs Debian's chromium (``.ci/run`` installs it). Without it the test skips, unless
``SUITE_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes a missing browser a failure.
Screenshots go to ``artifacts/`` (or ``$SUITE_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("SUITE_ARTIFACTS", ROOT / "artifacts"))


def _chromium() -> str:
    for name in (os.environ.get("SUITE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = name and shutil.which(name)
        if path:
            return path
    if os.environ.get("SUITE_REQUIRE_BROWSER") == "1":
        pytest.fail("no chromium found but SUITE_REQUIRE_BROWSER=1: install Debian's chromium")
    pytest.skip("no chromium on this machine (apt-get install chromium); .ci/run installs it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "apps" / "Home.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--client.toolbarMode", "viewer"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not answer /_stcore/health within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def _page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    return page


def test_home_page_in_a_browser(browser, app_url):
    page = _page(browser)
    page.goto(app_url)
    page.get_by_text("transfer learning that works from little data").wait_for()
    page.get_by_text("research and demonstration use only").last.wait_for()
    page.get_by_text("from scratch").first.wait_for()  # the measured numbers rendered
    for name in ("Medical imaging", "Plant disease", "Financial sentiment", "Sim-to-real driving"):
        assert page.get_by_role("link", name=name).count() >= 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-home.png"), full_page=True)
    page.close()


def test_upload_a_real_photo_and_see_the_prediction(browser, app_url, tmp_path, chelsea):
    from PIL import Image

    photo = tmp_path / "chelsea.jpg"
    Image.fromarray(chelsea).save(photo, quality=92)
    page = _page(browser)
    page.goto(f"{app_url}/backbones")
    page.get_by_text("Try the embedded ImageNet model").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(photo))
    page.get_by_text("Egyptian cat").first.wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "browser-prediction.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not page.get_by_text("Traceback").count()
    page.close()


@pytest.mark.parametrize("page_path", ["medical", "agriculture", "finance", "driving"])
def test_every_vertical_page_renders_its_four_tabs(browser, app_url, page_path):
    page = _page(browser)
    page.goto(f"{app_url}/{page_path}")
    for tab in ("Try", "Adapt", "Compare", "Explore"):
        page.get_by_role("tab", name=tab).wait_for()
    page.wait_for_load_state("networkidle")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_leaf_photo_on_the_plant_disease_page(browser, app_url):
    from conftest import shared_data

    leaf = sorted((shared_data("agriculture", "plantvillage_tomato") / "Tomato___Early_blight").glob("*"))[0]
    page = _page(browser)
    page.goto(f"{app_url}/agriculture")
    page.get_by_text("A photo of one tomato leaf").wait_for()  # the Try tab's uploader has rendered
    page.wait_for_load_state("networkidle")
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="A photo of one tomato leaf")
    uploader.locator("input[type=file]").set_input_files(str(leaf))
    page.get_by_text("Grad-CAM: where the model looked").first.wait_for()
    page.get_by_text("Prediction").first.wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-leaf.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    # the ready-made ensemble diagnoses the same upload; its own model card is the one shown
    page.get_by_text("ready-made tomato ensemble").click()
    page.get_by_text("Model card").click()
    page.get_by_text("tomato_ensemble: tomato leaf disease detection").wait_for(timeout=120_000)
    page.get_by_text("Grad-CAM: where the model looked").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "browser-leaf-ensemble.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
