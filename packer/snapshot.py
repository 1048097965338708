"""The snapshot: one immutable, coherent view of registry + declarations + input contents.

Every command and every build reads the workspace through exactly one ``Snapshot``. Its
``fingerprint`` is a digest of content only (registry identities, each asset.json, each input's
xxh3_128), so the same content gives the same fingerprint on any machine and after any history.

Inputs are hashed through the stat cache (``packer.statcache``), which spares re-reading files
whose stat is unchanged and never decides alone.
Generated inputs (files another task of a larger doit graph writes during the build) are hashed
when their assets' tasks run instead (``hash_generated``, ``with_generated_inputs``).
Imports: stdlib, packer.scan, packer.scan.inputs, packer.registry, packer.hashing,
packer.statcache, packer.workspace, packer.fsutil, packer.errors.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from packer.errors import InputError, MissingInputError, PackerError
from packer.fsutil import open_regular
from packer.hashing import hash_parts, hash_stream
from packer.registry import Registry
from packer.scan import Declaration, ScanResult
from packer.scan.inputs import InputChecker
from packer.statcache import FileStat, StatCache
from packer.workspace import STAT_CACHE, Workspace, asset_file


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


def hash_inputs(
    ws: Workspace,
    stats: Mapping[str, FileStat],
    cache: StatCache,
    known: Mapping[str, str] = MappingProxyType({}),
) -> dict[str, str]:
    """xxh3_128 of each input: ``known`` where it has it (``packer watch``: inputs no change
    was seen at since its last snapshot), else from the stat cache where the stat key is
    unchanged, else read."""
    base = os.path.join(ws.root, "")
    return {rel: known.get(rel) or cache.hash(rel, base + rel, stats[rel]) for rel in sorted(stats)}


def fingerprint(registry_identity: str, scan: ScanResult, input_hashes: Mapping[str, str]) -> str:
    """The digest of content a snapshot names: the registry's identities
    (``Registry.identity_hash``: not its advisory content records, so a registry that has or
    has not yet recorded an edit gives the same pack), each asset.json and each input."""
    parts = ["registry", registry_identity]
    for d in scan.decls:
        parts += ["asset", d.path, d.decl_hash]
        for rel in d.inputs:
            parts += [rel, input_hashes.get(rel, "-")]
    return hash_parts(parts)


def open_stat_cache(ws: Workspace, *, partial: bool = False) -> StatCache:
    return StatCache(ws.state_path(STAT_CACHE), partial=partial)


def make_snapshot(
    registry: Registry, registry_hash: str, scan: ScanResult, input_hashes: Mapping[str, str]
) -> Snapshot:
    return Snapshot(
        registry,
        registry_hash,
        scan,
        input_hashes,
        fingerprint(registry.identity_hash, scan, input_hashes),
    )


def hash_generated(
    root: str, decls: Sequence[Declaration], generated: Collection[str]
) -> dict[str, str]:
    """xxh3_128 of the inputs of ``decls`` that are in ``generated`` (inputs another task of a
    larger graph writes during the build), read now. Every input of ``decls`` is checked as a
    scan checks it (inside the workspace, a regular file); the first problem is raised."""
    base = os.path.join(root, "")
    checker = InputChecker(base, os.path.join(os.path.realpath(root), ""))
    problems: list[PackerError] = []
    for d in decls:
        checker.check(d, asset_file(d.path), problems)
    if problems:
        raise problems[0]
    hashes: dict[str, str] = {}
    for d in decls:
        for rel in d.inputs:
            if rel in generated and rel not in hashes:
                try:
                    with os.fdopen(open_regular(base + rel), "rb") as handle:
                        hashes[rel] = hash_stream(handle)
                except OSError as err:
                    raise InputError(f"cannot be read: {err.strerror}", rel) from None
    return hashes


def with_generated_inputs(snapshot: Snapshot, hashes: Mapping[str, str]) -> Snapshot:
    """``snapshot`` once generated inputs exist, ``hashes`` their xxh3_128: hashed, and no
    longer reported missing. The same content gives the snapshot a scan would then take."""
    scan = snapshot.scan
    problems = tuple(
        p
        for p in scan.problems
        if not (isinstance(p, MissingInputError) and p.input_path in hashes)
    )
    scan = dataclasses.replace(scan, problems=problems)
    merged = {**snapshot.input_hashes, **hashes}
    return make_snapshot(snapshot.registry, snapshot.registry_hash, scan, merged)
