"""A live server with the console, a tiny SD-1 model and a broken pack, and one Chromium for a whole module.

The browser is Debian's Chromium (scripts/system-packages installs it), driven by the PyPI ``playwright`` package
through ``executable_path``: nothing is downloaded. Set ``INVOKE_CONSOLE_SCREENSHOTS=DIR`` to have the tests save a
PNG of each view there (docs/console/ holds the ones docs/console.md shows).
"""

from __future__ import annotations

import io
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import invoke_core_events.plugin
import invoke_core_nodes.plugin
import invoke_diffusers_nodes.plugin
import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sd_probers.plugin
import invoke_sqlite_storage.plugin
import invoke_web_console.plugin
import pytest
from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.live_server import LiveServer, live_server

CHROMIUM = "/usr/bin/chromium"
BROKEN_PACK = "broken_console_pack"
BROKEN_MESSAGE = "this pack's hook fails on purpose"


def _broken_pack() -> types.ModuleType:
    pack = types.ModuleType(BROKEN_PACK)

    @hookimpl
    def register_invocations(register: RegisterInvocation) -> None:
        raise RuntimeError(BROKEN_MESSAGE)

    pack.register_invocations = register_invocations  # type: ignore[attr-defined]
    return pack


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD-1 diffusers folder with random weights (tests/generation builds it; a few MB, seconds)."""
    from tests.generation.tiny_models import build_pipeline, write_tokenizer

    root = tmp_path_factory.mktemp("console-model")
    # The builder reads both tokenizers whatever it builds (as tests/generation/conftest.py writes them).
    write_tokenizer(root / "tokenizers" / "sd1", pad_token="<|endoftext|>")
    write_tokenizer(root / "tokenizers" / "sd2", pad_token="!")
    return build_pipeline("sd1", root / "tiny-sd1", root / "tokenizers")


@dataclass
class Console:
    """The live server and a browser page on it."""

    server: LiveServer
    page: Any
    shots: Path | None

    @property
    def url(self) -> str:
        return self.server.url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30)

    def open(self, view: str) -> None:
        self.page.goto(f"{self.url}/#/{view}")
        self.page.wait_for_selector(f"section.view.{view.split('/')[0]}")

    def shot(self, name: str) -> None:
        if self.shots is not None:
            self.page.screenshot(path=str(self.shots / f"{name}.png"))


@contextmanager
def browser_page(server: LiveServer) -> Iterator[Console]:
    """Debian's Chromium on ``server``, for a whole module; fails the module if the console raised in the page."""
    from playwright.sync_api import sync_playwright

    shots = os.environ.get("INVOKE_CONSOLE_SCREENSHOTS")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="dark")
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield Console(server, page, Path(shots) if shots else None)
            assert errors == [], f"the console raised in the browser: {errors}"
        finally:
            browser.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    # No HF_HUB_OFFLINE here: huggingface_hub reads it once, at its first import, and a module-wide setting leaked
    # into the later model-install tests that talk to a local hub. The tiny model loads from its folder only.
    with pytest.MonkeyPatch.context():
        root = tmp_path_factory.mktemp("console-root")
        config = HostConfig(root=root, device="cpu", precision="float32", ram_cache_gb=2, vram_cache_gb=2)
        plugins = [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin, invoke_core_events.plugin,
                   invoke_core_nodes.plugin, invoke_image_nodes.plugin, invoke_sd_probers.plugin,
                   invoke_diffusers_nodes.plugin, invoke_web_console.plugin, (BROKEN_PACK, _broken_pack())]
        app = create_app(config, plugins, entry_points=False)
        with live_server(app) as server, browser_page(server) as console:
            yield console


def png_bytes(width: int = 40, height: int = 30, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()
