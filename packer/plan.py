"""Pure planning over a snapshot: reconciliation, sync changes, the dependency graph, task keys.

Nothing here touches the file system or the clock; every function takes values and returns
values, sorted by asset_id or path, so planning is deterministic and cheap to test.
Imports: stdlib, packer.snapshot, packer.scan, packer.registry, packer.model, packer.hashing,
packer.errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packer.errors import PackerError, RegistryError
from packer.hashing import hash_parts
from packer.model import RegistryEntry
from packer.registry import Registry, new_asset_id
from packer.scan import Declaration, ScanResult
from packer.snapshot import Snapshot
from packer.workspace import asset_file

# Part of every pack key: bump when the pack writer's output changes for the same entries.
PACK_LAYOUT_VERSION = "1"


@dataclass(frozen=True)
class NewAsset:
    path: str
    asset_name: str


@dataclass(frozen=True)
class MissingAsset:
    asset_id: str
    asset_name: str
    path: str


@dataclass(frozen=True)
class MovedAsset:
    asset_id: str
    asset_name: str
    from_path: str
    to_path: str


@dataclass(frozen=True)
class RenamedAsset:
    asset_id: str
    path: str
    old_name: str
    new_name: str


@dataclass(frozen=True)
class AmbiguousMove:
    """Several missing entries or new folders share one asset_name: packer will not guess."""

    asset_name: str
    missing: tuple[str, ...]
    """asset_ids of the missing entries."""
    new: tuple[str, ...]
    """Paths of the new folders."""


@dataclass(frozen=True)
class Status:
    """How the workspace and the registry differ, and what is invalid."""

    registered: int
    new: tuple[NewAsset, ...]
    missing: tuple[MissingAsset, ...]
    moved: tuple[MovedAsset, ...]
    renamed: tuple[RenamedAsset, ...]
    ambiguous: tuple[AmbiguousMove, ...]
    broken: tuple[PackerError, ...]
    """Problems that hide identity (block sync)."""
    invalid: tuple[PackerError, ...]
    """Every problem, broken ones included, sorted by path."""

    @property
    def in_sync(self) -> bool:
        return not (self.new or self.missing or self.moved or self.renamed or self.ambiguous)

    @property
    def ok(self) -> bool:
        return self.in_sync and not self.invalid


def reconcile(registry: Registry, scan: ScanResult) -> Status:
    decls = {d.path: d for d in scan.decls}
    renamed: list[RenamedAsset] = []
    missing_by_name: dict[str, list[RegistryEntry]] = {}
    for entry in registry.entries:
        decl = decls.get(entry.path)
        if decl is not None:
            if decl.asset_name != entry.asset_name:
                renamed.append(
                    RenamedAsset(entry.asset_id, entry.path, entry.asset_name, decl.asset_name)
                )
        elif entry.path not in scan.broken_paths:
            missing_by_name.setdefault(entry.asset_name, []).append(entry)
    new_by_name: dict[str, list[Declaration]] = {}
    for d in scan.decls:
        if d.path not in registry.by_path:
            new_by_name.setdefault(d.asset_name, []).append(d)

    new: list[NewAsset] = []
    missing: list[MissingAsset] = []
    moved: list[MovedAsset] = []
    ambiguous: list[AmbiguousMove] = []
    for name in sorted(set(missing_by_name) | set(new_by_name)):
        gone, fresh = missing_by_name.get(name, []), new_by_name.get(name, [])
        if len(gone) == 1 and len(fresh) == 1:
            moved.append(MovedAsset(gone[0].asset_id, name, gone[0].path, fresh[0].path))
        elif gone and fresh:
            ambiguous.append(
                AmbiguousMove(
                    name,
                    tuple(sorted(e.asset_id for e in gone)),
                    tuple(sorted(d.path for d in fresh)),
                )
            )
        else:
            missing += [MissingAsset(e.asset_id, e.asset_name, e.path) for e in gone]
            new += [NewAsset(d.path, name) for d in fresh]
    return Status(
        registered=len(registry.entries),
        new=tuple(sorted(new, key=lambda a: a.path)),
        missing=tuple(sorted(missing, key=lambda a: a.asset_id)),
        moved=tuple(sorted(moved, key=lambda a: a.asset_id)),
        renamed=tuple(sorted(renamed, key=lambda a: a.asset_id)),
        ambiguous=tuple(ambiguous),
        broken=scan.broken,
        invalid=scan.all_problems,
    )


def sync_registry(registry: Registry, status: Status) -> Registry:
    """The registry after registering new assets, applying moves and renames, retiring missing.

    Refuses (changing nothing) while any asset.json hides its identity or a move is ambiguous:
    retiring an id because its folder was moved *and* broken at once would lose the identity.
    """
    if status.broken:
        raise status.broken[0]
    if status.ambiguous:
        amb = status.ambiguous[0]
        raise RegistryError(
            f"ambiguous move of asset_name {amb.asset_name!r}: missing ids "
            f"{', '.join(amb.missing)}; new folders {', '.join(amb.new)}; "
            "use `packer mv` or make the names unique",
            amb.new[0],
        )
    taken = set(registry.taken_ids())
    upsert: list[RegistryEntry] = []
    for new in status.new:
        asset_id = new_asset_id(taken)
        taken.add(asset_id)
        upsert.append(RegistryEntry(asset_id=asset_id, asset_name=new.asset_name, path=new.path))
    for move in status.moved:
        upsert.append(
            RegistryEntry(asset_id=move.asset_id, asset_name=move.asset_name, path=move.to_path)
        )
    for rename in status.renamed:
        upsert.append(
            RegistryEntry(asset_id=rename.asset_id, asset_name=rename.new_name, path=rename.path)
        )
    return registry.replace(upsert=upsert, retire=(m.asset_id for m in status.missing))


def drift_errors(status: Status) -> list[PackerError]:
    """One error per difference between workspace and registry, for frozen mode."""
    hint = "(frozen: run `packer sync` and commit registry.json)"
    errors: list[PackerError] = []
    errors += [
        RegistryError(f"asset {n.asset_name!r} is not registered {hint}", asset_file(n.path))
        for n in status.new
    ]
    errors += [
        RegistryError(f"registered asset {m.asset_id} is missing {hint}", m.path)
        for m in status.missing
    ]
    errors += [
        RegistryError(f"asset {m.asset_id} moved from {m.from_path} {hint}", m.to_path)
        for m in status.moved
    ]
    errors += [
        RegistryError(f"asset {r.asset_id} renamed from {r.old_name!r} {hint}", r.path)
        for r in status.renamed
    ]
    errors += [
        RegistryError(f"ambiguous move of {a.asset_name!r} {hint}", a.new[0])
        for a in status.ambiguous
    ]
    return errors


# --- build planning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetTask:
    """Everything needed to build one asset, and the keys that say when it must be rebuilt."""

    asset_id: str
    asset_name: str
    path: str
    kind: str
    kind_version: int
    params_json: str
    input_names: tuple[str, ...]
    """Inputs as declared in asset.json (what the kind sees)."""
    inputs: tuple[str, ...]
    """Workspace-relative paths of the inputs."""
    input_hashes: tuple[str, ...]
    deps: tuple[tuple[str, str], ...]
    """(asset_name, asset_id) of each dep, in declared order."""
    output_key: str
    """Digest of what the output depends on before deps: kind, version, params, input names and
    hashes. Never the path or the asset_name, so a moved or renamed asset reuses its cached
    output. Deps' output bytes are folded in when the task runs (``with_dep_outputs``)."""
    task_key: str
    """``output_key`` plus the asset.json bytes: with the deps' outputs folded in, the task is up
    to date exactly while it is unchanged."""


@dataclass(frozen=True)
class BuildPlan:
    snapshot_fingerprint: str
    tasks: tuple[AssetTask, ...]
    """Sorted by asset_id (byte order)."""
    pack_key: str
    """Digest of everything the pack and manifest bytes depend on."""


def with_dep_outputs(key: str, dep_outputs: Sequence[tuple[str, str]]) -> str:
    """``key`` with the (asset_name, xxh3_128 of output) of each dep folded in.

    Deps' outputs are known only once their tasks ran, so a dependent's keys are completed
    then: it rebuilds when a dep's bytes change, not merely when a dep's inputs do.
    """
    if not dep_outputs:
        return key
    return hash_parts(["deps", key, *(part for pair in dep_outputs for part in pair)])


def plan_build(snapshot: Snapshot) -> BuildPlan:
    """Tasks for a snapshot whose registry is in sync and whose declarations are all valid."""
    scan = snapshot.scan
    if scan.broken or scan.problems:
        # A broken asset.json hides its asset_name, so another asset's dep on it shows up as
        # an "unknown dep" that may sort first: name the cause, not that consequence.
        raise (scan.broken or scan.problems)[0]
    by_path = snapshot.registry.by_path
    ids: dict[str, str] = {}
    for d in scan.decls:
        entry = by_path.get(d.path)
        if entry is None or entry.asset_name != d.asset_name:
            break
        ids[d.asset_name] = entry.asset_id
    if len(ids) != len(scan.decls) or len(ids) != len(snapshot.registry.entries):
        raise drift_errors(reconcile(snapshot.registry, scan))[0]
    tasks: list[AssetTask] = []
    for d in scan.decls:
        hashes = tuple(snapshot.input_hashes[rel] for rel in d.inputs)
        output_key = hash_parts(
            ["output", d.kind, str(d.kind_version), d.params_json, *d.declared_inputs, *hashes]
        )
        tasks.append(
            AssetTask(
                asset_id=ids[d.asset_name],
                asset_name=d.asset_name,
                path=d.path,
                kind=d.kind,
                kind_version=d.kind_version,
                params_json=d.params_json,
                input_names=d.declared_inputs,
                inputs=d.inputs,
                input_hashes=hashes,
                deps=tuple((dep, ids[dep]) for dep in d.deps),
                output_key=output_key,
                task_key=hash_parts(["task", d.decl_hash, output_key]),
            )
        )
    tasks.sort(key=lambda t: t.asset_id.encode())
    pack_key = hash_parts(
        [
            "pack",
            PACK_LAYOUT_VERSION,
            snapshot.fingerprint,
            *(part for t in tasks for part in (t.asset_id, t.output_key)),
        ]
    )
    return BuildPlan(snapshot.fingerprint, tuple(tasks), pack_key)
