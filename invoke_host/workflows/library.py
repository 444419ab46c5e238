"""The workflow library service: saved workflows (in the storage backend's store) and packs' read-only ones.

Saved workflows are held to the host's limits (``max_workflows``, ``max_workflow_bytes``, ``max_workflow_tags``,
``max_workflow_page_size``); their graphs are stored with the version of every node that did not name one, so a
saved graph still runs after its pack migrates the node. Running one (:meth:`WorkflowLibrary.enqueue`) migrates its
nodes to the installed versions, writes the given values into them and enqueues it as a batch, which validates it.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from invoke_sdk.session_queue import EnqueueResult
from invoke_sdk.workflows import (
    PackWorkflow,
    WorkflowChanges,
    WorkflowOrder,
    WorkflowQuery,
    WorkflowRecord,
    WorkflowStore,
)
from pydantic import ValidationError

from invoke_host.config import HostConfig
from invoke_host.graph.migration import stamp_versions, upgrade_graph
from invoke_host.queue import Batch, BatchError, QueueService
from invoke_host.registry import FrozenRegistry
from invoke_host.workflows.errors import WorkflowError
from invoke_host.workflows.field_values import with_values
from invoke_host.workflows.views import (
    WorkflowEnqueueBody,
    WorkflowIn,
    WorkflowListItem,
    WorkflowListPage,
    WorkflowUpdate,
    WorkflowView,
)

__all__ = ["PACK_PREFIX", "WorkflowLibrary"]

PACK_PREFIX = "pack:"
"""The id of a pack's workflow in the library is this prefix and the id the pack registered it under."""

_MAX_TAG_LENGTH = 100


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _record_view(record: WorkflowRecord) -> WorkflowView:
    return WorkflowView(
        workflow_id=record.workflow_id, name=record.name, description=record.description, tags=record.tags,
        category="user", read_only=False, created_at=record.created_at, updated_at=record.updated_at,
        graph=json.loads(record.graph_json),
        workflow=json.loads(record.workflow_json) if record.workflow_json is not None else None,
    )


class WorkflowLibrary:
    """Save, list, read, change, delete and run workflows. ``store`` None: only packs' workflows, read-only."""

    def __init__(
        self, store: WorkflowStore | None, registry: FrozenRegistry, config: HostConfig, queue: QueueService | None,
        *, no_store_reason: str = "the storage backend keeps no workflow library",
    ) -> None:
        self._store = store
        self._registry = registry
        self._config = config
        self._queue = queue
        self._no_store_reason = no_store_reason
        packs = {r.name: f"{r.distribution} {r.version}" if r.distribution else r.name for r in registry.plugins}
        entries = [
            self._pack_view(reg.value, packs.get(reg.plugin, reg.plugin))
            for reg in registry.kind("workflows").values()
        ]
        self._packs: dict[str, WorkflowView] = {
            v.workflow_id: v for v in sorted(entries, key=lambda v: (v.name.lower(), v.workflow_id))
        }

    def _pack_view(self, workflow: PackWorkflow, pack: str) -> WorkflowView:
        return WorkflowView(
            workflow_id=PACK_PREFIX + workflow.id, name=workflow.name, description=workflow.description,
            tags=list(workflow.tags), category="pack", read_only=True, pack=pack,
            graph=stamp_versions(self._registry, workflow.graph, keep_given=True),
            workflow=dict(workflow.workflow) if workflow.workflow is not None else None,
        )

    def _need_store(self) -> WorkflowStore:
        if self._store is None:
            raise WorkflowError(503, f"saved workflows are unavailable: {self._no_store_reason}")
        return self._store

    # -- checks ----------------------------------------------------------------------------------

    def _check_tags(self, tags: Sequence[str]) -> list[str]:
        most = self._config.max_workflow_tags
        if len(tags) > most:
            raise WorkflowError(422, f"the workflow has {len(tags)} tags, more than max_workflow_tags "
                                     f"(INVOKE_HOST_MAX_WORKFLOW_TAGS={most}) allows")
        for tag in tags:
            if not tag.strip() or len(tag) > _MAX_TAG_LENGTH:
                raise WorkflowError(422, f"tag {tag[:40]!r} must be 1 to {_MAX_TAG_LENGTH} characters, not blank")
        return list(dict.fromkeys(tags))  # once each, in the order given

    def _graph_json(self, graph: Mapping[str, Any]) -> str:
        nodes, edges = graph.get("nodes"), graph.get("edges", [])
        if not isinstance(nodes, Mapping) or not all(isinstance(n, Mapping) for n in nodes.values()):
            raise WorkflowError(422, "the workflow's graph needs 'nodes': an object mapping node ids to nodes")
        if not isinstance(edges, list):
            raise WorkflowError(422, "the workflow's graph 'edges' must be a list of edges")
        return _dumps(stamp_versions(self._registry, graph, keep_given=True))

    def _check_size(self, graph_json: str, workflow_json: str | None) -> None:
        size = len(graph_json.encode()) + (len(workflow_json.encode()) if workflow_json is not None else 0)
        most = self._config.max_workflow_bytes
        if size > most:
            raise WorkflowError(413, f"the workflow's graph and workflow JSON take {size} bytes, more than "
                                     f"max_workflow_bytes (INVOKE_HOST_MAX_WORKFLOW_BYTES={most}) allows")

    # -- saved workflows -------------------------------------------------------------------------

    async def create(self, body: WorkflowIn) -> WorkflowView:
        store = self._need_store()
        tags = self._check_tags(body.tags)
        graph_json = self._graph_json(body.graph)
        workflow_json = _dumps(body.workflow) if body.workflow is not None else None
        self._check_size(graph_json, workflow_json)
        most = self._config.max_workflows
        if await store.count() >= most:
            raise WorkflowError(409, f"the library holds {most} workflows, the most max_workflows "
                                     f"(INVOKE_HOST_MAX_WORKFLOWS={most}) allows; delete some first")
        record = await store.create(
            uuid.uuid4().hex, name=body.name, description=body.description, tags=tags, graph_json=graph_json,
            workflow_json=workflow_json,
        )
        return _record_view(record)

    async def get(self, workflow_id: str) -> WorkflowView:
        if workflow_id.startswith(PACK_PREFIX):
            found = self._packs.get(workflow_id)
            if found is None:
                raise WorkflowError(404, f"no pack ships a workflow {workflow_id!r}")
            return found
        record = await self._need_store().get(workflow_id)
        if record is None:
            raise WorkflowError(404, f"there is no workflow {workflow_id!r}")
        return _record_view(record)

    def _refuse_pack(self, workflow_id: str, what: str) -> None:
        if workflow_id.startswith(PACK_PREFIX):
            if workflow_id not in self._packs:
                raise WorkflowError(404, f"no pack ships a workflow {workflow_id!r}")
            raise WorkflowError(409, f"workflow {workflow_id!r} ships with {self._packs[workflow_id].pack} and is "
                                     f"read-only: it cannot be {what}; save a copy with POST /api/v1/workflows/")

    async def update(self, workflow_id: str, body: WorkflowUpdate) -> WorkflowView:
        self._refuse_pack(workflow_id, "changed")
        store = self._need_store()
        given = body.model_fields_set
        for required in ("name", "graph"):
            if required in given and getattr(body, required) is None:
                raise WorkflowError(422, f"a workflow's {required} cannot be removed (leave it out to keep it)")
        changes: dict[str, Any] = {}
        if "name" in given:
            changes["name"] = body.name
        if "description" in given:
            changes["description"] = body.description or ""
        if "tags" in given:
            changes["tags"] = self._check_tags(body.tags or [])
        if "graph" in given and body.graph is not None:
            changes["graph_json"] = self._graph_json(body.graph)
        if "workflow" in given:
            changes["workflow_json"] = _dumps(body.workflow) if body.workflow is not None else None
        if "graph_json" in changes or "workflow_json" in changes:
            current = await store.get(workflow_id)
            if current is None:
                raise WorkflowError(404, f"there is no workflow {workflow_id!r}")
            self._check_size(changes.get("graph_json", current.graph_json),
                             changes["workflow_json"] if "workflow_json" in changes else current.workflow_json)
        record = await store.update(workflow_id, WorkflowChanges(**changes))
        if record is None:
            raise WorkflowError(404, f"there is no workflow {workflow_id!r}")
        return _record_view(record)

    async def delete(self, workflow_id: str) -> None:
        self._refuse_pack(workflow_id, "deleted")
        if not await self._need_store().delete(workflow_id):
            raise WorkflowError(404, f"there is no workflow {workflow_id!r}")

    async def list(
        self, *, page: int, per_page: int | None, query: str | None, tags: Sequence[str],
        category: Literal["user", "pack"] | None, order_by: WorkflowOrder, direction: Literal["ASC", "DESC"],
    ) -> WorkflowListPage:
        most = self._config.max_workflow_page_size
        per_page = min(100, most) if per_page is None else per_page
        if per_page > most:
            raise WorkflowError(422, f"per_page {per_page} is over max_workflow_page_size "
                                     f"(INVOKE_HOST_MAX_WORKFLOW_PAGE_SIZE={most})")
        offset = page * per_page
        wanted = set(tags)
        needle = (query or "").lower()
        packs = [
            WorkflowListItem(**v.model_dump(exclude={"graph", "workflow"})) for v in self._packs.values()
            if category != "user"
            and (not needle or needle in v.name.lower() or needle in v.description.lower())
            and (not wanted or wanted & set(v.tags))
        ]
        items: list[WorkflowListItem] = []
        saved_total = 0
        if category != "pack" and self._store is not None:
            found = await self._store.list(
                WorkflowQuery(query=query or None, tags=list(tags), order_by=order_by, direction=direction),
                offset=offset, limit=per_page,
            )
            saved_total = found.total
            items = [
                WorkflowListItem(**s.model_dump(), category="user", read_only=False) for s in found.items
            ]
        elif category == "user":
            self._need_store()
        # Saved workflows first, then the packs': a page past the saved ones continues into the packs' list.
        start = max(0, offset - saved_total)
        items += packs[start:start + per_page - len(items)]
        total = saved_total + len(packs)
        return WorkflowListPage(page=page, pages=math.ceil(total / per_page), per_page=per_page, total=total,
                                items=items)

    # -- running ---------------------------------------------------------------------------------

    async def enqueue(self, workflow_id: str, body: WorkflowEnqueueBody) -> EnqueueResult:
        if self._queue is None:
            raise WorkflowError(503, "the session queue is unavailable on this server (no storage backend)")
        entry = await self.get(workflow_id)
        graph, errors = upgrade_graph(self._registry, entry.graph)
        if errors:
            raise WorkflowError(422, f"workflow {workflow_id!r} cannot run on the installed packs: {errors[0]}",
                                [e.to_dict() for e in errors])
        if body.values:
            graph = with_values(graph, body.values, workflow_id)
        try:
            batch = Batch.model_validate({
                "graph": graph, "data": body.data, "runs": body.runs, "origin": body.origin,
                "destination": body.destination,
            })
        except ValidationError as exc:
            problems = [{"loc": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]}
                        for e in exc.errors(include_url=False)[:20]]
            raise WorkflowError(422, f"the run of workflow {workflow_id!r} is invalid: {problems[0]['message']}",
                                problems) from None
        try:
            return await self._queue.enqueue_batch(body.queue_id, batch, prepend=body.prepend)
        except BatchError as exc:
            raise WorkflowError(exc.status_code, f"workflow {workflow_id!r}: {exc.message}", exc.errors) from None
