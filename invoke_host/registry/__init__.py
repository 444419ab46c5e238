"""Steps 2 and 3 of start-up: collect what plugins register, then freeze it once.

- :mod:`~invoke_host.registry.collection`: the hook-calling loop and the conflicts between plugins;
- :mod:`~invoke_host.registry.checks`: what each contribution must be on its own;
- :mod:`~invoke_host.registry.kinds`: the non-node kinds of contribution, their hooks, keys and checks;
- :mod:`~invoke_host.registry.freeze`: the :class:`FrozenRegistry` and its adapters.

Everything that validates graphs or builds the API reads the :class:`FrozenRegistry`. Its JSON schemas for
the OpenAPI document are built next to that document (:mod:`invoke_host.openapi_components`).
"""

from invoke_host.registry.checks import check_invocation_class, invocation_output_class
from invoke_host.registry.collection import collect
from invoke_host.registry.errors import RegistrationError
from invoke_host.registry.freeze import FrozenRegistry, Registered
from invoke_host.registry.host_events import HOST_EVENTS
from invoke_host.registry.kinds import KINDS, Kind

__all__ = [
    "HOST_EVENTS",
    "KINDS",
    "FrozenRegistry",
    "Kind",
    "Registered",
    "RegistrationError",
    "check_invocation_class",
    "collect",
    "invocation_output_class",
]
