"""Pydantic models of the files people and packer write: packer.toml, asset.json, registry.json.

These are the file boundaries; past them packer works with the validated, frozen values.
Imports: stdlib, pydantic.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, field_validator

REGISTRY_FORMAT = 1

# Fields that registry.json owns: an asset.json holding one is refused with a reason, not merely
# as an unknown key, because copying an id into authoring files would defeat merge-safe identity.
REGISTRY_OWNED_FIELDS = ("asset_id",)

ASSET_ID_PATTERN = r"^[0-9a-f]{16}$"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class WorkspaceSection(BaseModel):
    """The ``[workspace]`` table of packer.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Pack name: the pack is <out>/<name>.pack.")
    assets: tuple[NonEmpty, ...] = Field(
        default=("assets",), min_length=1, description="Folders scanned for asset.json."
    )
    out: NonEmpty = Field(default="build", description="Output folder.")

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
            if posixpath.isabs(item) or norm == ".." or norm.startswith("../"):
                raise ValueError(f"{item!r} must be a folder inside the workspace")
        return value


class Config(BaseModel):
    """packer.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace: WorkspaceSection


class AssetDecl(BaseModel):
    """asset.json: what a person intends for one asset. Never holds registry-owned fields."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="packer asset.json",
        json_schema_extra={"additionalProperties": False},
    )

    asset_name: NonEmpty = Field(
        description="Unique name of the asset in the workspace; may change at any time."
    )
    kind: NonEmpty = Field(description="The processor: raw, text, json, image, audio or a plug-in.")
    inputs: tuple[NonEmpty, ...] = Field(
        min_length=1, description="Input files, relative to the asset folder."
    )
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="Options of the kind; validated by the kind."
    )
    deps: tuple[NonEmpty, ...] = Field(
        default=(), description="asset_names of assets that must be built first."
    )


class RegistryEntry(BaseModel):
    """One registered asset: its managed id, where it lives and what it is called."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_id: Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
    asset_name: NonEmpty
    path: NonEmpty


class RegistryFile(BaseModel):
    """registry.json as it is on disk. Key order here is the key order written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1]
    assets: tuple[RegistryEntry, ...]
    retired: tuple[Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)], ...]
