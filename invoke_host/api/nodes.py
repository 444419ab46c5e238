"""``/api/v1/nodes``: one template per registered node type."""

from __future__ import annotations

from litestar import Request, get

from invoke_host.node_templates import NodeTemplate, node_templates

__all__ = ["list_nodes"]


@get("/nodes", tags=["nodes"], summary="Templates of every registered node type", sync_to_thread=False)
def list_nodes(request: Request) -> list[NodeTemplate]:  # type: ignore[type-arg]
    state = request.app.state
    if state.get("node_templates") is None:
        # Built on first request and kept: the registry is frozen, so templates never change.
        state.node_templates = node_templates(state.host.registry)
    templates: list[NodeTemplate] = state.node_templates
    return templates
