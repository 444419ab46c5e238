"""Base classes and decorators for nodes ("invocations") and their outputs."""

# No `from __future__ import annotations` here: pydantic evaluates the base classes' private annotations
# (``_invocation_info: ClassVar[...]``) again for every node class it creates, and a string costs an eval each
# time; written as objects they are evaluated once, here (bench/startup.py, 1,000 node types).
import inspect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from invoke_sdk.fields import FieldKind, Input, InputField

if TYPE_CHECKING:
    from invoke_sdk.context import InvocationContext

__all__ = [
    "BaseInvocation",
    "BaseInvocationOutput",
    "InvocationInfo",
    "InvocationOutputInfo",
    "invocation",
    "invocation_output",
]

_TYPE_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class InvocationInfo:
    """What ``@invocation`` recorded about a node class."""

    type: str
    title: str
    tags: tuple[str, ...] = ()
    category: str = "misc"
    version: str = "1.0.0"
    use_cache: bool = True
    description: str = ""


@dataclass(frozen=True)
class InvocationOutputInfo:
    """What ``@invocation_output`` recorded about an output class."""

    type: str
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _require_type(schema: dict[str, Any]) -> None:
    # The tag has a default so nodes are easy to build in Python, but clients must always send
    # it: without it in `required`, generated client types make the discriminator optional.
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


class BaseInvocationOutput(BaseModel):
    """Base class for what a node returns. Decorate subclasses with ``@invocation_output``."""

    model_config = ConfigDict(
        defer_build=True, extra="forbid", json_schema_extra=_require_type, protected_namespaces=()
    )

    _output_info: ClassVar[InvocationOutputInfo | None] = None

    @classmethod
    def output_info(cls) -> InvocationOutputInfo | None:
        """The ``@invocation_output`` record of exactly this class (None if it was not decorated)."""
        info = cls.__dict__.get("_output_info")
        return info if isinstance(info, InvocationOutputInfo) else None


class BaseInvocation(BaseModel):
    """Base class for nodes. Decorate subclasses with ``@invocation`` and implement :meth:`invoke`.

    Inputs are declared with ``InputField``; ``invoke`` receives an
    :class:`~invoke_sdk.context.InvocationContext` and returns an instance of a class decorated
    with ``@invocation_output``, named in its return annotation.
    """

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        validate_assignment=False,
        json_schema_extra=_require_type,
        protected_namespaces=(),
    )

    id: str = Field(
        default="node",
        description="The id of this node in its graph. Must be unique among the graph's nodes.",
        json_schema_extra={"field_kind": FieldKind.NodeAttribute.value},
    )
    is_intermediate: bool = InputField(
        default=False,
        description="Whether images this node saves are intermediates",
        input=Input.Direct,
        ui_hidden=True,
    )
    use_cache: bool = InputField(
        default=True,
        description="Whether this node may reuse an earlier identical result",
        input=Input.Direct,
        ui_hidden=True,
    )

    _invocation_info: ClassVar[InvocationInfo | None] = None

    @classmethod
    def invocation_info(cls) -> InvocationInfo | None:
        """The ``@invocation`` record of exactly this class (None if it was not decorated)."""
        info = cls.__dict__.get("_invocation_info")
        return info if isinstance(info, InvocationInfo) else None

    @classmethod
    def input_field_names(cls) -> list[str]:
        """The names of this node's inputs, in declaration order (``id`` and ``type`` excluded)."""
        return [
            name
            for name, info in cls.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("field_kind") == "input"
        ]

    def invoke(self, context: "InvocationContext") -> BaseInvocationOutput:
        """Run the node. Blocking work is fine: the host calls this in a worker thread."""
        raise NotImplementedError(f"{type(self).__name__} does not implement invoke()")


TInvocation = TypeVar("TInvocation", bound=type[BaseInvocation])
TOutput = TypeVar("TOutput", bound=type[BaseInvocationOutput])


def _add_fields(cls: type[BaseModel], fields: dict[str, tuple[Any, Any]]) -> None:
    # Adds fields to a class whose schema is not built yet (defer_build), the way InvokeAI's
    # decorator does. Making a tagged subclass instead costs a second pydantic class per node,
    # which doubled start-up time with 1,000 node types (bench/startup.py).
    for name, (annotation, default) in fields.items():
        cls.__pydantic_fields__[name] = FieldInfo.from_annotated_attribute(annotation, default)
        cls.__annotations__[name] = annotation
    cls.__pydantic_complete__ = False


def _type_tag(type_id: str, description: str) -> tuple[Any, Any]:
    # FieldInfo.from_field: what Field() returns, without its checks of pydantic 1 keywords (one per node class).
    return (Literal[type_id], FieldInfo.from_field(type_id, description=description))


def invocation(
    invocation_type: str,
    *,
    title: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    category: str | None = None,
    version: str = "1.0.0",
    use_cache: bool = True,
) -> Any:
    """Declare a node class.

    Args:
        invocation_type: the node's unique type id, the ``type`` of the node in a graph
            (letters, digits, ``_``, ``-`` and ``.``).
        title: the name a user sees; defaults to the class name.
        tags: words to find the node by.
        category: the group the node is listed under.
        version: the node's semantic version (``MAJOR.MINOR.PATCH``).
        use_cache: whether an identical earlier result may be reused instead of running the
            node again. Nodes with side effects or randomness must pass ``False``.
    """
    if not _TYPE_ID.match(invocation_type):
        raise ValueError(f"invalid invocation type id {invocation_type!r}: use letters, digits, '_', '-' and '.'")
    if not _SEMVER.match(version):
        raise ValueError(f"invalid version {version!r} for invocation {invocation_type!r}: use MAJOR.MINOR.PATCH")

    def wrap(cls: TInvocation) -> TInvocation:
        if not (isinstance(cls, type) and issubclass(cls, BaseInvocation)):
            raise TypeError(f"@invocation({invocation_type!r}) must decorate a BaseInvocation subclass, not {cls!r}")
        doc = (cls.__doc__ or "").strip()
        if "type" in inspect.get_annotations(cls):
            raise TypeError(f"{cls.__name__} declares its own 'type' field; @invocation sets it")
        fields = {"type": _type_tag(invocation_type, "The node type")}
        if not use_cache:
            fields["use_cache"] = (
                bool,
                InputField(
                    default=False,
                    description="Whether this node may reuse an earlier identical result",
                    input=Input.Direct,
                    ui_hidden=True,
                ),
            )
        _add_fields(cls, fields)
        cls._invocation_info = InvocationInfo(
            type=invocation_type,
            title=title or cls.__name__,
            tags=tuple(tags or ()),
            category=category or "misc",
            version=version,
            use_cache=use_cache,
            description=doc,
        )
        return cls

    return wrap


def invocation_output(output_type: str) -> Any:
    """Declare a node output class with its unique type id."""
    if not _TYPE_ID.match(output_type):
        raise ValueError(f"invalid output type id {output_type!r}: use letters, digits, '_', '-' and '.'")

    def wrap(cls: TOutput) -> TOutput:
        if not (isinstance(cls, type) and issubclass(cls, BaseInvocationOutput)):
            raise TypeError(f"@invocation_output({output_type!r}) must decorate a BaseInvocationOutput subclass")
        _add_fields(cls, {"type": _type_tag(output_type, "The output type")})
        cls._output_info = InvocationOutputInfo(type=output_type, description=(cls.__doc__ or "").strip())
        return cls

    return wrap
