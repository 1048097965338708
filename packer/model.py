"""Pydantic models of the files people and packer write: packer.toml, asset.json, registry.json.

These are the file boundaries; past them packer works with the validated, frozen values.
``field_problem`` is the one place where pydantic's errors become the user's words: JSON's
types (array, object, string), an unknown key with the allowed ones and a "did you mean".
Imports: stdlib, pydantic, packer.errors.
"""

from __future__ import annotations

import datetime
import json
import posixpath
import re
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from packer.errors import did_you_mean

REGISTRY_FORMAT = 1

# Fields that registry.json owns: an asset.json holding one is refused with a reason, not merely
# as an unknown key, because copying an id into authoring files would defeat merge-safe identity.
REGISTRY_OWNED_FIELDS = ("asset_id",)

ASSET_ID_PATTERN = r"^[0-9a-f]{16}$"
CONTENT_PATTERN = r"^[0-9a-f]{32}$"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")

NonEmpty = Annotated[str, StringConstraints(min_length=1)]

LEADS_OUTSIDE = "leads outside the workspace"


def path_problem(rel: str) -> str | None:
    """Why ``rel`` is not a normalised workspace-relative POSIX path, or None when it is one.

    The one rule for every path packer takes from a file or a command line and later joins to
    the workspace root (inputs once resolved, registry paths, ``packer mv``, config folders):
    no absolute path, no ``..``, ``.`` or empty segment, not the root itself, no NUL (the
    operating system cannot take it) and no backslash (a folder separator elsewhere, so the
    same text would name another file there). Only C-level string tests: the registry checks
    every entry's path on every read.
    """
    if rel in ("", "."):
        return "names the workspace root, not a path inside it"
    if "\0" in rel:
        return "holds a NUL byte"
    if "\\" in rel:
        return "holds a backslash (folders are separated by '/')"
    wrapped = f"/{rel}/"
    if rel[0] == "/" or "/../" in wrapped:
        return LEADS_OUTSIDE
    if "//" in wrapped or "/./" in wrapped:
        return "is not normalised (an empty or '.' segment)"
    return None


def _no_nul(value: str) -> str:
    # A NUL cannot reach a file name or a C API; refuse it where the name is read, with its field.
    if "\0" in value:
        raise ValueError("must not hold a NUL byte")
    return value


def _workspace_path(value: str) -> str:
    problem = path_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} {problem}")
    return value


def _strict_int(value: object) -> object:
    # JSON's true and 1.0 compare equal to 1 in Python; a format number is an integer.
    if type(value) is not int:
        raise PydanticCustomError("int_type", "Input should be an integer")
    return value


Name = Annotated[NonEmpty, AfterValidator(_no_nul)]
"""A name people write (asset_name, an input, a dep): non-empty, no NUL."""

WorkspacePath = Annotated[str, AfterValidator(_workspace_path)]


DEFAULT_ASSETS = "assets"
DEFAULT_OUT = "build"


class WorkspaceSection(BaseModel):
    """The ``[workspace]`` table of packer.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Pack name: the pack is <out>/<name>.pack.")
    assets: tuple[NonEmpty, ...] = Field(
        default=(DEFAULT_ASSETS,), min_length=1, description="Folders scanned for asset.json."
    )
    out: NonEmpty = Field(default=DEFAULT_OUT, description="Output folder.")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _NAME_PATTERN.match(value):
            raise ValueError("must be letters, digits, '_', '-' or '.' (it names a file)")
        return value

    @field_validator("assets", "out")
    @classmethod
    def _inside_workspace(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for item in (value,) if isinstance(value, str) else value:
            norm = posixpath.normpath(item)
            problem = None if norm == "." else path_problem(norm)
            if problem == LEADS_OUTSIDE:
                raise ValueError(f"{item!r} must be a folder inside the workspace")
            if problem is not None:
                raise ValueError(f"{item!r} {problem}")
        return value


def _strict_bool(value: object) -> object:
    # TOML has real booleans; a string "false" or a 0 is a mistake, not a boolean.
    if type(value) is not bool:
        raise PydanticCustomError("bool_type", "Input should be a boolean (true or false)")
    return value


ZSTD_LEVEL_DEFAULT = 9
"""zstd's level when ``[pack] level`` is not given (docs/pack-format.md §1a says why)."""


class PackSection(BaseModel):
    """The ``[pack]`` table of packer.toml: how the pack stores its entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compression: Literal["zstd"] | None = Field(
        default=None,
        description='"zstd": compress each entry (a format-2 pack); absent: stored as they are.',
    )
    level: Annotated[int, BeforeValidator(_strict_int), Field(ge=1, le=22)] = Field(
        default=ZSTD_LEVEL_DEFAULT, description="zstd level, 1 (fastest) to 22 (smallest)."
    )


CACHE_REMOTE_ENV = "PACKER_CACHE_REMOTE"
"""Overrides ``[cache] remote`` (empty: no remote). Named here, beside the table, so that a build
can tell it has no remote without importing ``packer.cache``, which resolves every override."""
CACHE_SCHEMES = ("file://", "s3://")


def _remote_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(CACHE_SCHEMES):
        raise ValueError(
            f"{value!r} is not a remote cache URL (s3://BUCKET/PREFIX or file:///PATH)"
        )
    return value


class CacheSection(BaseModel):
    """The ``[cache]`` table of packer.toml: the shared remote cache (docs/cache.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    remote: Annotated[str | None, AfterValidator(_remote_url)] = Field(
        default=None,
        description='"s3://BUCKET/PREFIX" or "file:///PATH"; absent: no remote cache.',
    )
    endpoint: NonEmpty | None = Field(
        default=None, description="S3 endpoint URL; absent: the provider's own."
    )
    write: Annotated[bool, BeforeValidator(_strict_bool)] = Field(
        default=False, description="Upload what this machine builds."
    )


class Config(BaseModel):
    """packer.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace: WorkspaceSection
    pack: PackSection = PackSection()
    cache: CacheSection = CacheSection()


class AssetDecl(BaseModel):
    """asset.json: what a person intends for one asset. Never holds registry-owned fields."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="packer asset.json",
        json_schema_extra={"additionalProperties": False},
    )

    asset_name: Name = Field(
        description="Unique name of the asset in the workspace; may change at any time."
    )
    kind: NonEmpty = Field(
        description="The processor: raw, text, json, image, audio, atlas or a plug-in.",
    )
    inputs: tuple[Name, ...] = Field(
        min_length=1, description="Input files, relative to the asset folder."
    )
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="Options of the kind; validated by the kind."
    )
    deps: tuple[Name, ...] = Field(
        default=(), description="asset_names of assets that must be built first."
    )


class RegistryEntry(BaseModel):
    """One registered asset: its managed id, where it lives and what it is called, and what
    its inputs held when a sync last saw them (``content``, for recognising it moved)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_id: Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
    asset_name: Name
    path: WorkspacePath
    content: Annotated[str, StringConstraints(pattern=CONTENT_PATTERN)] | None = None
    """``plan.content_fingerprint`` of the asset's kind and inputs; None for an asset without
    inputs, or one registered before packer recorded it. Advisory: it names no build input."""

    @property
    def identity(self) -> tuple[str, str, str]:
        """What the entry says about the asset's identity (everything but ``content``)."""
        return (self.asset_id, self.asset_name, self.path)


class RegistryFile(BaseModel):
    """registry.json as it is on disk. Key order here is the key order written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Annotated[Literal[1], BeforeValidator(_strict_int)]
    assets: tuple[RegistryEntry, ...]
    retired: tuple[Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)], ...]


# --- validation errors in the user's words ------------------------------------------------------


@dataclass(frozen=True)
class FieldProblem:
    """One validation error: where it is (keys and array indexes from the document's top) and
    what is wrong, in the words of the file's format."""

    loc: tuple[str | int, ...]
    message: str

    @property
    def field(self) -> str:
        return ".".join(str(part) for part in self.loc)


_TYPE_ERRORS = {
    "string_type": str,
    "int_type": int,
    "int_parsing": int,
    "int_from_float": int,
    "float_type": float,
    "float_parsing": float,
    "bool_type": bool,
    "bool_parsing": bool,
    "tuple_type": tuple,
    "list_type": tuple,
    "dict_type": dict,
    "model_type": dict,
    "model_attributes_type": dict,
}
"""pydantic's type errors, by the type each expected (when the model's annotation says no more)."""

_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def field_problem(
    err: ValidationError,
    model: type[BaseModel],
    *,
    unknown: str = "unknown key",
    toml: bool = False,
) -> FieldProblem:
    """The error of ``err`` (raised validating ``model``) to show, in the user's words.

    A mistyped key comes first: pydantic reports ``knd`` as an unknown key and, before it,
    ``kind`` as missing, and the typo is the one to name. ``unknown`` starts the message for an
    unknown key (params say whose they are); ``toml`` names objects as TOML does (tables).
    """
    errors = err.errors()
    missing = [tuple(e["loc"]) for e in errors if e["type"] == "missing"]

    def mistyped(error: ErrorDetails) -> bool:
        loc = tuple(error["loc"])
        near = [str(m[-1]) for m in missing if m[:-1] == loc[:-1]]
        return error["type"] == "extra_forbidden" and bool(did_you_mean(str(loc[-1]), near))

    first = next((e for e in errors if mistyped(e)), errors[0])
    loc = tuple(first["loc"])
    return FieldProblem(loc, _message(first, model, loc, unknown, toml))


def _message(
    error: ErrorDetails,
    model: type[BaseModel],
    loc: tuple[str | int, ...],
    unknown: str,
    toml: bool,
) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error["input"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = list(parent.model_fields) if parent is not None else []
        what = "unknown table" if toml and isinstance(value, dict) else unknown
        hint = did_you_mean(str(loc[-1]), allowed)
        return f"{what}{hint}; allowed: {', '.join(allowed) or 'none'}"
    if kind == "missing":
        table = toml and _model_at(model, loc) is not None
        return f"required {'table' if table else 'key'} is missing"
    if kind in _TYPE_ERRORS:
        annotation = _annotation_at(model, loc)
        expected = _described(annotation, toml) if annotation is not None else None
        if expected is None:
            expected = _described(_TYPE_ERRORS[kind], toml)
        return f"expected {expected}, got {_type_of(value, toml)}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return _length_message(kind, ctx)
    if kind == "literal_error" or kind == "enum":
        return f"must be {ctx['expected']}, not {_shown_value(value)}"
    if kind == "string_pattern_mismatch":
        return f"{_shown_value(value)} does not match the pattern {ctx['pattern']!r}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx[key]}, not {_shown_value(value)}"
    if kind == "value_error":
        return str(ctx["error"])
    return error["msg"]


def _length_message(kind: str, ctx: dict[str, Any]) -> str:
    string = kind.startswith("string")
    if kind.endswith("too_short") and ctx["min_length"] == 1:
        return "must not be empty"
    noun = "character" if string else "item"
    if kind.endswith("too_short"):
        return f"must hold at least {ctx['min_length']} {noun}s"
    return f"must hold at most {ctx['max_length']} {noun}{'' if ctx['max_length'] == 1 else 's'}"


def _unwrapped(annotation: Any) -> Any:
    """The type under ``Annotated[...]`` and under ``X | None``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(kept) == 1:
            return _unwrapped(kept[0])
    return annotation


def _annotation_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The annotation of the value at ``loc`` in ``model``, or None when it cannot be told."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrapped(annotation)
        if isinstance(part, str) and isinstance(annotation, type):
            if not issubclass(annotation, BaseModel) or part not in annotation.model_fields:
                return None
            annotation = annotation.model_fields[part].annotation
        elif isinstance(part, int) and get_origin(annotation) is tuple:
            annotation = get_args(annotation)[0]
        else:
            return None
    return annotation


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    annotation = _unwrapped(_annotation_at(model, loc))
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


_SCALAR_WORDS: dict[object, tuple[str, str]] = {
    str: ("a string", "strings"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    bool: ("true or false", "true or false values"),
}


def _described(annotation: Any, toml: bool, plural: bool = False) -> str | None:
    """A type as the user's format names it: ``a string``, ``an array of strings``."""
    annotation = _unwrapped(annotation)
    origin = get_origin(annotation)
    if origin is tuple or annotation is tuple:
        args = get_args(annotation)
        item = _described(args[0], toml, plural=True) if args else None
        return ("arrays" if plural else "an array") + (f" of {item}" if item else "")
    if (
        origin is dict
        or annotation is dict
        or (isinstance(annotation, type) and issubclass(annotation, BaseModel))
    ):
        noun = "table" if toml else "object"
        return f"{noun}s" if plural else f"a{'n' if noun[0] == 'o' else ''} {noun}"
    scalar = _SCALAR_WORDS.get(annotation)
    return None if scalar is None else scalar[plural]


def _type_of(value: Any, toml: bool) -> str:
    """What the user wrote, by its type's name in the file's format."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date | datetime.time):
        return "a date or time"
    described = _described(type(value) if not isinstance(value, list) else tuple, toml)
    return described or type(value).__name__


def _shown_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)  # quoted as pydantic quotes the expected values: 'pcm', 'opus'
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
