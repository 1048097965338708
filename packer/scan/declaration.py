"""The scan's values: one checked asset.json (``Declaration``) and one whole scan (``ScanResult``).

Both are frozen, and their maps are read-only views (``types.MappingProxyType``), so a value
handed to the snapshot, the plan or a build cannot be changed under the ones that share it.
Imports: stdlib, packer.statcache, packer.workspace, packer.errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from packer.errors import PackerError
from packer.statcache import FileStat
from packer.workspace import asset_file


@dataclass(frozen=True, slots=True)
class Declaration:
    """One checked asset.json: its fields, its content hash, its inputs resolved."""

    path: str
    """The asset folder, workspace-relative, POSIX."""
    asset_name: str
    kind: str
    input_names: tuple[str, ...]
    """Inputs as written in asset.json (relative to the asset folder): what the kind sees."""
    deps: tuple[str, ...]
    """The asset_names of the deps, in declared order."""
    decl_hash: str
    """xxh3_128 of the asset.json bytes."""
    inputs: tuple[str, ...]
    """Workspace-relative POSIX paths of the inputs, in declared order."""
    kind_fingerprint: str
    """The kind's version and the versions of the libraries it declares
    (``packer.keys.kind_fingerprint``); empty when the kind is unknown (a problem says so)."""
    params_json: str
    """Canonical JSON of the params after the kind's validation (defaults filled in)."""

    @property
    def asset_file(self) -> str:
        return asset_file(self.path)


@dataclass(frozen=True)
class ScanResult:
    decls: tuple[Declaration, ...]
    """Every asset.json whose identity fields parsed, sorted by path."""
    broken: tuple[PackerError, ...]
    """Problems that hide an asset's identity; they block a registry sync."""
    broken_paths: frozenset[str]
    """Asset folders whose asset.json exists but could not be read as a declaration."""
    problems: tuple[PackerError, ...]
    """Problems that block a build but not a sync, sorted by path."""
    input_stats: Mapping[str, FileStat]
    """Stat of every existing input, by workspace-relative path (a read-only view)."""

    def __post_init__(self) -> None:
        # A read-only view of a private copy: neither the scanner's dict nor the result's
        # users can change what this scan saw.
        object.__setattr__(self, "input_stats", MappingProxyType(dict(self.input_stats)))

    def __reduce__(self) -> tuple[object, ...]:
        # Mapping proxies do not pickle: rebuild from a plain copy (``__post_init__`` wraps it).
        fields = (self.decls, self.broken, self.broken_paths, self.problems)
        return (ScanResult, (*fields, dict(self.input_stats)))

    @property
    def all_problems(self) -> tuple[PackerError, ...]:
        return tuple(sorted(self.broken + self.problems, key=problem_order))


def problem_order(err: PackerError) -> tuple[str, int, int, str]:
    return (err.path, err.line or 0, err.col or 0, err.message)
