"""How a core handler asks for one of the host's services: a parameter ``queue: Injected[QueueService]``.

The parameter's name picks the provider (``invoke_host.api.dependencies.host_dependencies`` lists them). The value
is the host's own object, so Litestar is told not to validate it on every request.

A service the host lacks (no storage backend, say) is given as :class:`Unavailable`, which answers 503 with why as
soon as the handler uses it. A provider cannot raise that 503 itself: Litestar resolves dependencies before it
validates a request's parameters, and a bad parameter answers 400 before a missing service, as it always did. A
handler that checks the request itself before it first uses the service calls :func:`ensure_available` first, so
a missing service still answers before those checks, as it did when handlers looked services up on their first
line.
"""

from collections.abc import Callable
from typing import NoReturn, TypeAlias, TypeVar

from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import SkipValidation

__all__ = ["Injected", "Unavailable", "ensure_available"]

T = TypeVar("T")

Injected: TypeAlias = NamedDependency[SkipValidation[T]]
"""A handler parameter given by name from the host's services, passed through as it is."""


class Unavailable:
    """Given in place of a service the host lacks: reading any attribute of it raises ``error()`` (a 503)."""

    __slots__ = ("error",)

    def __init__(self, error: Callable[[], HTTPException]) -> None:
        self.error = error

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # copy, pickle and friends probe for these: they are simply absent
            raise AttributeError(name)
        raise self.error()


def ensure_available(service: object) -> None:
    """Raise the 503 of ``service`` now if it is :class:`Unavailable`; do nothing for a real service."""
    if isinstance(service, Unavailable):
        raise service.error()
