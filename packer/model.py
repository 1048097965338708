"""Pydantic models of the files people and packer write: packer.toml, asset.json, registry.json.

These are the file boundaries; past them packer works with the validated, frozen values.
Imports: stdlib, pydantic.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

REGISTRY_FORMAT = 1

# Fields that registry.json owns: an asset.json holding one is refused with a reason, not merely
# as an unknown key, because copying an id into authoring files would defeat merge-safe identity.
REGISTRY_OWNED_FIELDS = ("asset_id",)

ASSET_ID_PATTERN = r"^[0-9a-f]{16}$"
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
    """One registered asset: its managed id, where it lives and what it is called."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_id: Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
    asset_name: Name
    path: WorkspacePath


class RegistryFile(BaseModel):
    """registry.json as it is on disk. Key order here is the key order written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Annotated[Literal[1], BeforeValidator(_strict_int)]
    assets: tuple[RegistryEntry, ...]
    retired: tuple[Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)], ...]
