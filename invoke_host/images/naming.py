"""The one place image names come from."""

from __future__ import annotations

import uuid

__all__ = ["ImageNamer"]


# The namespace of node image names (uuid5): any fixed uuid would do; this one is ours.
_NODE_IMAGES = uuid.UUID("6f1c2a8e-3b4d-5e6f-8a9b-0c1d2e3f4a5b")


class ImageNamer:
    """Makes image names: a uuid and ``.png`` (InvokeAI's form), never taken from user input as given."""

    def new_name(self) -> str:
        """A fresh, unique image name."""
        return f"{uuid.uuid4()}.png"

    def node_image_name(self, session_id: str, node_id: str, n: int) -> str:
        """The name of the ``n``-th image (0, 1, ...) that prepared node ``node_id`` of session ``session_id``
        saves: the same on every run of that node, so a retried item's re-run node reuses its first run's
        record instead of adding a second one (see ``invoke_host.queue.session_progress``)."""
        return f"{uuid.uuid5(_NODE_IMAGES, f'{session_id}/{node_id}/{n}')}.png"
