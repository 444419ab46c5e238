"""The workflow library: saved graphs (and packs' read-only ones) listed, changed and run by id."""

from invoke_host.workflows.errors import WorkflowError
from invoke_host.workflows.library import WorkflowLibrary
from invoke_host.workflows.views import (
    WorkflowEnqueueBody,
    WorkflowIn,
    WorkflowListItem,
    WorkflowListPage,
    WorkflowUpdate,
    WorkflowView,
)

__all__ = [
    "WorkflowEnqueueBody",
    "WorkflowError",
    "WorkflowIn",
    "WorkflowLibrary",
    "WorkflowListItem",
    "WorkflowListPage",
    "WorkflowUpdate",
    "WorkflowView",
]
