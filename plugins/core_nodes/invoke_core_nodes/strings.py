"""String nodes: join, replace, split."""

from __future__ import annotations

import re

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    InputField,
    InvocationContext,
    OutputField,
    invocation,
    invocation_output,
)
from invoke_sdk.limits import check_limit, host_limit

from invoke_core_nodes.primitives import StringOutput

__all__ = ["NODES", "String2Output"]


@invocation_output("string_2_output")
class String2Output(BaseInvocationOutput):
    """Two strings."""

    string_1: str = OutputField(description="string 1")
    string_2: str = OutputField(description="string 2")


@invocation("string_join", title="String Join", tags=["string", "join"], category="string")
class StringJoinInvocation(BaseInvocation):
    """Joins string left to string right."""

    string_left: str = InputField(default="", description="String Left")
    string_right: str = InputField(default="", description="String Right")

    def invoke(self, context: InvocationContext) -> StringOutput:
        return StringOutput(value=self.string_left + self.string_right)


@invocation("string_join_three", title="String Join Three", tags=["string", "join"], category="string")
class StringJoinThreeInvocation(BaseInvocation):
    """Joins string left, string middle and string right."""

    string_left: str = InputField(default="", description="String Left")
    string_middle: str = InputField(default="", description="String Middle")
    string_right: str = InputField(default="", description="String Right")

    def invoke(self, context: InvocationContext) -> StringOutput:
        return StringOutput(value=self.string_left + self.string_middle + self.string_right)


@invocation("string_replace", title="String Replace", tags=["string", "replace", "regex"], category="string")
class StringReplaceInvocation(BaseInvocation):
    """Replaces the search string with the replace string (case-insensitive unless it is a regex)."""

    string: str = InputField(default="", description="String to work on")
    search_string: str = InputField(default="", description="String to search for")
    replace_string: str = InputField(default="", description="String to replace the search")
    use_regex: bool = InputField(
        default=False, description="Use search string as a regex expression (non regex is case insensitive)"
    )

    def invoke(self, context: InvocationContext) -> StringOutput:
        if not self.search_string:
            return StringOutput(value=self.string)
        pattern = self.search_string if self.use_regex else "(?i)" + re.escape(self.search_string)
        limit = host_limit(context.config, "max_string_length")
        length = len(self.string)

        def replace(match: re.Match[str]) -> str:
            # Many short matches with a long replacement multiply the text: stop once it passes the limit.
            nonlocal length
            piece = match.expand(self.replace_string)
            length += len(piece) - (match.end() - match.start())
            check_limit(length, "max_string_length", context.config, "the length of the replaced string")
            return piece

        try:
            return StringOutput(value=re.sub(pattern, replace if limit is not None else self.replace_string,
                                             self.string))
        except re.error as exc:
            raise ValueError(f"search_string is not a valid regular expression: {exc}") from exc


@invocation("string_split", title="String Split", tags=["string", "split"], category="string")
class StringSplitInvocation(BaseInvocation):
    """Splits a string in two at the first delimiter, which is removed (blank splits at the first whitespace)."""

    string: str = InputField(default="", description="String to split")
    delimiter: str = InputField(default="", description="Delimiter to split with; blank splits on whitespace")

    def invoke(self, context: InvocationContext) -> String2Output:
        parts = self.string.split(self.delimiter or None, 1)
        first = parts[0] if parts else ""
        second = parts[1] if len(parts) == 2 else ""
        return String2Output(string_1=first, string_2=second)


NODES: list[type[BaseInvocation]] = [
    StringJoinInvocation,
    StringJoinThreeInvocation,
    StringReplaceInvocation,
    StringSplitInvocation,
]
