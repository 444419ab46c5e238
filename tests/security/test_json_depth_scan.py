"""The JSON depth meter's scan against a byte-by-byte reference, on random and adversarial bodies in random pieces.

The meter (invoke_host/security/json_depth.py) drops escapes, strings and innermost bracket pairs with C-level bytes
operations and walks only what is left. On JSON it must read as the reference below, one byte at a time as JSON
would; on any bytes, as the meter before the scan did (its loop over every bracket, kept here): refuse the same
bodies after the same piece and, where none refuses, agree on the depth after every piece.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest

from invoke_host.security.json_depth import JsonDepthMeter, JsonTooDeepError


class _Reference:
    """One byte at a time: strings (with their escapes) are text; ``[``/``{`` open a level, ``]``/``}`` close one
    (never below 0)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.depth, self.in_string, self.escape = limit, 0, False, False

    def feed(self, chunk: bytes) -> None:
        for byte in chunk:
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif byte == ord("\\"):
                    self.escape = True
                elif byte == ord('"'):
                    self.in_string = False
            elif byte == ord('"'):
                self.in_string = True
            elif byte in b"[{":
                self.depth += 1
                if self.depth > self.limit:
                    raise JsonTooDeepError("too deep")
            elif byte in b"]}" and self.depth:
                self.depth -= 1


class _BracketLoop(JsonDepthMeter):
    """The meter as it was: the same string and escape handling, then a Python iteration per bracket."""

    def _count(self, brackets: bytes) -> None:
        depth, limit = self.depth, self.limit
        for byte in brackets:
            if byte in b"[{":
                depth += 1
                if depth > limit:
                    raise JsonTooDeepError("too deep")
            elif depth:
                depth -= 1
        self.depth = depth


def _pieces(text: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 6)))) if len(text) > 1 else []
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _outcome(meter: JsonDepthMeter | _Reference, pieces: list[bytes]) -> list[int | str]:
    seen: list[int | str] = []
    for piece in pieces:
        try:
            meter.feed(piece)
        except JsonTooDeepError:
            return [*seen, "refused"]
        seen.append(meter.depth)
    return seen


def _random_value(rng: random.Random, depth: int) -> object:
    kind = rng.random()
    if depth <= 0 or kind < 0.3:
        text = "".join(rng.choice('[]{}"\\ab\n\u2028é') for _ in range(rng.randint(0, 8)))
        return rng.choice([1, 2.5, None, True, text])
    if kind < 0.65:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    keys = ["k", "[", '}"', "\\"]
    return {rng.choice(keys) + str(i): _random_value(rng, depth - 1) for i in range(rng.randint(0, 4))}


def _random_bytes(rng: random.Random) -> bytes:
    # Not JSON: brackets, quotes and backslashes in any order, runs of them included.
    alphabet = [b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b"[[[[", b"]]]]", b'\\"', b"\\\\"]
    return b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))


def _check(text: bytes, limit: int, rng: random.Random, *, is_json: bool = True) -> None:
    pieces = _pieces(text, rng)
    scanned = _outcome(JsonDepthMeter(limit), pieces)
    assert scanned == _outcome(_BracketLoop(limit), pieces), (text[:200], limit, pieces[:3])
    if is_json:
        assert scanned == _outcome(_Reference(limit), pieces), (text[:200], limit, pieces[:3])


@pytest.mark.parametrize("seed", range(40))
def test_the_scan_agrees_with_a_byte_by_byte_reading(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        limit = rng.choice([1, 2, 3, 5, 8, 13, 20, 64])
        _check(json.dumps(_random_value(rng, rng.randint(0, 25))).encode(), limit, rng)
        _check(_random_bytes(rng), limit, rng, is_json=False)


@pytest.mark.parametrize("limit", [1, 5, 12, 13, 20, 64])
def test_the_scan_agrees_at_and_around_the_limit(limit: int) -> None:
    rng = random.Random(limit)
    for depth in range(max(0, limit - 14), limit + 3):
        for text in (b"[" * depth + b"]" * depth, (b"{\"a\":" * depth + b"1" + b"}" * depth),
                     (b"[" * depth + b"]" * depth) * 50, b"]" * 30 + b"[" * depth + b"]" * depth,
                     b"[[]" * depth + b"]" * depth, b"[" * depth, b"]" * depth + b"[" * depth):
            for _ in range(4):
                _check(text, limit, rng, is_json=not text.startswith(b"]") and text.count(b"[") * 2 == len(text))
