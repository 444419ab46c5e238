"""InvokeAI's ``BaseInvocation``, ``@invocation`` and ``@invocation_output`` on invoke_sdk's.

The decorators take InvokeAI's arguments and follow its rules: ``version`` defaults to ``"1.0.0"`` (with a
warning, as InvokeAI logs), an input declared ``InputField(default=None)`` on a non-optional type accepts None,
and ``classification``, ``bottleneck`` and the node pack go into the node's JSON schema. Each decorated class is
remembered by module, so a wrapped pack's plugin can register exactly the nodes its modules declare
(:mod:`invokeai_compat.pack_plugin`). ``invoke`` receives an InvokeAI-shaped context
(:class:`invokeai_compat.context.InvokeAIContext`) around the host's.
"""

# ruff: noqa: UP042 - InvokeAI's enums are (str, Enum), whose str() and format() packs rely on; StrEnum differs

from __future__ import annotations

import functools
import logging
import types
import typing
from enum import Enum
from typing import Any, ClassVar, TypeVar

import invoke_sdk
from invoke_sdk.invocation import BaseInvocationOutput as SdkOutput
from invokeai_compat.context import adapt_context
from invokeai_compat.declared import remember
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from invokeai.app.invocations.fields import (
    FieldDescriptions,
    Input,
    InputField,
    OutputField,
    UIComponent,
    UIType,
    WithBoard,
    WithMetadata,
    WithWorkflow,
)
from invokeai.app.services.shared.invocation_context import InvocationContext

__all__ = [
    "BaseInvocation",
    "BaseInvocationOutput",
    "Bottleneck",
    "Classification",
    "FieldDescriptions",
    "Input",
    "InputField",
    "InvalidVersionError",
    "InvocationContext",
    "OutputField",
    "UIComponent",
    "UIType",
    "WithBoard",
    "WithMetadata",
    "WithWorkflow",
    "invocation",
    "invocation_output",
]

logger = logging.getLogger("invokeai_compat")


class InvalidVersionError(ValueError):
    """A node's version is not ``MAJOR.MINOR.PATCH``."""


class Classification(str, Enum):
    """How stable InvokeAI says a node is; kept in the node's schema as ``classification``."""

    Stable = "stable"
    Beta = "beta"
    Prototype = "prototype"
    Deprecated = "deprecated"
    Internal = "internal"
    Special = "special"


class Bottleneck(str, Enum):
    """What limits a node's speed; kept in the node's schema as ``bottleneck``."""

    Network = "network"
    GPU = "gpu"


class BaseInvocationOutput(SdkOutput):
    """InvokeAI's output base class: invoke_sdk's, plus ``get_type``."""

    @classmethod
    def get_type(cls) -> str:
        """The output's type id."""
        info = cls.output_info()
        return info.type if info is not None else cls.__name__


class BaseInvocation(invoke_sdk.BaseInvocation):
    """InvokeAI's node base class: invoke_sdk's, plus ``get_type`` and InvokeAI's class attributes."""

    bottleneck: ClassVar[Bottleneck] = Bottleneck.GPU
    idle_gpu_offloadable: ClassVar[bool] = False
    UIConfig: ClassVar[Any] = None

    @classmethod
    def get_type(cls) -> str:
        """The node's type id."""
        info = cls.invocation_info()
        return info.type if info is not None else cls.__name__

    @classmethod
    def get_output_annotation(cls) -> type[SdkOutput]:
        """The output class ``invoke`` is annotated to return."""
        out = typing.get_type_hints(cls.invoke).get("return")
        assert isinstance(out, type) and issubclass(out, SdkOutput)
        return out


TInvocation = TypeVar("TInvocation", bound=type[BaseInvocation])
TOutput = TypeVar("TOutput", bound=type[SdkOutput])


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return annotation is None or annotation is Any or (
        origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)
    )


def _widen_none_defaults(cls: type[BaseModel]) -> None:
    # InvokeAI: `x: int = InputField(default=None)` means "optional", so the type must accept None too.
    for name, info in list(cls.__pydantic_fields__.items()):
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        explicit_none = info.default is None and extra.get("orig_required") is False
        if explicit_none and info.annotation is not None and not _is_optional(info.annotation):
            annotation = info.annotation | None
            cls.__pydantic_fields__[name] = FieldInfo.from_annotated_attribute(annotation, info)
            cls.__annotations__[name] = annotation
            cls.__pydantic_complete__ = False


def _schema_extra(extra: dict[str, Any]) -> Any:
    def add(schema: dict[str, Any]) -> None:
        required = schema.setdefault("required", [])
        if "type" not in required:
            required.insert(0, "type")
        schema.update(extra)

    return add


def _adapting(invoke: Any) -> Any:
    @functools.wraps(invoke)
    def run(self: Any, context: Any) -> Any:
        return invoke(self, adapt_context(context, self))

    run.__invokeai_adapted__ = True  # type: ignore[attr-defined]
    return run


def invocation(
    invocation_type: str,
    title: str | None = None,
    tags: list[str] | None = None,
    category: str | None = None,
    version: str | None = None,
    use_cache: bool | None = True,
    classification: Classification = Classification.Stable,
    bottleneck: Bottleneck = Bottleneck.GPU,
    idle_gpu_offloadable: bool = False,
) -> Any:
    """InvokeAI's ``@invocation``: declares a node class (see the module docstring for the rules kept)."""

    def wrapper(cls: TInvocation) -> TInvocation:
        if not (isinstance(cls, type) and issubclass(cls, invoke_sdk.BaseInvocation)):
            raise TypeError(f"@invocation({invocation_type!r}) must decorate a BaseInvocation subclass, not {cls!r}")
        node_version = version
        if node_version is None:
            logger.warning('No version specified for node "%s", using "1.0.0"', invocation_type)
            node_version = "1.0.0"
        try:
            decorate = invoke_sdk.invocation(
                invocation_type, title=title, tags=tags, category=category, version=node_version,
                use_cache=True if use_cache is None else use_cache,
            )
        except ValueError as exc:
            if "version" in str(exc):
                raise InvalidVersionError(f'Invalid version string for node "{invocation_type}": "{version}"') from exc
            raise
        _widen_none_defaults(cls)
        node_pack = cls.__module__.split(".")[0]
        cls.model_config = {
            **cls.model_config,
            "json_schema_extra": _schema_extra({
                "classification": Classification(classification).value,
                "bottleneck": Bottleneck(bottleneck).value,
                "node_pack": node_pack,
            }),
        }
        cls.bottleneck = Bottleneck(bottleneck)
        cls.idle_gpu_offloadable = idle_gpu_offloadable
        own = cls.__dict__.get("invoke")
        if own is not None and not getattr(own, "__invokeai_adapted__", False):
            cls.invoke = _adapting(own)  # type: ignore[method-assign]
        decorated: TInvocation = decorate(cls)
        cls.UIConfig = types.SimpleNamespace(
            title=title, tags=tags, category=category, version=node_version, node_pack=node_pack,
            classification=Classification(classification),
        )
        remember(decorated)
        return decorated

    return wrapper


def invocation_output(output_type: str) -> Any:
    """InvokeAI's ``@invocation_output``: declares an output class with its type id."""

    def wrapper(cls: TOutput) -> TOutput:
        decorated: TOutput = invoke_sdk.invocation_output(output_type)(cls)
        remember(decorated)
        return decorated

    return wrapper
