"""The snapshot: one immutable, coherent view of registry + declarations + input contents.

Every command and every build reads the workspace through exactly one ``Snapshot``. Its
``fingerprint`` is a digest of content only (registry text, each asset.json, each input's
xxh3_128), so the same content gives the same fingerprint on any machine and after any history.

Inputs are hashed through the stat cache (``packer.statcache``), which spares re-reading files
whose stat is unchanged and never decides alone.
Imports: stdlib, packer.scan, packer.registry, packer.hashing, packer.statcache, packer.workspace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from packer.hashing import hash_parts
from packer.registry import Registry
from packer.scan import ScanResult
from packer.statcache import FileStat, StatCache
from packer.workspace import STAT_CACHE, Workspace


@dataclass(frozen=True)
class Snapshot:
    """What one command or build sees. Never mutated; a new state of the workspace is a new one."""

    registry: Registry
    registry_hash: str
    """xxh3_128 of registry.json's text: names the registry this snapshot read."""
    scan: ScanResult
    input_hashes: Mapping[str, str]
    """xxh3_128 of every existing input, by workspace-relative path (read-only)."""
    fingerprint: str

    def __post_init__(self) -> None:
        # A read-only view of a private copy: neither the caller's dict nor the snapshot's
        # users can change what this snapshot saw.
        object.__setattr__(self, "input_hashes", MappingProxyType(dict(self.input_hashes)))

    def __reduce__(self) -> tuple[object, ...]:
        # Mapping proxies do not pickle: rebuild from a plain copy (``__post_init__`` wraps it).
        fields = (self.registry, self.registry_hash, self.scan, dict(self.input_hashes))
        return (Snapshot, (*fields, self.fingerprint))


def hash_inputs(ws: Workspace, stats: Mapping[str, FileStat], cache: StatCache) -> dict[str, str]:
    """xxh3_128 of each input, reusing the stat cache where the stat key is unchanged."""
    base = os.path.join(ws.root, "")
    return {rel: cache.hash(rel, base + rel, stats[rel]) for rel in sorted(stats)}


def fingerprint(registry_hash: str, scan: ScanResult, input_hashes: Mapping[str, str]) -> str:
    parts = ["registry", registry_hash]
    for d in scan.decls:
        parts += ["asset", d.path, d.decl_hash]
        for rel in d.inputs:
            parts += [rel, input_hashes.get(rel, "-")]
    return hash_parts(parts)


def open_stat_cache(ws: Workspace) -> StatCache:
    return StatCache(ws.state_path(STAT_CACHE))


def take_snapshot(
    ws: Workspace, registry: Registry, registry_hash: str, scan: ScanResult, cache: StatCache
) -> Snapshot:
    """Hash the scanned inputs (through ``cache``, which is then saved) into a snapshot."""
    hashes = hash_inputs(ws, scan.input_stats, cache)
    cache.save()
    return Snapshot(registry, registry_hash, scan, hashes, fingerprint(registry_hash, scan, hashes))
