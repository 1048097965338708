"""Parsing the JSON files packer reads (asset.json, registry.json, manifests, state files).

One parser with one set of rules, so a hostile file fails the same way wherever it appears:
strict UTF-8 without a byte-order mark, no NaN or Infinity, no duplicate keys, integers of at
most ``MAX_INT_DIGITS`` digits, nesting at most ``MAX_DEPTH`` deep. Every failure is a
``JsonTextError`` with a message in JSON's own words and, where known, a line and column;
callers turn it into their own ``PackerError`` naming the file. ``locate`` finds the line and
column of a key or array element in a parsed text, for errors found after parsing.
Imports: stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted; packer's own files need 4."""

MAX_INT_DIGITS = 64
"""Longest integer accepted (sign excluded): far past any size or offset, far short of the
point where Python's int parsing gets slow."""


class JsonTextError(ValueError):
    """A file is not JSON packer accepts; ``line`` and ``col`` point at the fault when known."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonTextError(f"number too long ({len(text)} characters; at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_INT_DIGITS * 2:
        raise JsonTextError(f"number too long ({len(text)} characters)")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonTextError(f"number {text} is out of range")
    return value


def _constant(name: str) -> Any:
    raise JsonTextError(f"{name} is not a JSON number")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonTextError(f"duplicate key {key!r}")
            seen.add(key)
    return document


def _too_deep(text: str) -> tuple[int, int] | None:
    """Line and column where nesting first exceeds ``MAX_DEPTH``, brackets in strings skipped.

    A character-by-character loop: run only to point at the fault of a file known to be too deep.
    """
    depth = 0
    in_string = escaped = False
    line, line_start = 1, 0
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, index - line_start + 1
        elif char in "]}":
            depth -= 1
        elif char == "\n":
            line, line_start = line + 1, index + 1
    return None


def parse_json(raw: bytes) -> Any:
    """The JSON value of ``raw``, or ``JsonTextError``."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise JsonTextError("starts with a byte-order mark (save it as UTF-8 without BOM)", 1, 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise JsonTextError(f"not UTF-8 text ({err.reason})", line, col) from None
    try:
        value = json.loads(
            text,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
            object_pairs_hook=_pairs,
        )
    except json.JSONDecodeError as err:
        comma = _trailing_comma(text, err.pos)
        if comma is not None:
            closer = text[_skip_space(text, comma + 1)]
            message = f"trailing comma before {closer!r} (JSON allows none; remove it)"
            raise JsonTextError(message, *_line_col(text, comma)) from None
        raise JsonTextError(err.msg, err.lineno, err.colno) from None
    except RecursionError:  # far deeper than MAX_DEPTH: the parser's own guard tripped
        raise _too_deep_error(text) from None
    # Only a file with more brackets than the limit can nest past it; the check walks the
    # parsed value level by level (C-speed list building), a few ms at 10,000 assets.
    if text.count("[") + text.count("{") > MAX_DEPTH and not _depth_within(value):
        raise _too_deep_error(text)
    return value


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _trailing_comma(text: str, pos: int) -> int | None:
    """Index of the comma that ends the object or array the decoder stopped in at ``pos``, if
    that is why it stopped (json's own words are about what it expected next instead)."""
    comma = pos
    if comma >= len(text) or text[comma] != ",":  # Python < 3.13 stops after the comma
        comma = pos - 1
        while comma >= 0 and text[comma] in " \t\r\n":
            comma -= 1
    if comma < 0 or text[comma] != ",":
        return None
    after = _skip_space(text, comma + 1)
    return comma if after < len(text) and text[after] in "}]" else None


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _depth_within(value: Any) -> bool:
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_DEPTH):
        if not level:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            below.extend(item for item in items if isinstance(item, dict | list))
        level = below
    return not level


def _too_deep_error(text: str) -> JsonTextError:
    where = _too_deep(text) or (None, None)
    return JsonTextError(f"nested more than {MAX_DEPTH} levels deep", *where)


# A string (escapes included), one punctuation character, or a number or literal.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s"{}\[\]:,]+', re.DOTALL)


def locate(text: str, path: Sequence[str | int]) -> tuple[int, int] | None:
    """Line and column (from 1) in valid JSON ``text`` of what ``path`` names: an object's key
    for a string step, an array's element for an index step; None when it is not there.

    Found by tokenizing the text, not by searching it: a plain search for a key would also
    find a value that holds the same string (``{"asset_name": "kind", "kind": 5}``). Run on
    the error path only.
    """
    tokens = [(match.group(), match.start()) for match in _TOKEN.finditer(text)]

    def after_value(i: int) -> int:
        depth = 0
        while True:
            token = tokens[i][0]
            if token in ("{", "["):
                depth += 1
            elif token in ("}", "]"):
                depth -= 1
            i += 1
            if depth == 0:
                return i

    def find(i: int, steps: Sequence[str | int]) -> int | None:
        if not steps:
            return tokens[i][1]
        opener, step = tokens[i][0], steps[0]
        if (opener, type(step)) not in (("{", str), ("[", int)):
            return None
        i += 1
        index = 0
        while tokens[i][0] not in ("}", "]"):
            if opener == "{":
                if json.loads(tokens[i][0]) == step:
                    return tokens[i][1] if len(steps) == 1 else find(i + 2, steps[1:])
                i += 2  # the key and its colon
            elif index == step:
                return find(i, steps[1:])
            i = after_value(i)
            i += tokens[i][0] == ","
            index += 1
        return None

    try:
        found = find(0, path) if tokens else None
    except (IndexError, ValueError):  # not valid JSON after all (changed since it was parsed)
        return None
    return None if found is None else _line_col(text, found)


__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "JsonTextError", "locate", "parse_json"]
