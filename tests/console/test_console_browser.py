"""The console in a real browser against a live server: the gallery, a run from the form, cancel, plugins, models.

One server and one Chromium for the module (tests/console/conftest.py); the tests run in file order and share the
server's state, each saying what it relies on. Waits are Playwright's bounded waits on the page's own state.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import BROKEN_MESSAGE, BROKEN_PACK, Console, png_bytes
from tests.live_server import wait_for

pytestmark = pytest.mark.timeout(300)

# Records whether a running item ever showed a progress bar with a value and a preview image: a tiny model's run is
# over in a second or two, so the test asks the page to remember what it showed rather than race to look.
WATCH_PROGRESS = """
() => {
  window.__seen = { progress: 0, preview: false };
  const look = () => {
    for (const bar of document.querySelectorAll('[data-run-item] progress')) {
      if (bar.hasAttribute('value')) window.__seen.progress = Math.max(window.__seen.progress, bar.value);
    }
    if (document.querySelector('[data-run-item] img.preview')) window.__seen.preview = true;
  };
  new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true });
}
"""


def _image_names(console: Console) -> list[str]:
    with console.api() as api:
        return [i["image_name"] for i in api.get("/api/v1/images", params={"limit": 100}).json()["items"]]


def _install_model(console: Console, source: Path) -> str:
    with console.api() as api:
        found = api.get("/api/v2/models", params={"type": "main"}).json()["models"]
        if found:
            return str(found[0]["key"])
        overrides = {"type": "main", "base": "sd-1", "format": "diffusers"}
        job = api.post("/api/v2/models/install", params={"source": str(source), "inplace": True}, json=overrides).json()
        wait_for(lambda: api.get(f"/api/v2/models/install/{job['id']}").json()["status"] == "completed",
                 timeout=120, what="the model install")
        return str(api.get("/api/v2/models", params={"type": "main"}).json()["models"][0]["key"])


def _fill_run_form(console: Console, steps: int) -> None:
    page = console.page
    console.open("run")
    page.wait_for_selector("select[name=model] option[value]:not([value=''])", state="attached")
    page.fill("textarea[name=prompt]", "a red fox in the snow")
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    page.fill("input[name=steps]", str(steps))
    page.fill("input[name=seed]", "7")


def test_a_broken_pack_shows_in_the_plugins_view_with_its_error(console: Console) -> None:
    page = console.page
    console.open("plugins")
    row = page.locator(f"tr[data-plugin={BROKEN_PACK}]")
    row.wait_for()
    assert row.get_attribute("data-status") == "failed"
    assert BROKEN_MESSAGE in row.inner_text()
    # Failed packs are listed first; the loaded ones say what they registered.
    assert page.locator("tr[data-plugin]").first.get_attribute("data-plugin") == BROKEN_PACK
    assert "denoise_latents" in page.locator("tr[data-plugin=invoke_diffusers_nodes\\.plugin]").inner_text()
    # Every node, with its fields from the OpenAPI schema.
    page.fill("input[name=node-filter]", "noise")
    node = page.locator("details[data-node=noise]")
    node.locator("summary").click()
    fields = node.locator("table.fields").first.inner_text()
    assert "seed" in fields and "integer" in fields and "= 512" in fields
    console.shot("plugins")


def test_the_gallery_shows_an_uploaded_image_and_the_viewer_its_details(console: Console) -> None:
    with console.api() as api:
        answer = api.post("/api/v1/images/upload", params={"image_category": "user"},
                          files={"file": ("red.png", png_bytes(40, 30), "image/png")})
        assert answer.status_code == 201, answer.text
        name = answer.json()["image_name"]
    page = console.page
    console.open("gallery")
    tile = page.locator(f"figure[data-image='{name}']")
    tile.wait_for()
    page.wait_for_function(
        "name => { const img = document.querySelector(`figure[data-image='${name}'] img`); "
        "return img && img.complete && img.naturalWidth > 0 }", arg=name)
    tile.locator("button.thumb").click()
    viewer = page.locator("[role=dialog]")
    viewer.wait_for()
    assert name in viewer.inner_text() and "40\u00d730" in viewer.inner_text()  # the size, as the viewer writes it
    page.wait_for_function("() => document.querySelector('pre.json').textContent.includes('no metadata')")
    # Keyboard: s stars the image (through the API), Esc closes the viewer.
    page.keyboard.press("s")
    with console.api() as api:
        wait_for(lambda: api.get(f"/api/v1/images/i/{name}").json()["starred"] is True, what="the star")
    page.keyboard.press("Escape")
    viewer.wait_for(state="detached")
    assert tile.locator("button.star").get_attribute("aria-pressed") == "true"


def test_a_model_installed_from_the_models_view_is_listed(console: Console, tiny_sd1: Path) -> None:
    page = console.page
    console.open("models")
    page.fill("input[name=source]", str(tiny_sd1))
    # The probers do not know the tiny model's shapes; the overrides say what it is, as the install error asks.
    page.select_option("select[name=type]", "main")
    page.select_option("select[name=base]", "sd-1")
    page.select_option("select[name=format]", "diffusers")
    page.click("form.install button[type=submit]")
    page.wait_for_selector("li[data-job][data-status=completed], li[data-job][data-status=error]", timeout=120_000)
    job = page.locator("li[data-job]").first
    assert job.get_attribute("data-status") == "completed", job.inner_text()
    row = page.locator("tr[data-model]")
    row.wait_for()
    assert "tiny-sd1" in row.inner_text() and "sd-1" in row.inner_text()
    console.shot("models")


def test_a_text_to_image_run_from_the_form_shows_live_progress_and_lands_in_the_gallery(
    console: Console, tiny_sd1: Path
) -> None:
    _install_model(console, tiny_sd1)
    before = _image_names(console)
    page = console.page
    _fill_run_form(console, steps=12)
    page.evaluate(WATCH_PROGRESS)
    page.click("form.run-form button[type=submit]")
    item = page.locator("li[data-run-item]")
    item.wait_for()
    page.wait_for_selector("li[data-run-item][data-status=completed]", timeout=120_000)
    seen = page.evaluate("() => window.__seen")
    assert seen["progress"] > 0 and seen["preview"] is True, seen
    new = [n for n in _image_names(console) if n not in before]
    assert len(new) == 1
    console.open("gallery")
    page.locator(f"figure[data-image='{new[0]}'] button.thumb").click()
    page.wait_for_function("() => document.querySelector('pre.json').textContent.includes('\"seed\": 7')")
    page.click("[role=tab]:has-text('graph')")
    page.wait_for_function(
        "() => document.querySelector('pre.json[data-tab=graph]')?.textContent.includes('denoise_latents')")
    console.shot("viewer")
    page.keyboard.press("Escape")
    console.shot("gallery")


def test_cancel_in_the_queue_view_stops_a_run(console: Console, tiny_sd1: Path) -> None:
    _install_model(console, tiny_sd1)
    before = _image_names(console)
    page = console.page
    _fill_run_form(console, steps=1000)
    console.shot("run")
    page.click("form.run-form button[type=submit]")
    page.wait_for_selector("li[data-run-item]")
    item_id = page.locator("li[data-run-item]").get_attribute("data-run-item")
    console.open("queue")
    row = page.locator(f"tr[data-item='{item_id}']")
    # Running, and inside the denoise loop: the row shows the node with a progress value.
    running = f"tr[data-item='{item_id}'][data-status=in_progress] td.now progress[value]"
    page.wait_for_selector(running, timeout=120_000)
    console.shot("queue")
    row.locator("button:has-text('Cancel')").click()
    page.wait_for_selector(f"tr[data-item='{item_id}'][data-status=canceled]", timeout=60_000)
    with console.api() as api:
        item = api.get(f"/api/v1/queue/default/i/{item_id}").json()
        assert item["status"] == "canceled"
    # Stopped inside the 1,000 steps: the decode never ran, so no image was saved.
    assert _image_names(console) == before


def test_a_failed_item_shows_its_node_and_message_and_the_processor_pauses(console: Console) -> None:
    graph = {"nodes": {"loader": {"type": "main_model_loader", "model": {"key": "no-such-model"}}}, "edges": []}
    with console.api() as api:
        answer = api.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": graph}})
        assert answer.status_code == 201, answer.text
        item_id = answer.json()["item_ids"][0]
    page = console.page
    console.open("queue")
    row = page.locator(f"tr[data-item='{item_id}'][data-status=failed]")
    row.wait_for(timeout=60_000)
    row.locator("td button.link").first.click()
    failure = page.locator("[role=dialog] .failure")
    failure.wait_for()
    text = failure.inner_text()
    assert "loader" in text and "no-such-model" in text
    console.shot("queue-error")
    page.keyboard.press("Escape")
    page.click("button:has-text('Pause')")
    page.wait_for_selector("text=processor: paused")
    with console.api() as api:
        assert api.get("/api/v1/queue/default/status").json()["processor"]["is_started"] is False
    page.click("button:has-text('Resume')")
    page.wait_for_selector("button:has-text('Pause')")
    page.click("button:has-text('Prune')")
    page.wait_for_selector(f"tr[data-item='{item_id}']", state="detached")


def _follow_the_run(console: Console) -> int:
    """The queue view the console switched to after enqueuing, on the run's first item; that item's id."""
    page = console.page
    page.wait_for_url(re.compile(r".*#/queue/\d+$"))
    item_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector(f"tr.followed[data-item='{item_id}']")
    return item_id


def _finished_item(console: Console, item_id: int) -> dict[str, Any]:
    with console.api() as api:
        wait_for(lambda: api.get(f"/api/v1/queue/default/i/{item_id}").json()["status"] in ("completed", "failed"),
                 timeout=60, what=f"queue item {item_id}")
        item: dict[str, Any] = api.get(f"/api/v1/queue/default/i/{item_id}").json()
    assert item["status"] == "completed", item
    return item


LIBRARY_WORKFLOW = {
    "name": "Resize a blank",
    "description": "A blank canvas, resized",
    "nodes": [
        {"id": "blank", "type": "invocation", "data": {
            "id": "blank", "type": "blank_image", "label": "Canvas", "inputs": {
                "width": {"name": "width", "label": "Canvas width", "description": "How wide the blank image is",
                          "value": 32}}}},
        {"id": "resize", "type": "invocation", "data": {"id": "resize", "type": "img_resize", "inputs": {
            "resample_mode": {"name": "resample_mode", "value": "bicubic"}}}},
    ],
    "edges": [],
    "exposedFields": [{"nodeId": "blank", "fieldName": "width"}, {"nodeId": "resize", "fieldName": "resample_mode"}],
}


def test_a_workflow_from_the_library_runs_with_an_exposed_field_changed(console: Console) -> None:
    graph = {
        "nodes": {"blank": {"type": "blank_image", "width": 32, "height": 32},
                  "resize": {"type": "img_resize", "width": 16, "height": 16, "resample_mode": "bicubic"}},
        "edges": [{"source": {"node_id": "blank", "field": "image"},
                   "destination": {"node_id": "resize", "field": "image"}}],
    }
    with console.api() as api:
        saved = api.post("/api/v1/workflows/", json={"name": "Resize a blank", "graph": graph,
                                                      "workflow": LIBRARY_WORKFLOW})
        assert saved.status_code == 200, saved.text
        workflow_id = saved.json()["workflow_id"]
    page = console.page
    console.open("run")
    page.wait_for_selector(f"select[name=workflow] option[value='{workflow_id}']", state="attached")
    page.select_option("select[name=workflow]", workflow_id)
    width = page.locator("[data-field='blank.width'][data-kind=number]")
    width.wait_for()
    # Labelled from the workflow's node data, typed from the node's schema: a number with its bounds, an enum.
    assert "Canvas: Canvas width" in width.inner_text() and "How wide the blank image is" in width.inner_text()
    assert width.locator("input").get_attribute("min") == "1"
    mode = page.locator("[data-field='resize.resample_mode'][data-kind=enum] select")
    assert "lanczos" in mode.inner_text()
    # A value the node refuses comes back as the server's 422, shown on its field.
    width.locator("input").fill("")
    page.click("form.run-workflow button[type=submit]")
    error = page.locator("[data-field='blank.width'] .field-error")
    error.wait_for()
    assert "integer" in error.inner_text()
    width.locator("input").fill("48")
    mode.select_option(label="lanczos")
    console.shot("run-workflow")
    page.click("form.run-workflow button[type=submit]")
    item = _finished_item(console, _follow_the_run(console))
    nodes = item["session"]["graph"]["nodes"]
    assert (nodes["blank"]["width"], nodes["resize"]["resample_mode"]) == (48, "lanczos")
    assert (nodes["blank"]["height"], nodes["resize"]["width"]) == (32, 16)  # what was not exposed is as saved


def _png_with_workflow(path: Path, workflow: dict[str, Any]) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    # InvokeAI writes its workflow as a text chunk; a compressed iTXt is the hardest of the three kinds to read.
    info.add_itxt("invokeai_workflow", json.dumps(workflow), zip=True)
    Image.new("RGB", (8, 8), (10, 90, 200)).save(path, format="PNG", pnginfo=info)


def test_a_workflow_from_an_uploaded_png_runs_with_its_exposed_field(console: Console, tmp_path: Path) -> None:
    workflow = {
        "name": "Sized blank from a PNG",
        "nodes": [
            {"id": "size", "type": "invocation", "data": {"id": "size", "type": "integer", "label": "Size", "inputs": {
                "value": {"name": "value", "label": "Width in px", "value": 24}}}},
            {"id": "blank", "type": "invocation", "data": {
                "id": "blank", "type": "blank_image", "isIntermediate": False,
                "inputs": {"width": {"name": "width", "value": 512}, "height": {"name": "height", "value": 20}}}},
            {"id": "note", "type": "notes", "data": {"notes": "not a node of the graph"}},
        ],
        "edges": [{"id": "e1", "type": "default", "source": "size", "sourceHandle": "value", "target": "blank",
                   "targetHandle": "width"}],
        "exposedFields": [{"nodeId": "size", "fieldName": "value"}],
    }
    png = tmp_path / "made-by-invokeai.png"
    _png_with_workflow(png, workflow)
    before = set(_image_names(console))
    page = console.page
    console.open("run")
    page.set_input_files("input[name=workflow-file]", str(png))
    size = page.locator("[data-field='size.value'][data-kind=number] input")
    size.wait_for()
    assert size.input_value() == "24"
    size.fill("40")
    page.click("form.run-workflow button[type=submit]")
    item = _finished_item(console, _follow_the_run(console))
    graph = item["session"]["graph"]
    assert graph["nodes"]["size"]["value"] == 40 and graph["nodes"]["blank"]["height"] == 20
    assert "width" not in graph["nodes"]["blank"] and "note" not in graph["nodes"]  # connected; not an invocation
    assert [(e["source"], e["destination"]) for e in graph["edges"]] == [
        ({"node_id": "size", "field": "value"}, {"node_id": "blank", "field": "width"})]
    new = [n for n in _image_names(console) if n not in before]
    assert len(new) == 1
    with console.api() as api:
        assert api.get(f"/api/v1/images/i/{new[0]}").json()["width"] == 40
        # The workflow went with the batch, and the image keeps it; it was not saved to the library.
        embedded = api.get(f"/api/v1/images/i/{new[0]}/workflow").json()
        assert json.loads(embedded["workflow"]) == workflow
        names = [w["name"] for w in api.get("/api/v1/workflows/").json()["items"]]
        assert "Sized blank from a PNG" not in names


def test_a_new_image_goes_in_at_the_top_of_the_gallery_without_a_reload(console: Console) -> None:
    with console.api() as api:
        total = api.get("/api/v1/images", params={"limit": 1}).json()["total"]
        for i in range(max(0, 52 - total)):  # more than the first page of 48
            api.post("/api/v1/images/upload", params={"image_category": "user"},
                     files={"file": (f"fill-{i}.png", png_bytes(16, 16, (i * 4, 100, 100)), "image/png")})
        total = api.get("/api/v1/images", params={"limit": 1}).json()["total"]
    page = console.page
    console.open("gallery")
    page.wait_for_selector("[data-connected=true]")
    page.wait_for_function("() => document.querySelectorAll('figure[data-image]').length >= 48")
    page.evaluate("() => window.scrollTo(0, 200)")
    page.wait_for_function("() => window.scrollY > 0")
    scrolled = page.evaluate("() => window.scrollY")
    lists: list[str] = []
    page.on("request", lambda r: lists.append(r.url) if "/api/v1/images?" in r.url else None)
    with console.api() as api:
        answer = api.post("/api/v1/images/upload", params={"image_category": "user"},
                          files={"file": ("live.png", png_bytes(20, 20, (0, 200, 0)), "image/png")})
        name = answer.json()["image_name"]
    page.wait_for_selector(f".grid figure[data-image='{name}']:first-child")
    assert lists == []  # inserted from the event, not by loading the first page again
    assert page.evaluate("() => window.scrollY") >= scrolled  # the view did not jump back to the top
    # Paging on from there: the next page starts after what is shown, with no image twice.
    page.wait_for_function(
        "total => { window.scrollTo(0, document.body.scrollHeight); "
        "return document.querySelectorAll('figure[data-image]').length >= total }", arg=total + 1, polling=200)
    shown = page.eval_on_selector_all("figure[data-image]", "els => els.map(e => e.dataset.image)")
    assert len(shown) == len(set(shown)) == total + 1
