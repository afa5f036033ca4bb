"""Load on the demo app: N concurrent browser sessions upload photos and wait for the predictions.

Starts ``streamlit run apps/Home.py`` on a free port, then for N = 1, 2, 4, 8 opens N browser
contexts (Playwright, Chromium) that each load a page, upload a photo ``--rounds`` times
(alternating two photos, so each prediction must replace the last) and wait until the predicted
label is shown. Reports per N: predictions, errors, latency (median / max, upload to label on
screen) and the server's resident memory after the sessions (RSS of the Streamlit process).

    .venv/bin/python benchmarks/app_load.py                       # Backbones page (+ vertical pages present)
    .venv/bin/python benchmarks/app_load.py --sessions 1 2 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

CHROMIUM = os.environ.get("SUITE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("SUITE_LOAD_SCREENSHOTS")  # a folder: pages that failed are saved there


@dataclass
class PageCase:
    """One page to load: its URL path, the upload's label text, and photos with the label each must show."""
    name: str
    url_path: str
    photos: list[tuple[str, bytes, str]]  # (file name, bytes, expected text in the prediction)
    uploader: str = 'input[type="file"]'
    result: str = '[data-testid="stMetricValue"]'


@dataclass
class Phase:
    sessions: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss_before: float = 0.0
    rss_peak: float = 0.0
    rss_after: float = 0.0
    seconds: float = 0.0


def _png(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def backbones_case() -> PageCase:
    from skimage import data

    return PageCase("Backbones (EfficientNet-Lite0, ImageNet)", "backbones",
                    [("chelsea.png", _png(data.chelsea()), "Egyptian cat"), ("coffee.png", _png(data.coffee()), "espresso")])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", str(_common.REPO / "apps" / "Home.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=_common.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the app did not start on port {port}: {proc.stderr.read().decode()[-2000:]}")


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its children, in MB (psutil, else /proc)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """Peak RSS of ``pid`` while a phase runs (sampled every 0.2 s)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


async def _idle(page, timeout_ms: int) -> None:
    """Wait until the page's script run has finished (the running indicator is gone)."""
    await page.wait_for_timeout(500)
    await page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout_ms)


async def one_session(browser, base: str, case: PageCase, rounds: int, phase: Phase, timeout_ms: int) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(f"{base}/{case.url_path}", timeout=timeout_ms)
        await page.wait_for_selector(case.uploader, state="attached", timeout=timeout_ms)
        await _idle(page, timeout_ms)
        for r in range(rounds):
            name, data, expected = case.photos[r % len(case.photos)]
            start = time.perf_counter()
            await page.set_input_files(case.uploader, files=[{"name": name, "mimeType": "image/png", "buffer": data}])
            await page.locator(case.result, has_text=expected).first.wait_for(timeout=timeout_ms)
            phase.latencies.append(time.perf_counter() - start)
        exceptions = await page.locator('[data-testid="stException"]').count()
        if exceptions:
            phase.errors.append(f"{case.name}: {exceptions} exception block(s) on the page")
    except Exception as exc:  # a timeout or a page error: counted, the other sessions go on
        phase.errors.append(f"{case.name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        if SCREENSHOTS:
            await page.screenshot(path=str(Path(SCREENSHOTS) / f"{case.url_path}-{phase.sessions}-{id(page)}.png"),
                                  full_page=True)
    finally:
        await context.close()


async def run_phase(base: str, cases: list[PageCase], sessions: int, rounds: int, pid: int,
                    timeout_ms: int) -> Phase:
    from playwright.async_api import async_playwright

    phase = Phase(sessions, rss_before=rss_mb(pid))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        start = time.perf_counter()
        with RssSampler(pid) as sampler:
            await asyncio.gather(*[one_session(browser, base, cases[i % len(cases)], rounds, phase, timeout_ms)
                                   for i in range(sessions)])
        phase.seconds = time.perf_counter() - start
        phase.rss_peak = max(sampler.peak, phase.rss_before)
        await browser.close()
    phase.rss_after = rss_mb(pid)
    return phase


def vertical_cases() -> list[PageCase]:
    """Vertical pages with a photo upload, when they exist; done when the photo's caption (its file
    name) is shown next to the prediction."""
    import numpy as np

    cases, pages, caption = [], _common.REPO / "apps" / "views", '[data-testid="stImageCaption"]'
    if (pages / "agriculture.py").is_file() and _common.TOMATO.is_dir():
        folders = [p for p in sorted(_common.TOMATO.iterdir()) if p.is_dir()][:2]
        leaves = [next(p for p in sorted(f.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")) for f in folders]
        cases.append(PageCase("Agriculture (tomato leaf)", "agriculture",
                              [(f"leaf{i}.png", _png(np.asarray(_rgb(p))), f"leaf{i}.png") for i, p in enumerate(leaves)],
                              uploader=_uploader("tomato leaf"), result=caption))
    if (pages / "medical.py").is_file() and _common.PNEUMONIA.is_file():
        with np.load(_common.PNEUMONIA) as npz:
            xrays = npz["test_images"][:2]
        cases.append(PageCase("Medical (chest X-ray)", "medical",
                              [(f"xray{i}.png", _png(x), f"xray{i}.png") for i, x in enumerate(xrays)],
                              uploader=_uploader("chest X-ray"), result=caption))
    return cases


def _uploader(label: str) -> str:
    """The file input of the uploader whose label mentions ``label`` (a page can hold several uploaders)."""
    return f'[data-testid="stFileUploader"]:has-text("{label}") input[type="file"]'


def _rgb(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=3, help="uploads per session")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for one page or prediction")
    parser.add_argument("--no-verticals", action="store_true", help="only the Backbones page")
    args = parser.parse_args()
    cases = [backbones_case()] + ([] if args.no_verticals else vertical_cases())
    port = _free_port()
    start = time.perf_counter()
    app = start_app(port)
    base = f"http://127.0.0.1:{port}"
    try:
        rss_idle = rss_mb(app.pid)
        warm = asyncio.run(run_phase(base, cases, len(cases), 1, app.pid, int(args.timeout * 1000)))  # loads each model
        phases = [asyncio.run(run_phase(base, cases, n, args.rounds, app.pid, int(args.timeout * 1000)))
                  for n in args.sessions]
    finally:
        app.terminate()
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            app.kill()
    rows = []
    for ph in phases:
        lat = sorted(ph.latencies)
        med = f"{statistics.median(lat):.2f}" if lat else "-"
        worst = f"{lat[-1]:.2f}" if lat else "-"
        rows.append(f"| {ph.sessions} | {len(lat)} / {ph.sessions * args.rounds} | {len(ph.errors)} | {med} | "
                    f"{worst} | {ph.rss_after:.0f} | {ph.rss_peak:.0f} | {ph.seconds:.1f} |")
    growth = phases[-1].rss_after - phases[0].rss_after if phases else 0.0
    markdown = "\n".join([
        "# App under load: concurrent sessions predicting", "",
        f"Pages: {', '.join(c.name for c in cases)}. Each session is its own browser context (Chromium, "
        f"Playwright) that uploads a photo {args.rounds} times and waits for the predicted label. "
        "Latency: upload to label on screen, seconds. RSS: the Streamlit server process, MB. The browser ran on the "
        "same machine (2 CPU cores, shared with other jobs), so latencies are upper bounds.", "",
        f"Server RSS: {rss_idle:.0f} MB idle, {warm.rss_after:.0f} MB after one prediction on each page (models loaded); "
        f"from {phases[0].sessions} to {phases[-1].sessions} concurrent sessions it changed by {growth:+.0f} MB.", "",
        "| sessions | predictions | errors | median latency s | max latency s | RSS after MB | RSS peak MB | wall s |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
        f"Command: `.venv/bin/python benchmarks/app_load.py --rounds {args.rounds}` "
        f"(total {time.perf_counter() - start:.0f} s).", ""])
    errors = [e for ph in phases for e in ph.errors] + warm.errors
    if errors:
        markdown += "\nErrors:\n" + "\n".join(f"- {e}" for e in errors[:20]) + "\n"
    raw = {"rss_idle_mb": rss_idle, "rss_after_first_mb": warm.rss_after, "warm_errors": warm.errors,
           "phases": [ph.__dict__ for ph in phases]}
    _common.publish("app_load", markdown, raw)


if __name__ == "__main__":
    main()
