"""The one place image names come from."""

from __future__ import annotations

import uuid

__all__ = ["ImageNamer"]


class ImageNamer:
    """Makes image names: a random uuid and ``.png`` (InvokeAI's form), never derived from user input."""

    def new_name(self) -> str:
        """A fresh, unique image name."""
        return f"{uuid.uuid4()}.png"
