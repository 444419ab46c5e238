"""The config lookup ``context.models`` uses in a host: the async model record store, read from a node.

Nodes run in a worker thread; the record store (aiosqlite) belongs to the event loop the host's services were
started on. The lookup hands each read to that loop through the :class:`~invoke_host.loop_bridge.LoopBridge`
and waits for it, so a node sees exactly what the API sees, with no copy of the records to keep in step.
"""

from __future__ import annotations

from invoke_sdk.models import BaseModelType, ModelConfigBase, ModelType
from invoke_sdk.models.records import ModelRecordStore

from invoke_host.loop_bridge import LoopBridge
from invoke_host.models.record_paths import ModelPaths

__all__ = ["RecordStoreLookup"]


class RecordStoreLookup:
    """``key -> config`` over a model record store, callable from any thread but the loop's own.

    The config comes back with ``path`` made absolute by ``paths`` (records keep paths inside the models
    directory relative to it), so loaders can open it as it is. Unknown keys raise the store's
    ``UnknownModelKeyError``, a ``KeyError``.
    """

    def __init__(self, records: ModelRecordStore, paths: ModelPaths, bridge: LoopBridge) -> None:
        self._records = records
        self._paths = paths
        self._bridge = bridge

    def __call__(self, key: str) -> ModelConfigBase:
        config = self._bridge.call(self._records.get(key), what="a model lookup (context.models)")
        return config.model_copy(update={"path": str(self._paths.absolute(config.path))})

    def search(self, *, name: str | None = None, base: str | None = None,
               type: str | None = None) -> list[ModelConfigBase]:  # noqa: A002 - the record store's name
        """The records matching every given filter, paths made absolute as in ``__call__``."""
        filters = {
            "name": name,
            "base": BaseModelType(base) if base is not None else None,
            "type": ModelType(type) if type is not None else None,
        }
        configs = self._bridge.call(self._records.search(**filters), what="a model search (context.models)")
        return [c.model_copy(update={"path": str(self._paths.absolute(c.path))}) for c in configs]
