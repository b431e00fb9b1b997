"""Browser scaffolding of the dashboard tests: the dashboard process, Chromium, a page.

Debian's ``chromium`` package provides the browser (``run_tests.sh install-deps``
installs it); Playwright drives it. Playwright is imported only when a browser
is launched, so modules that need just the dashboard process import this freely.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pystrument_lab.embedded import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--headless",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots, not committed


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class DashboardProcess:
    """``pystrument dashboard`` in a subprocess on a free port."""

    def __init__(self, env: dict[str, str], log: Path, address: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [
            sys.executable,
            "-m",
            "pystrument_lab.cli",
            "dashboard",
            "--port",
            str(self.port),
            "--address",
            address,
        ]
        self.log = log
        self.process = subprocess.Popen(
            command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dashboard exited: {log.read_text()[-2000:]}")
            try:
                # A first session is built on this request: it can take a while on a busy machine.
                httpx.get(self.url, timeout=30.0)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"dashboard did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class Page:
    """A browser page that records console errors."""

    def __init__(self, browser: Any, base: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.set_default_timeout(30_000)
        self.base = base
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, query: str = "") -> Any:
        self.page.goto(self.base + query)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def text(self, text: str) -> Any:
        return self.page.get_by_text(text, exact=False).locator("visible=true").first

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def figure_glyphs(page: Any, title: str) -> list[str]:
    """The ``function`` column of the first renderer of the bokeh figure titled ``title``."""
    return page.evaluate(
        """(title) => {
            for (const doc of window.Bokeh.documents) {
                for (const model of doc.all_models) {
                    if (model.title && model.title.text === title && model.renderers) {
                        const data = model.renderers[0].data_source.data;
                        const column = data instanceof Map ? data.get("function") : data["function"];
                        return Array.from(column);
                    }
                }
            }
            return null;
        }""",
        title,
    )
