"""Replaying an image: its embedded graph and workflow enqueued again, with what differs now said first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from invoke_sdk.images import RUN_MANIFEST_KEY, EmbeddedImageData
from invoke_sdk.session_queue import EnqueueResult
from pydantic import BaseModel, Field, ValidationError

from invoke_host.images.run_manifest import ReplayDifference, RunManifest, RunManifestBuilder, manifest_differences

__all__ = ["NothingToReplayError", "ReplayPlan", "ReplayResult", "plan_replay"]


class NothingToReplayError(ValueError):
    """The image embeds no graph that could run (an upload without one, or one that is not a graph)."""


class ReplayResult(BaseModel):
    """What replaying an image found, and what it enqueued."""

    image_name: str
    dry_run: bool = Field(description="True: nothing was enqueued, only the differences were checked")
    differences: list[ReplayDifference] = Field(
        description="How this server differs from the one that made the image: packs missing or at another "
        "version, node types no pack registers, models missing or whose files changed. Empty: it runs as it did"
    )
    has_manifest: bool = Field(
        description="Whether the image records its run manifest; without one (an image from another server) only "
        "what its graph names can be checked"
    )
    enqueued: EnqueueResult | None = Field(default=None, description="The batch enqueued; null on a dry run")


@dataclass(frozen=True)
class ReplayPlan:
    """An image's graph and workflow, ready to enqueue, and the differences found."""

    graph: dict[str, Any]
    workflow: str | None
    manifest: RunManifest | None
    differences: list[ReplayDifference]


def _recorded_manifest(metadata: str | None) -> RunManifest | None:
    if metadata is None:
        return None
    try:
        data = json.loads(metadata)
        raw = data.get(RUN_MANIFEST_KEY) if isinstance(data, dict) else None
        return RunManifest.model_validate(raw) if raw is not None else None
    except (ValueError, ValidationError):
        return None  # metadata a person wrote by hand: checked as if it had no manifest


async def plan_replay(image_name: str, embedded: EmbeddedImageData, builder: RunManifestBuilder) -> ReplayPlan:
    """The graph to enqueue and the differences; :class:`NothingToReplayError` when the image has no graph."""
    if embedded.graph is None:
        raise NothingToReplayError(
            f"image {image_name!r} embeds no graph (an upload made elsewhere, or saved without one): there is "
            "nothing to replay"
        )
    graph = json.loads(embedded.graph)  # checked to be JSON when it was saved
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), dict):
        raise NothingToReplayError(f"the graph embedded in image {image_name!r} is not a graph (no 'nodes' object)")
    manifest = _recorded_manifest(embedded.metadata)
    differences = await manifest_differences(builder, graph, manifest)
    return ReplayPlan(graph=graph, workflow=embedded.workflow, manifest=manifest, differences=differences)
