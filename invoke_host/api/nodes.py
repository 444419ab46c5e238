"""``/api/v1/nodes``: one template per registered node type."""

from litestar import get

from invoke_host.api.injected import Injected
from invoke_host.node_templates import NodeTemplate, NodeTemplateCatalog

__all__ = ["list_nodes"]


@get("/nodes", tags=["nodes"], summary="Templates of every registered node type", sync_to_thread=False)
def list_nodes(node_templates: Injected[NodeTemplateCatalog]) -> list[NodeTemplate]:
    return node_templates.templates
