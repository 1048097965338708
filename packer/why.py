"""Why an asset's task is not up to date: the parts of its key, recorded at success, and what
differs from them now, in words.

When an ``asset:<id>`` task succeeds, doit saves (beside the task key, ``packer.doit``) the
parts that went into the key as one compact JSON string (``key_parts``): the key version, the
asset.json hash, the kind and its fingerprint, the params, each input by name with its hash and
each dep by name with its output digest. Hashes are kept to ``SHORT`` hex digits: they only say
*which* part changed, the full key still decides. One string per task keeps doit's record cheap
to parse on a no-op, where nothing here runs.

``differences`` names what changed between a recorded string and the parts of now: doit's
``info`` shows it through the uptodate check's ``__str__`` (``packer.doit``) and ``explain``
(``packer why``) prints it.
Imports: stdlib, doit (its JSON codec, lazily), packer.doitdb, packer.errors, packer.hashing,
packer.keys, packer.kinds, packer.lane, packer.model, packer.plan (the ``AssetTask`` value),
packer.registry, packer.scan, packer.snapshot, packer.statcache, packer.workspace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packer.doitdb import RecordDB
from packer.errors import PackerError
from packer.hashing import hash_bytes
from packer.keys import KEY_VERSION, completed, output_key, recorded_dep_digests, task_key
from packer.kinds.registry import load_kinds
from packer.lane import read_coherently
from packer.model import RegistryEntry
from packer.plan import AssetTask
from packer.registry import Registry
from packer.scan import Declaration, ScanResult, scan
from packer.snapshot import open_stat_cache
from packer.statcache import StatCache
from packer.workspace import ASSET_FILE, Workspace, asset_file

KEY_VALUE = "packer-key"
"""The task's key in doit's saved values (what the uptodate check compares)."""
PARTS_VALUE = "packer-why"
"""The key's parts in doit's saved values (``key_parts``)."""
SHORT = 8
"""Hex digits kept of each hash in the parts: enough to tell which part changed."""
_PARAMS_KEPT = 120
"""Canonical params up to this length are kept whole, so a change names the param."""


def _short(digest: str) -> str:
    return digest[:SHORT]


def key_parts(task: AssetTask, dep_digests: Sequence[str]) -> str:
    """The parts of ``task``'s key (its deps' output digests in declared order) as one string."""
    decl = task.decl
    params = decl.params_json
    parts = [
        KEY_VERSION,
        _short(decl.decl_hash),
        decl.kind,
        decl.kind_fingerprint,
        params if len(params) <= _PARAMS_KEPT else "#" + _short(hash_bytes(params.encode())),
        [[name, _short(h)] for name, h in zip(decl.input_names, task.input_hashes, strict=True)],
        [[name, _short(d)] for name, d in zip(decl.deps, dep_digests, strict=True)],
    ]
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class _Parts:
    key_version: str
    decl: str
    kind: str
    fingerprint: str
    params: str
    inputs: tuple[tuple[str, str], ...]
    deps: tuple[tuple[str, str], ...]


def _parse(text: object) -> _Parts | None:
    """The parts a record holds; None when it holds none (an older record, a damaged one)."""
    try:
        version, decl, kind, fingerprint, params, inputs, deps = json.loads(str(text))
        return _Parts(
            str(version),
            str(decl),
            str(kind),
            str(fingerprint),
            str(params),
            tuple((str(n), str(h)) for n, h in inputs),
            tuple((str(n), str(d)) for n, d in deps),
        )
    except (ValueError, TypeError):
        return None


def _named(
    before: Sequence[tuple[str, str]], now: Sequence[tuple[str, str]], changed: str, what: str
) -> list[str]:
    """What changed in a list of (name, hash): each changed name (``changed`` spells it), each
    added and each removed one."""
    old, new = dict(before), dict(now)
    lines = [changed.format(repr(n)) for n, h in now if n in old and old[n] != h]
    lines += [f"{what} {n!r} added" for n, _ in now if n not in old]
    lines += [f"{what} {n!r} removed" for n, _ in before if n not in new]
    return lines


def _params_change(before: str, now: str) -> str:
    try:
        old, new = json.loads(before), json.loads(now)
    except ValueError:  # one of them kept only as a hash
        return "params changed"
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return "params changed"
    names = sorted(k for k in old.keys() | new.keys() if old.get(k, ...) != new.get(k, ...))
    return f"params changed: {', '.join(names)}"


def differences(recorded: object, now: str) -> list[str]:
    """Every part that differs between the parts ``recorded`` at the last success and ``now``
    (both ``key_parts`` strings), most telling first; never empty."""
    old, new = _parse(recorded), _parse(now)
    if old is None or new is None:
        return ["its key changed (its last build recorded no parts to compare)"]
    if old.key_version != new.key_version:
        return [f"packer's key format changed ({old.key_version} -> {new.key_version})"]
    lines = _named(old.inputs, new.inputs, "input {} changed", "input")
    if old.kind != new.kind:
        lines.append(f"kind changed: {old.kind} -> {new.kind}")
    elif old.fingerprint != new.fingerprint:
        lines.append(f"kind {new.kind}'s version changed: {old.fingerprint} -> {new.fingerprint}")
    if old.params != new.params:
        lines.append(_params_change(old.params, new.params))
    lines += _named(old.deps, new.deps, "the output of dep {} changed", "dep")
    if old.decl != new.decl:
        lines.append("asset.json changed")
    return lines or ["its key changed"]


def reasons(values: Mapping[str, Any], now: str) -> list[str]:
    """Why a task whose saved doit ``values`` do not match its key is not up to date."""
    if KEY_VALUE not in values:
        return ["never built"]
    return differences(values.get(PARTS_VALUE), now)


@dataclass(frozen=True)
class Why:
    """``packer why``'s answer for one asset."""

    asset_id: str | None
    """None for an asset not registered yet."""
    asset_name: str
    path: str
    up_to_date: bool
    reasons: tuple[str, ...]
    """Empty exactly when up to date."""


def explain(ws: Workspace, asset: str) -> Why:
    """Whether ``asset`` (an asset_name, asset_id or asset folder, a path relative to the
    current folder) is up to date in doit's record of ``ws``, and every reason it is not.

    It reads as a build would (one coherent registry and scan, input hashes through the stat
    cache) and writes nothing but that cache. An asset it does not know is a ``PackerError``.
    """
    kinds = load_kinds()
    cache = open_stat_cache(ws)
    registry, result = read_coherently(ws, lambda reg, _: (reg, scan(ws, kinds, cache)))
    answer = _Explainer(ws, registry, result, cache, _record(ws)).explain(asset)
    cache.save()
    return answer


def _record(ws: Workspace) -> RecordDB:
    from doit.dependency import JSONCodec  # doit's own codec: the record is doit's format

    return RecordDB(ws.doit_record_path, JSONCodec())


class _Explainer:
    def __init__(
        self,
        ws: Workspace,
        registry: Registry,
        result: ScanResult,
        cache: StatCache,
        record: RecordDB,
    ) -> None:
        self.ws = ws
        self.registry = registry
        self.scan = result
        self.cache = cache
        self.record = record
        self.by_name = {d.asset_name: d for d in result.decls}
        self.by_path = {d.path: d for d in result.decls}
        self.answers: dict[str, Why] = {}

    def explain(self, asset: str) -> Why:
        decl, entry = self._find(asset)
        return self._answer(decl, entry)

    def _find(self, asset: str) -> tuple[Declaration | None, RegistryEntry | None]:
        entry = self.registry.by_id.get(asset)
        if entry is not None:
            return self.by_path.get(entry.path), entry
        decl = self.by_name.get(asset)
        if decl is None:
            rel = self.ws.relpath(asset)
            rel = rel[: -len(ASSET_FILE) - 1] if rel.endswith("/" + ASSET_FILE) else rel
            decl = self.by_path.get(rel)
            entry = self.registry.by_path.get(rel)
        if decl is not None:
            return decl, self.registry.by_path.get(decl.path)
        if entry is None:
            # A registered asset whose folder is gone is still known by its name.
            entry = next((e for e in self.registry.entries if e.asset_name == asset), None)
        if entry is None:
            raise PackerError(
                f"unknown asset {asset!r}: not an asset_name, asset_id or asset folder here", "."
            )
        return None, entry

    def _answer(self, decl: Declaration | None, entry: RegistryEntry | None) -> Why:
        path = decl.path if decl is not None else entry.path if entry is not None else ""
        known = self.answers.get(path)
        if known is None:
            known = self.answers[path] = self._why(decl, entry)
        return known

    def _why(self, decl: Declaration | None, entry: RegistryEntry | None) -> Why:
        if entry is None:
            assert decl is not None
            never = ("never built: not registered yet",)
            return Why(None, decl.asset_name, decl.path, False, never)
        if decl is None:
            broken = [str(e) for e in self.scan.broken if e.path == asset_file(entry.path)]
            gone = broken or [f"its folder {entry.path} is missing (a build retires it)"]
            return Why(entry.asset_id, entry.asset_name, entry.path, False, tuple(gone))
        lines = self._blocked(decl)
        if not lines:
            lines = self._against_record(decl, entry.asset_id)
        return Why(entry.asset_id, decl.asset_name, decl.path, not lines, tuple(lines))

    def _blocked(self, decl: Declaration) -> list[str]:
        """What stops the asset from building at all, in words."""
        lines = [f"cannot build: {p}" for p in self.scan.all_problems if p.path == decl.asset_file]
        for name in decl.deps:
            dep = self.by_name.get(name)
            if dep is None or dep.path not in self.registry.by_path:
                lines.append(f"dep {name!r} is not registered yet: it has never been built")
        return lines

    def _against_record(self, decl: Declaration, asset_id: str) -> list[str]:
        deps = [self.by_name[name] for name in decl.deps]
        dep_ids = tuple(self.registry.by_path[d.path].asset_id for d in deps)
        stats = self.scan.input_stats
        hashes = tuple(self.cache.hash(r, self.ws.abspath(r), stats[r]) for r in decl.inputs)
        output = output_key(decl, hashes)
        task = AssetTask(decl, asset_id, hashes, dep_ids, output, task_key(decl, output))
        lines: list[str] = []
        digests: list[str] = []
        for dep, dep_id in zip(deps, dep_ids, strict=True):
            digest = recorded_dep_digests([self.ws.artifact_path(dep_id)])
            if digest is None:
                lines.append(f"dep {dep.asset_name!r} has no output yet: it builds first")
            else:
                digests += digest
            if not self._answer(dep, self.registry.by_path[dep.path]).up_to_date:
                lines.append(
                    f"dep {dep.asset_name!r} is not up to date: it builds first, and this "
                    "asset rebuilds if its output changes"
                )
        name = f"asset:{asset_id}"
        if self.record.get(name, "ignore:"):
            lines.insert(0, "ignored (`doit ignore`): doit skips it until `doit forget`")
        if len(digests) < len(deps):
            return lines
        values = self.record.get(name, "_values_:") or {}
        if values.get(KEY_VALUE) != completed(task.task_key, digests):
            return reasons(values, key_parts(task, digests)) + lines
        artifact = self.ws.artifact_path(asset_id)
        if not os.path.isfile(artifact):
            lines.insert(0, f"its output {self.ws.relpath(artifact)} is missing")
        return lines
