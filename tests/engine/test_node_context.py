"""The InvocationContext the engine passes to nodes: stores, unavailable services, config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from invoke_sdk import InvocationContext

from invoke_host.engine import HostInvocationContext, ServiceUnavailableError
from invoke_host.engine.object_store import DiskObjectStore, ObjectNotFoundError


def _pickle_store(folder: Path) -> DiskObjectStore:
    import pickle

    return DiskObjectStore(folder, "thing", save=lambda o, f: pickle.dump(o, f), load=pickle.load, memory_items=1)


def test_object_store_survives_a_memory_miss(tmp_path: Path) -> None:
    store = _pickle_store(tmp_path)
    first, second = store.save({"a": 1}), store.save([2])
    assert store.load(first) == {"a": 1}  # evicted from memory (1 item), read back from disk
    assert _pickle_store(tmp_path).load(second) == [2]


def test_object_store_refuses_bad_names_and_keeps_no_partial_files(tmp_path: Path) -> None:
    store = _pickle_store(tmp_path)
    with pytest.raises(ObjectNotFoundError, match="not a thing name"):
        store.load("../../etc/passwd")
    with pytest.raises(ObjectNotFoundError, match="no thing named"):
        store.load("thing_" + "0" * 32)
    with pytest.raises((TypeError, AttributeError)):
        store.save(lambda: None)  # not picklable
    assert list(tmp_path.iterdir()) == []


def test_tensor_store_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from invoke_host.engine.object_store import tensor_store

    name = tensor_store(tmp_path).save(torch.arange(4))
    assert torch.equal(tensor_store(tmp_path).load(name), torch.arange(4))
    assert (tmp_path / "tensors" / name).is_file()


def test_context_implements_the_protocol_and_says_what_is_missing(host: Any) -> None:
    import threading

    from invoke_host.engine import NodeUtil

    services = host.node_services
    assert host.node_services is services
    context = HostInvocationContext(images=services.images, tensors=services.tensors,
                                    conditioning=services.conditioning, models=services.models,
                                    util=NodeUtil(threading.Event(), lambda *a: None),
                                    logger=__import__("logging").getLogger("t"), config=services.config)
    assert isinstance(context, InvocationContext)
    with pytest.raises(ServiceUnavailableError, match="image store is not available"):
        context.images.get_pil("x.png")
    with pytest.raises(ServiceUnavailableError, match="model manager is not available"):
        context.models.exists("k")
    assert context.config["root"] == str(host.config.root)
    assert "token" not in context.config
    with pytest.raises(ValueError, match="between 0 and 1"):
        context.util.signal_progress("x", 2.0)
