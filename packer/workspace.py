"""Finding a workspace and naming its paths.

The root is found like git finds its own: the nearest folder, from the start folder upward, that
holds packer.toml (or the folder given with ``-C``). Every other path packer uses is derived here
from the names in ``packer.layout``, so no other module spells ``.packer`` or ``build``.

packer.toml is read through ``fsutil.read_regular`` with a limit of ``CONFIG_LIMIT`` (1 MiB): a
FIFO, a device or a folder in its place is refused without blocking, and no config is read
past the limit. Asset roots may nest (``assets = ["assets", "assets/sprites"]``): the scan
walks a root inside another once, as a root of its own.
Imports: stdlib, packer.layout, packer.model, packer.fsutil, packer.errors.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass

from pydantic import ValidationError

from packer.errors import ConfigError
from packer.fsutil import read_regular

# The names live in packer.layout (stdlib only); every module takes them from here.
from packer.layout import (
    ARTIFACTS,
    ASSET_FILE,
    BUILD_HOLDER,
    BUILD_LOCK,
    CONFIG_FILE,
    CONFIG_LIMIT,
    DECL_CACHE,
    DOIT_RECORD,
    LANE_HOLDER,
    LANE_LOCK,
    LAST_BUILD,
    OUTPUT_CACHE,
    PACK_RECORD,
    REGISTRY_FILE,
    STAT_CACHE,
    STAT_RECORD,
    STATE_DIR,
    find_root,
)
from packer.model import Config, field_problem


def cached_output_path(cache_dir: str, output_key: str) -> str:
    """Where the output cache (``Workspace.output_cache_dir``) keeps the output under a completed
    output key: ``<2 hex>/<key>``, so no folder holds more than 1/256 of the entries."""
    return os.path.join(cache_dir, output_key[:2], output_key)


def asset_file(folder: str) -> str:
    """Workspace-relative path of the asset.json of an asset folder (``.``: the root's own)."""
    return ASSET_FILE if folder == "." else f"{folder}/{ASSET_FILE}"


@dataclass(frozen=True)
class Workspace:
    """A located workspace: its absolute root, its validated config and where state and outputs go.

    ``state_dir`` and ``out_dir`` default to ``<root>/.packer`` and ``<root>/<out>``; a host graph
    may put them elsewhere (to build a checked-in workspace without writing into it).
    """

    root: str
    config: Config
    state_dir: str
    out_dir: str

    @property
    def name(self) -> str:
        return self.config.workspace.name

    def abspath(self, rel: str) -> str:
        """Absolute path of a workspace-relative POSIX path."""
        return os.path.join(self.root, *rel.split("/")) if rel not in ("", ".") else self.root

    def relpath(self, path: str) -> str:
        """Workspace-relative POSIX form of an absolute or cwd-relative path."""
        rel = os.path.relpath(os.path.abspath(path), self.root)
        return "." if rel == "." else rel.replace(os.sep, "/")

    @property
    def registry_path(self) -> str:
        return os.path.join(self.root, REGISTRY_FILE)

    @property
    def out_rel(self) -> str:
        """The configured output folder, workspace-relative (skipped by the scan)."""
        return os.path.normpath(self.config.workspace.out).replace(os.sep, "/")

    @property
    def pack_path(self) -> str:
        return os.path.join(self.out_dir, f"{self.name}.pack")

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.out_dir, f"{self.name}.manifest.json")

    @property
    def artifacts_dir(self) -> str:
        return os.path.join(self.out_dir, ARTIFACTS)

    def artifact_path(self, asset_id: str) -> str:
        """Where an asset's artifact is written: ``<out>/assets/<asset_id>.bin``."""
        return os.path.join(self.out_dir, ARTIFACTS, f"{asset_id}.bin")

    @property
    def doit_record_path(self) -> str:
        """doit's record of the tasks' last successful keys (``packer.doitdb``'s format)."""
        return os.path.join(self.state_dir, DOIT_RECORD)

    @property
    def output_cache_dir(self) -> str:
        return os.path.join(self.state_dir, OUTPUT_CACHE)

    @property
    def asset_roots(self) -> tuple[str, ...]:
        return tuple(
            sorted({os.path.normpath(a).replace(os.sep, "/") for a in self.config.workspace.assets})
        )

    def state_path(self, name: str) -> str:
        """A file under ``.packer/``, creating the folder on first use."""
        try:
            os.makedirs(self.state_dir, exist_ok=True)
        except OSError as err:
            # Most often a file of that name: say which path packer needs as its state folder.
            reason = "exists and is not a folder" if isinstance(err, FileExistsError) else None
            raise ConfigError(
                f"cannot use it as packer's state folder: {reason or err.strerror}",
                self.relpath(self.state_dir),
            ) from None
        return os.path.join(self.state_dir, name)


def load_config(root: str) -> Config:
    path = os.path.join(root, CONFIG_FILE)
    try:
        data = tomllib.loads(read_regular(path, CONFIG_LIMIT).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError("no packer.toml here", CONFIG_FILE) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", CONFIG_FILE) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason})", CONFIG_FILE) from None
    except tomllib.TOMLDecodeError as err:
        line, col = _toml_position(str(err))
        raise ConfigError(f"invalid TOML: {err}", CONFIG_FILE, line, col) from None
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        problem = field_problem(err, Config, toml=True)
        raise ConfigError(problem.message, CONFIG_FILE, field=problem.field) from None


def _toml_position(message: str) -> tuple[int | None, int | None]:
    # tomllib reports "(at line L, column C)" in its message and nowhere else.
    import re

    match = re.search(r"at line (\d+), column (\d+)", message)
    return (int(match[1]), int(match[2])) if match else (None, None)


def open_workspace(
    directory: str | None = None,
    *,
    search_up: bool = True,
    state_dir: str | None = None,
    out_dir: str | None = None,
) -> Workspace:
    """The workspace at ``directory`` (default: the current folder), searching upward if asked."""
    start = os.path.abspath(directory or os.getcwd())
    if not os.path.isdir(start):
        raise ConfigError("no such folder", directory or ".")
    root = find_root(start) if search_up else start
    config = load_config(root)
    return Workspace(
        root=root,
        config=config,
        state_dir=os.path.abspath(state_dir or os.path.join(root, STATE_DIR)),
        out_dir=os.path.abspath(out_dir or os.path.join(root, config.workspace.out)),
    )


__all__ = [
    "ARTIFACTS",
    "ASSET_FILE",
    "BUILD_HOLDER",
    "BUILD_LOCK",
    "CONFIG_FILE",
    "CONFIG_LIMIT",
    "DECL_CACHE",
    "DOIT_RECORD",
    "LANE_HOLDER",
    "LANE_LOCK",
    "LAST_BUILD",
    "OUTPUT_CACHE",
    "PACK_RECORD",
    "REGISTRY_FILE",
    "STATE_DIR",
    "STAT_CACHE",
    "STAT_RECORD",
    "Workspace",
    "asset_file",
    "cached_output_path",
    "find_root",
    "load_config",
    "open_workspace",
]
