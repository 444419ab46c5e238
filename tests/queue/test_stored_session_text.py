"""A queue item's session stays the JSON text its store holds until something reads it (issue #11): a claim of a
graph this host still holds never decodes it, and the item's ``GET`` splices the text into its answer. Whatever
reads, dumps, compares or copies an item sees the same session as an item built from a dict."""

from __future__ import annotations

import copy
import json
import math
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from invoke_sdk.session_queue import QueueItem
from litestar.testing import TestClient

import invoke_host.queue.processor as processor_module
from invoke_host.engine import SessionRunner
from invoke_host.queue.item_view import QueueItemResults, QueueItemView, item_view_json, stream_item_with_session
from tests.queue.conftest import graph, make_app
from tests.waiting import wait_until

Q = "/api/v1/queue/default"
NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
FIELDS: dict[str, Any] = {"item_id": 7, "queue_id": "q", "batch_id": "b", "session_id": "s", "status": "completed",
                          "priority": 0, "created_at": NOW, "updated_at": NOW}
SESSION = {"id": "s", "batch_id": "b", "graph": {"nodes": {"n": {"type": "add", "a": 1, "s": "caf\u00e9"}}},
           "workflow": '{"name":"w"}'}


def _stored(session: Any = SESSION, text: str | None = None) -> QueueItem:
    return QueueItem.from_stored(text if text is not None else json.dumps(session), **FIELDS)


def test_a_stored_items_session_is_decoded_when_first_read_and_then_kept() -> None:
    text = json.dumps(SESSION)
    item = _stored(text=text)
    assert not item.session_decoded and item.session_json is text
    assert item.session == SESSION and item.session_decoded
    assert item.session is item.session
    built = QueueItem(**FIELDS, session=SESSION)
    assert built.session_decoded and json.loads(built.session_json) == SESSION


@pytest.mark.parametrize("use", [
    lambda i: i.model_dump(), lambda i: i.model_dump(mode="json"), lambda i: json.loads(i.model_dump_json()),
    lambda i: dict(i)["session"], repr, lambda i: i.model_copy().session, lambda i: i.model_copy(deep=True).session,
    lambda i: copy.copy(i).session, lambda i: pickle.loads(pickle.dumps(i)).session,
])
def test_every_way_of_reading_a_stored_item_sees_the_session_an_item_built_from_it_has(use: Any) -> None:
    assert use(_stored()) == use(QueueItem(**FIELDS, session=SESSION))


def test_stored_items_compare_by_their_sessions() -> None:
    assert _stored() == QueueItem(**FIELDS, session=SESSION) == _stored()
    assert _stored() != _stored({**SESSION, "id": "other"})
    with pytest.raises(AttributeError):
        _stored().no_such_field  # noqa: B018 - the attribute lookup is what is tested


def _view(item: QueueItem) -> QueueItemView:
    view = QueueItemView.model_construct(**{k: v for k, v in item.__dict__.items() if k != "session"},
                                         results=QueueItemResults(count=0, by_node={}), errors=[])
    view.take_session_of(item)
    return view


@pytest.mark.parametrize("text", [
    json.dumps(SESSION), json.dumps(SESSION, ensure_ascii=False, indent=2),
    json.dumps({**SESSION, "x": math.nan, "y": [math.inf, -math.inf]}),  # json.dumps writes NaN: not JSON
    json.dumps({**SESSION, "note": "NaN and Infinity, in a string"}), "{}", " { } ",
])
def test_the_item_view_splices_the_stored_text_and_reads_as_the_models_json(text: str) -> None:
    view = _view(_stored(text=text))
    answer = item_view_json(view)
    assert not view.session_decoded or "NaN" in text or "Infinity" in text  # spliced, not decoded, unless needed
    # json.loads would take NaN; the answer must be JSON a strict parser reads.
    strict = json.loads(answer, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    assert strict == json.loads(_view(_stored(text=text)).model_dump_json())


async def _streamed(view: QueueItemView) -> bytes:
    class NoRows:
        async def list_results(self, *args: Any, **kwargs: Any) -> list[Any]:
            return []

    return b"".join([part async for part in stream_item_with_session(NoRows(), view)])  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [json.dumps(SESSION), "{}", ' {"a": NaN} '])
def test_the_whole_session_streamed_starts_from_the_stored_text(text: str) -> None:
    import asyncio

    answer = json.loads(asyncio.run(_streamed(_view(_stored(text=text)))),
                        parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    expected = json.loads(text.replace("NaN", "null"))
    assert {k: answer["session"][k] for k in expected} == expected
    assert answer["session"]["executed_history"] == [] and answer["session"]["results"] == {}


@pytest.mark.parametrize("held", [True, False])
def test_a_claim_decodes_the_stored_session_only_when_the_host_does_not_hold_its_graph(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: bool) -> None:
    claimed: list[QueueItem] = []
    workflows: list[str | None] = []
    run_item, run = processor_module.SessionProcessor._run_item, SessionRunner.run

    async def recorded_item(self: Any, item: QueueItem) -> None:
        claimed.append(item)
        await run_item(self, item)

    def recorded_run(self: Any, state: Any, cancel: Any = None, *, workflow: str | None = None) -> Any:
        workflows.append(workflow)
        return run(self, state, cancel, workflow=workflow)

    monkeypatch.setattr(processor_module.SessionProcessor, "_run_item", recorded_item)
    monkeypatch.setattr(SessionRunner, "run", recorded_run)
    config: dict[str, Any] = {"processor_enabled": True, **({} if held else {"max_held_graph_nodes": 0})}
    with TestClient(make_app(tmp_path, **config)) as client:
        r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph(a=3, b=4),
                                                              "workflow": {"name": "w\u00e9"}}})
        assert r.status_code == 201, r.text
        [item_id] = r.json()["item_ids"]
        wait_until(lambda: client.get(f"{Q}/i/{item_id}").json()["status"] == "completed", "the item completes")
        answer = client.get(f"{Q}/i/{item_id}").json()
    [item] = claimed
    assert item.session_decoded is not held
    # Either way the run gets the workflow the session stores, and the answer holds the session as stored.
    assert [json.loads(w) if w is not None else None for w in workflows] == [{"name": "w\u00e9"}]
    assert answer["session"] == json.loads(item.session_json)
    assert answer["session"]["graph"]["nodes"]["add"]["b"] == 4
