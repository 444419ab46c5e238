"""The API's version prefixes: every core path starts with one of these.

A module of its own so a handler can build its own URLs (an image's ``image_url``) without importing the routers
that hold it.
"""

from __future__ import annotations

__all__ = ["API_V1", "API_V2"]

API_V1 = "/api/v1"
"""The prefix of the first API: the app, plugins, nodes, graphs, queue and images."""

API_V2 = "/api/v2"
"""The prefix of the second API: models (InvokeAI's model manager lives under ``/api/v2`` too)."""
