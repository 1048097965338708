"""Reading one asset.json: its fields checked, each error placed at the line and column of its key.

The file is parsed by ``jsontext.parse_json`` (strict UTF-8, no duplicate keys, depth and number
limits), then checked against ``model.AssetDecl``; a field that is wrong is pointed at by its key
in the top-level object, found by tokenizing the text (a plain text search would stop at the
first occurrence of the string, which may be a value: ``{"asset_name": "kind", "kind": 5}``).
The params are checked by the kind's own model.
Imports: stdlib, pydantic, packer.model, packer.kinds.base, packer.hashing, packer.fsutil,
packer.jsontext, packer.errors.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from packer.errors import DeclError, PackerError
from packer.fsutil import MIB
from packer.hashing import canonical_json
from packer.jsontext import JsonTextError, parse_json
from packer.kinds.base import Kind
from packer.model import REGISTRY_OWNED_FIELDS, AssetDecl

ASSET_FILE_LIMIT = 1 * MIB
"""asset.json files larger than this are refused: authoring intent is a few hundred bytes."""

# A JSON string token (escapes included), or one character that opens or closes a container.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]', re.DOTALL)
_BEFORE_COLON = re.compile(r"\s*:")


def top_level_key_position(text: str, key: str) -> tuple[int | None, int | None]:
    """Line and column (from 1) of ``key`` where it is a key of the top-level object of valid
    JSON ``text``; (None, None) when it is not one."""
    depth = 0
    for token in _TOKEN.finditer(text):
        first = token.group()[0]
        if first in "{[":
            depth += 1
        elif first in "}]":
            depth -= 1
        elif (
            depth == 1
            and _BEFORE_COLON.match(text, token.end())
            and json.loads(token.group()) == key
        ):
            index = token.start()
            line = text.count("\n", 0, index) + 1
            return line, index - (text.rfind("\n", 0, index) + 1) + 1
    return None, None


def parse_declaration(raw: bytes, display: str) -> AssetDecl:
    """Parse asset.json bytes into a declaration; errors name ``display`` and a position."""
    try:
        data = parse_json(raw)
    except JsonTextError as err:
        raise DeclError(f"invalid JSON: {err.message}", display, err.line, err.col) from None
    if not isinstance(data, dict):
        raise DeclError("must be a JSON object", display, 1, 1)
    text = raw.decode("utf-8")  # parse_json has checked it is UTF-8; the text gives positions
    for owned in REGISTRY_OWNED_FIELDS:
        if owned in data:
            line, col = top_level_key_position(text, owned)
            raise DeclError(
                f"{owned} is owned by registry.json and must not appear in asset.json "
                "(packer allocates ids; remove the field)",
                display,
                line,
                col,
                field=owned,
            )
    try:
        return AssetDecl.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(part) for part in first["loc"]]
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field (allowed: " + ", ".join(AssetDecl.model_fields) + ")"
        line, col = top_level_key_position(text, loc[0]) if loc else (None, None)
        raise DeclError(message, display, line, col, field=".".join(loc)) from None


def check_params(
    kind: Kind, params: dict[str, Any], display: str
) -> tuple[str, PackerError | None]:
    """Canonical JSON of the params as the kind validates them (defaults filled in), or error."""
    try:
        validated = kind.Params.model_validate(params)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(["params", *(str(part) for part in first["loc"])])
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(kind.Params.model_fields) or "none"
            message = f"unknown param for kind {kind.name!r} (allowed: {allowed})"
        return canonical_json(params).decode(), DeclError(message, display, field=loc)
    return canonical_json(validated.model_dump(mode="json")).decode(), None
