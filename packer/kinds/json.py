"""The ``json`` kind: JSON data whose bytes depend only on its value.

Key order, indentation and escapes are editor habits; canonical output keeps them out of the pack
and its hashes, and parsing at build time turns a broken file into a build error with its line and
column instead of a runtime failure. Imports: stdlib, pydantic, packer.kinds.base,
packer.kinds.text (its strict UTF-8 decoding), packer.hashing, packer.errors.
"""

from __future__ import annotations

import json
import math
from typing import ClassVar

from pydantic import BaseModel

from packer.errors import KindError
from packer.hashing import canonical_json
from packer.kinds.base import KindContext, NoParams
from packer.kinds.text import decode_utf8


class JsonKind:
    """Parses one input and writes it back as canonical compact JSON (see docs/kinds.md)."""

    name: ClassVar[str] = "json"
    version: ClassVar[int] = 1
    # Only the standard library's json and float formatting decides the bytes.
    libraries: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams

    def process(self, ctx: KindContext) -> bytes:
        # Several documents have no single obvious merge (concatenate? deep-merge? array?), so
        # the kind refuses rather than pick one silently.
        if len(ctx.inputs) != 1:
            raise KindError(f"json takes exactly one input, got {len(ctx.inputs)}")
        input_name, data = ctx.input_names[0], ctx.inputs[0]
        value = _parse(decode_utf8(data, input_name), input_name)
        try:
            return canonical_json(value)
        except UnicodeEncodeError as err:
            # JSON may spell a lone surrogate ("\ud800"); UTF-8 output cannot hold it.
            raise KindError(
                f"{input_name}: a string holds a lone surrogate "
                f"(U+{ord(str(err.object)[err.start]):04X}), which UTF-8 cannot encode"
            ) from None


def _parse(text: str, input_name: str) -> object:
    try:
        return json.loads(
            text,
            object_pairs_hook=lambda pairs: _object(pairs, input_name),
            parse_constant=lambda name: _reject_constant(name, input_name),
            parse_float=lambda literal: _finite_float(literal, input_name),
        )
    except json.JSONDecodeError as err:
        raise KindError(f"{input_name}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except RecursionError:
        raise KindError(f"{input_name}: invalid JSON: nested too deeply") from None
    except ValueError as err:
        # int() refuses integers of more than sys.get_int_max_str_digits() digits.
        raise KindError(f"{input_name}: invalid JSON: {err}") from None


def _object(pairs: list[tuple[str, object]], input_name: str) -> dict[str, object]:
    # Sorted output would otherwise keep the last duplicate and silently drop the others.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise KindError(f"{input_name}: invalid JSON: duplicate key {key!r} in an object")
        result[key] = value
    return result


def _reject_constant(name: str, input_name: str) -> object:
    raise KindError(f"{input_name}: invalid JSON: {name} is not a JSON number")


def _finite_float(literal: str, input_name: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise KindError(f"{input_name}: invalid JSON: number {literal} is out of range")
    return number
