"""Checks a contribution passes on its own before the registry takes it (conflicts are judged in collection).

Each check raises :class:`~invoke_host.registry.errors.RegistrationError` with a message that names the class
or object and says what is wrong with it.
"""

from __future__ import annotations

import typing
from typing import Any

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.events import BaseEvent, EventSink
from invoke_sdk.fields import field_extra
from invoke_sdk.images import FileStorageBackendFactory
from invoke_sdk.models import ModelConfigBase
from invoke_sdk.models.loading import ModelLoader
from invoke_sdk.models.probing import ModelProber
from invoke_sdk.storage import StorageBackendFactory
from pydantic import ValidationError

from invoke_host.registry.errors import RegistrationError
from invoke_host.registry.host_events import HOST_EVENTS
from invoke_host.registry.model_contributions import config_tag_of

__all__ = [
    "check_event",
    "check_event_sink",
    "check_file_storage_backend",
    "check_invocation_class",
    "check_model_config",
    "check_model_loader",
    "check_model_prober",
    "check_node_class",
    "check_output_class",
    "check_storage_backend",
    "class_name",
    "invocation_output_class",
]


def class_name(cls: Any) -> str:
    """``module.QualName`` of a class, for messages."""
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"


def invocation_output_class(cls: type[BaseInvocation]) -> type[BaseInvocationOutput]:
    """The output class named by a node's ``invoke`` return annotation, checked."""
    try:
        hints = typing.get_type_hints(cls.invoke)
    except Exception as exc:
        raise RegistrationError(
            f"the return annotation of {class_name(cls)}.invoke() cannot be resolved: {exc}"
        ) from exc
    out = hints.get("return")
    if not (isinstance(out, type) and issubclass(out, BaseInvocationOutput) and out.output_info() is not None):
        raise RegistrationError(
            f"{class_name(cls)}.invoke() must be annotated to return a class decorated with @invocation_output, "
            f"not {out!r}"
        )
    return out


def _check_model(cls: type[Any]) -> None:
    try:
        # Builds the deferred schema once; later unions and adapters reuse it.
        cls.model_rebuild()
    except Exception as exc:
        raise RegistrationError(f"{class_name(cls)} is not a valid pydantic model: {exc}") from exc
    defaults: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if field_extra(info).get("orig_required"):
            continue
        if info.default_factory is not None:
            defaults[name] = info.default_factory()  # type: ignore[call-arg]
        elif not info.is_required():
            defaults[name] = info.default
    try:
        cls.model_validate(defaults)
    except ValidationError as exc:
        # Required fields are absent on purpose; only the defaults that were given are judged.
        errors = [err for err in exc.errors() if err["type"] != "missing"]
        if errors:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            raise RegistrationError(f"{class_name(cls)} has a default that does not fit its field ({bad})") from exc


def check_node_class(cls: Any) -> type[BaseInvocationOutput]:
    """Refuse a class that cannot be a node; return its output class, which is yet to be checked.

    Many nodes share one output class: collection checks each output class once (:func:`check_output_class`).
    """
    if not (isinstance(cls, type) and issubclass(cls, BaseInvocation)):
        raise RegistrationError(f"{cls!r} is not a BaseInvocation subclass")
    if cls.invocation_info() is None:
        raise RegistrationError(f"{class_name(cls)} has no node type: decorate it with @invocation('<type id>')")
    if cls.invoke is BaseInvocation.invoke:
        raise RegistrationError(f"{class_name(cls)} does not implement invoke()")
    output = invocation_output_class(cls)
    _check_model(cls)
    return output


def check_output_class(cls: type[BaseInvocationOutput]) -> None:
    """Refuse an output class whose schema does not build or whose defaults do not fit their fields."""
    _check_model(cls)


def check_invocation_class(cls: Any) -> type[BaseInvocationOutput]:
    """Refuse a class that cannot be a node, or whose output class cannot be an output; return the output class."""
    output = check_node_class(cls)
    check_output_class(output)
    return output


def check_model_config(cls: Any) -> None:
    """Refuse anything but a ModelConfigBase subclass with ``type`` and ``format`` pinned by ``Literal``."""
    if not (isinstance(cls, type) and issubclass(cls, ModelConfigBase)):
        raise RegistrationError(f"{cls!r} is not a subclass of invoke_sdk.models.ModelConfigBase")
    try:
        config_tag_of(cls)
        # Not forced: a class built when it was defined is not built again (the union reuses its schema).
        cls.model_rebuild()
    except Exception as exc:
        raise RegistrationError(f"model config {cls.__module__}.{cls.__qualname__} is refused: {exc}") from exc


def check_model_prober(prober: Any) -> None:
    """Refuse a prober without a name, an integer order, or a probe method."""
    if not isinstance(prober, ModelProber) or not isinstance(getattr(prober, "name", None), str):
        raise RegistrationError(f"{prober!r} is not a model prober (it needs name, order, recognises and probe())")
    if not isinstance(prober.order, int):
        raise RegistrationError(f"model prober {prober.name!r} has a non-integer order {prober.order!r}")


def check_model_loader(loader: Any) -> None:
    """Refuse anything but a ModelLoader instance."""
    if isinstance(loader, type) or not isinstance(loader, ModelLoader):
        raise RegistrationError(
            f"{loader!r} is not a model loader: register an instance with model_type, model_format, "
            "load(config, submodel, *, dtype) and device_available(device)"
        )


def check_storage_backend(factory: Any) -> None:
    """Refuse anything but a named StorageBackendFactory."""
    if not (isinstance(factory, StorageBackendFactory) and factory.name and callable(factory.create)):
        raise RegistrationError(f"{factory!r} is not a StorageBackendFactory with a name and a create function")


def check_file_storage_backend(factory: Any) -> None:
    """Refuse anything but a named FileStorageBackendFactory."""
    if not (isinstance(factory, FileStorageBackendFactory) and factory.name and callable(factory.create)):
        raise RegistrationError(f"{factory!r} is not a FileStorageBackendFactory with a name and a create function")


def check_event(cls: Any) -> None:
    """Refuse a class that is not a BaseEvent with its own name, or that takes a name of the host's events."""
    if not (isinstance(cls, type) and issubclass(cls, BaseEvent)):
        raise RegistrationError(f"{cls!r} is not a BaseEvent subclass")
    name = cls.__dict__.get("event_name")
    if not isinstance(name, str) or not name:
        raise RegistrationError(f"{class_name(cls)} sets no event_name of its own")
    core = next((c for c in HOST_EVENTS if c.event_name == name), None)
    if core is not None and core is not cls:
        raise RegistrationError(f"event name {name!r} of {class_name(cls)} belongs to the host's {class_name(core)}")


def check_event_sink(sink: Any) -> None:
    """Refuse anything but a named EventSink."""
    if not isinstance(sink, EventSink) or not isinstance(sink.name, str) or not sink.name:
        raise RegistrationError(f"{sink!r} is not an EventSink (name, start, stop, deliver)")
