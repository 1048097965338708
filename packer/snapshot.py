"""The snapshot: one immutable, coherent view of registry + declarations + input contents.

Every command and every build reads the workspace through exactly one ``Snapshot``. Its
``fingerprint`` is a digest of content only (registry text, each asset.json, each input's
xxh3_128), so the same content gives the same fingerprint on any machine and after any history.

The stat cache under ``.packer/`` spares re-reading inputs whose (size, mtime, ctime, inode) are
unchanged. It never decides alone: ctime changes whenever content or mtime is written (even when
mtime is put back), files touched within ``_RACY_NS`` of the scan are never cached (git's "racily
clean" rule), and deleting the cache only costs the time to hash again.
Imports: stdlib, packer.scan, packer.registry, packer.hashing, packer.fsutil, packer.workspace.
"""

from __future__ import annotations

import marshal
import time
from collections.abc import Mapping
from dataclasses import dataclass

from packer.fsutil import atomic_write
from packer.hashing import hash_file, hash_parts
from packer.registry import Registry
from packer.scan import FileStat, ScanResult
from packer.workspace import Workspace

STAT_CACHE_FILE = "statcache"
_STAT_CACHE_VERSION = 1
_RACY_NS = 2_000_000_000

_CacheEntry = tuple[int, int, int, int, str]


@dataclass(frozen=True)
class Snapshot:
    """What one command or build sees. Never mutated; a new state of the workspace is a new one."""

    registry: Registry
    registry_hash: str
    """xxh3_128 of registry.json's text: names the registry this snapshot read."""
    scan: ScanResult
    input_hashes: Mapping[str, str]
    """xxh3_128 of every existing input, by workspace-relative path."""
    fingerprint: str


def _load_stat_cache(path: str) -> dict[str, _CacheEntry]:
    try:
        with open(path, "rb") as handle:
            version, entries = marshal.load(handle)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return entries if version == _STAT_CACHE_VERSION and isinstance(entries, dict) else {}


def hash_inputs(ws: Workspace, stats: Mapping[str, FileStat]) -> dict[str, str]:
    """xxh3_128 of each input, reusing the stat cache where the stat key is unchanged."""
    cache_path = ws.state_path(STAT_CACHE_FILE)
    cache = _load_stat_cache(cache_path)
    racy_after = time.time_ns() - _RACY_NS
    hashes: dict[str, str] = {}
    fresh: dict[str, _CacheEntry] = {}
    for rel in sorted(stats):
        st = stats[rel]
        cached = cache.get(rel)
        if cached is not None and cached[:4] == (st.size, st.mtime_ns, st.ctime_ns, st.ino):
            digest = cached[4]
        else:
            digest = hash_file(ws.abspath(rel))
        hashes[rel] = digest
        if st.mtime_ns < racy_after and st.ctime_ns < racy_after:
            fresh[rel] = (st.size, st.mtime_ns, st.ctime_ns, st.ino, digest)
    if fresh != cache:
        atomic_write(cache_path, marshal.dumps((_STAT_CACHE_VERSION, fresh)), durable=False)
    return hashes


def fingerprint(registry_hash: str, scan: ScanResult, input_hashes: Mapping[str, str]) -> str:
    parts = ["registry", registry_hash]
    for d in scan.decls:
        parts += ["asset", d.path, d.decl_hash]
        for rel in d.inputs:
            parts += [rel, input_hashes.get(rel, "-")]
    return hash_parts(parts)


def take_snapshot(
    ws: Workspace, registry: Registry, registry_hash: str, scan: ScanResult
) -> Snapshot:
    hashes = hash_inputs(ws, scan.input_stats)
    return Snapshot(registry, registry_hash, scan, hashes, fingerprint(registry_hash, scan, hashes))
