"""A nesting-depth limit on JSON request bodies, checked as the bytes arrive, before any parser sees them.

Python's and msgspec's parsers, and pydantic's validators, recurse once per level: 5,000 levels of
``[`` end in a ``RecursionError`` that every route would have to catch. Measuring the depth on the
way in refuses such a body for every route at once, in constant memory, whichever parser the route
uses. A ``RecursionError`` that still escapes a route (a body sent with some other content type and
parsed anyway) is answered 400 by :func:`recursion_error_handler`, never 500.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import ClientException

from invoke_host.security._asgi import ASGIApp, Middleware, Receive, Scope, Send, header_value

__all__ = ["JsonDepthMeter", "JsonTooDeepError", "json_depth_middleware", "recursion_error_handler"]

logger = logging.getLogger("invoke_host.security")


def _setting(limit: int) -> str:
    return f"max_json_depth (INVOKE_HOST_MAX_JSON_DEPTH={limit})"

# Everything but brackets and quotes: what is left after the escapes are gone decides the depth.
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'[]{}"')
# The meter counts levels, whichever bracket opens them: "{" and "}" read as "[" and "]".
_SAME_BRACKETS = bytes.maketrans(b"{}", b"[]")
_OPEN_BRACKET = ord("[")
# Passes that drop innermost pairs before what is left is walked: API bodies nest a handful of levels.
_MAX_PASSES = 12
# Media types whose bodies are never JSON; anything else might be parsed as JSON by some route.
_NOT_JSON = ("multipart/", "image/", "audio/", "video/", "font/", "application/octet-stream",
             "application/x-www-form-urlencoded")


class JsonTooDeepError(ClientException):
    """A request body nests arrays and objects deeper than the configured limit (400)."""


class JsonDepthMeter:
    """Follows the nesting depth of JSON text fed in pieces; raises once it passes ``limit``.

    Brackets inside strings do not count. Text that is not JSON only yields some depth: the
    parser after it refuses such text anyway.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._escape = False

    def feed(self, chunk: bytes) -> None:
        """Account for the next piece of the body."""
        # Only C-level bytes operations run over the whole piece; Python code sees the brackets only.
        if self._escape and chunk:
            chunk, self._escape = chunk[1:], False
        if b"\\" in chunk:
            # Backslash pairs first (left to right, as JSON reads them), then escaped quotes.
            chunk = chunk.replace(b"\\\\", b"")
            if chunk.endswith(b"\\"):  # an escape split between this piece and the next
                chunk, self._escape = chunk[:-1], True
            chunk = chunk.replace(b'\\"', b"")
        # Dropping two adjacent quotes (mostly strings without brackets) keeps every other
        # character's side of the string boundaries; then the pieces between quotes alternate
        # between outside and inside strings.
        parts = chunk.translate(None, _NOT_STRUCTURAL).replace(b'""', b"").split(b'"')
        outside = parts[1::2] if self._in_string else parts[0::2]
        if len(parts) % 2 == 0:
            self._in_string = not self._in_string
        self._count(b"".join(outside))

    def _count(self, brackets: bytes) -> None:
        # A Python iteration per bracket took 0.9 ms for a 1,000-node graph's 146 kB body. Instead, C-level passes
        # drop the innermost pairs ("[]" once "{" and "}" read as "[" and "]": the meter, like the old loop, does
        # not tell them apart). Each pass lowers the pieces' height by one, so after ``passes`` passes no dropped
        # pair went deeper than ``passes`` levels over where it sat in what is left; dropping a balanced pair
        # changes neither the final depth nor which ``]`` meet depth 0. So if what is left, walked from the depth
        # so far, plus ``passes`` stays within the limit, the piece is within it and ends at the walk's depth;
        # otherwise (a body nesting near or past the limit) the exact loop decides, and raises as before.
        if not brackets:
            return
        brackets = brackets.translate(_SAME_BRACKETS)
        left, passes = brackets, 0
        while passes < _MAX_PASSES:
            shorter = left.replace(b"[]", b"")
            if len(shorter) == len(left):
                break
            left, passes = shorter, passes + 1
        depth, highest = self._walk(left)
        if highest + passes <= self.limit:
            self.depth = depth
        else:
            self._count_exactly(brackets)

    def _walk(self, brackets: bytes) -> tuple[int, int]:
        """The depth after ``brackets`` (only ``[`` and ``]``) from the depth so far, and the highest on the way."""
        closing = len(brackets) - len(brackets.lstrip(b"]"))
        opening = len(brackets) - closing
        if brackets.count(b"[") == opening:  # "]]]...[[[", what a piece reduces to: no loop needed
            depth = max(self.depth - closing, 0) + opening
            return depth, max(self.depth, depth)
        depth = highest = self.depth
        for byte in brackets:
            if byte == _OPEN_BRACKET:
                depth += 1
                highest = max(highest, depth)
            elif depth:
                depth -= 1
        return depth, highest

    def _count_exactly(self, brackets: bytes) -> None:
        depth, limit = self.depth, self.limit
        for byte in brackets:
            if byte == _OPEN_BRACKET:
                depth += 1
                if depth > limit:
                    raise JsonTooDeepError(
                        f"the request body nests arrays and objects more than {limit} levels deep; this server "
                        f"accepts at most {_setting(limit)}"
                    )
            elif depth:
                depth -= 1
        self.depth = depth


def _may_be_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return not media.startswith(_NOT_JSON)


def json_depth_middleware(max_depth: int) -> Middleware:
    """Refuse (400) any request body that might be JSON once it nests deeper than ``max_depth``."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not _may_be_json(header_value(scope, b"content-type")):
                await app(scope, receive, send)
                return
            meter = JsonDepthMeter(max_depth)

            async def measured_receive() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    meter.feed(message.get("body", b""))
                return message

            await app(scope, measured_receive, send)

        return middleware

    return wrap


def recursion_error_handler(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """Answer a ``RecursionError`` from a route 400: it comes from input nested too deeply to handle."""
    logger.warning(
        "%s %s: input nested too deeply to handle (RecursionError); answered 400",
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return Response(
        content={
            "status_code": 400,
            "detail": "the request nests too deeply to be handled; JSON bodies may nest at most "
            f"{_setting(request.app.state.host.config.max_json_depth)} levels of arrays and objects",
        },
        status_code=400,
        media_type=MediaType.JSON,
    )
