"""Reading one asset.json: its fields checked, each error placed at the line and column of its key.

The file is parsed by ``jsontext.parse_json`` (strict UTF-8, no duplicate keys, depth and number
limits), then checked against ``model.AssetDecl``; a field that is wrong is pointed at by its key
or array element (``jsontext.locate``), and worded by ``model.field_problem``. The params are
checked by the kind's own model.
Imports: stdlib, pydantic, packer.model, packer.kinds.base, packer.hashing, packer.fsutil,
packer.jsontext, packer.errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from packer.errors import DeclError, PackerError
from packer.fsutil import MIB
from packer.hashing import canonical_json
from packer.jsontext import JsonTextError, locate, parse_json
from packer.kinds.base import Kind
from packer.model import REGISTRY_OWNED_FIELDS, AssetDecl, field_problem

ASSET_FILE_LIMIT = 1 * MIB
"""asset.json files larger than this are refused: authoring intent is a few hundred bytes."""


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
            line, col = _position(text, (owned,))
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
        problem = field_problem(err, AssetDecl)
        line, col = _position(text, problem.loc)
        raise DeclError(problem.message, display, line, col, field=problem.field) from None


def field_position(text: str, field: str) -> tuple[int | None, int | None]:
    """Where in asset.json ``text`` the problem with ``field`` (``inputs.1``, ``params.x``) is."""
    return _position(text, tuple(int(p) if p.isdigit() else p for p in field.split(".")))


def _position(text: str, loc: Sequence[str | int]) -> tuple[int | None, int | None]:
    """Where in the text the problem at ``loc`` is: the key, or the array's element; for a
    key that is missing, the object that lacks it."""
    return locate(text, loc) or locate(text, loc[:-1]) or (None, None)


def check_params(
    kind: Kind, params: dict[str, Any], display: str
) -> tuple[str, PackerError | None]:
    """Canonical JSON of the params as the kind validates them (defaults filled in), or error."""
    try:
        validated = kind.Params.model_validate(params)
    except ValidationError as err:
        problem = field_problem(err, kind.Params, unknown=f"unknown param for kind {kind.name!r}")
        field = ".".join(["params", problem.field]) if problem.loc else "params"
        return canonical_json(params).decode(), DeclError(problem.message, display, field=field)
    return canonical_json(validated.model_dump(mode="json")).decode(), None
