"""The console on a server with an access token: the page loads without it, asks for it, and then works with it.

Its own server (no model, no diffusers) and browser: the prompt, a wrong token's message, the right one showing the
gallery with its images loaded (fetched with the header, shown from blob URLs), the live events connected over the
websocket's bearer subprotocol, and "Forget token".
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import invoke_core_events.plugin
import invoke_core_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sqlite_storage.plugin
import invoke_web_console.plugin
import pytest

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.console.conftest import Console, browser_page, png_bytes
from tests.live_server import live_server

pytestmark = pytest.mark.timeout(120)

TOKEN = "console-token-4e7f"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    config = HostConfig(root=tmp_path_factory.mktemp("console-token-root"), token=TOKEN)
    plugins = [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin, invoke_core_events.plugin,
               invoke_core_nodes.plugin, invoke_web_console.plugin]
    with live_server(create_app(config, plugins, entry_points=False)) as server, browser_page(server) as console:
        yield console


def test_the_console_asks_for_the_token_and_then_shows_the_gallery(console: Console) -> None:
    with httpx.Client(base_url=console.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
        answer = api.post("/api/v1/images/upload", params={"image_category": "user"},
                          files={"file": ("guarded.png", png_bytes(30, 20, (40, 40, 220)), "image/png")})
        assert answer.status_code == 201, answer.text
        name = answer.json()["image_name"]
    with httpx.Client(base_url=console.url, timeout=30) as anonymous:
        assert anonymous.get("/api/v1/images").status_code == 401
        assert anonymous.get("/console/app.js").status_code == 200
    page = console.page
    page.goto(console.url + "/")
    prompt = page.locator("form[aria-label='Access token']")
    prompt.wait_for()
    assert "needs an access token" in prompt.inner_text()
    console.shot("token")
    page.fill("input[name=token]", "not-the-token")
    page.click("form[aria-label='Access token'] button[type=submit]")
    page.wait_for_selector("form[aria-label='Access token'] [role=alert]:has-text('the access token is wrong')")
    page.fill("input[name=token]", TOKEN)
    page.click("form[aria-label='Access token'] button[type=submit]")
    tile = page.locator(f"figure[data-image='{name}']")
    tile.wait_for()
    # The thumbnail was fetched with the header and is shown from a blob: URL, so the token is in no URL.
    page.wait_for_function(
        "name => { const img = document.querySelector(`figure[data-image='${name}'] img`); "
        "return img && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0 }", arg=name)
    page.wait_for_selector("[data-connected=true]")  # the websocket took the token as its subprotocol
    assert page.evaluate("() => sessionStorage.getItem('invoke-host.token')") == TOKEN
    # Remembered for this tab: a reload goes straight to the gallery.
    page.reload()
    tile.wait_for()
    page.click("button:has-text('Forget token')")
    prompt.wait_for()
    assert page.evaluate("() => sessionStorage.getItem('invoke-host.token')") is None
