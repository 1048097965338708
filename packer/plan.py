"""Pure planning over a snapshot: reconciliation, sync changes, the build's tasks and their keys.

Nothing here touches the file system or the clock; every function takes values and returns
values, sorted by asset_id or path, so planning is deterministic and cheap to test.
The keys themselves are defined in ``packer.keys``.
Imports: stdlib, packer.snapshot, packer.scan, packer.registry, packer.model, packer.keys,
packer.hashing, packer.workspace, packer.errors, packer.pack.codec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from packer.errors import MissingInputError, PackerError, RegistryError
from packer.hashing import hash_parts
from packer.keys import output_key, pack_key, task_key
from packer.model import PackSection, RegistryEntry
from packer.pack.codec import ZstdCodec
from packer.registry import Registry, new_asset_id
from packer.scan import Declaration, ScanResult
from packer.snapshot import Snapshot
from packer.workspace import CONFIG_FILE, asset_file


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
    from_name: str
    """The asset_name the registry had: ``asset_name`` unless it was renamed too (recognised
    by its content, ``content_fingerprint``)."""

    @property
    def renamed(self) -> bool:
        return self.from_name != self.asset_name


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
    contents: Mapping[str, str | None] = field(default_factory=dict)
    """``content_fingerprint`` by asset folder, for the declarations whose inputs were hashed."""
    stale: tuple[str, ...] = ()
    """asset_ids of entries in place whose recorded content is not their inputs' now, in a
    workspace without problems: a sync records it, but it is no difference (frozen builds and
    ``in_sync`` ignore it)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "contents", MappingProxyType(dict(self.contents)))

    @property
    def in_sync(self) -> bool:
        return not (self.new or self.missing or self.moved or self.renamed or self.ambiguous)

    @property
    def needs_write(self) -> bool:
        """Whether a sync would change registry.json (a difference, or content to record)."""
        return not self.in_sync or bool(self.stale)

    @property
    def ok(self) -> bool:
        return self.in_sync and not self.invalid


def content_fingerprint(kind: str, input_hashes: Iterable[str]) -> str | None:
    """What an asset's inputs hold, whatever their names and order: its kind and the multiset
    of their xxh3_128. A missing entry and a new folder with the same one are one asset moved
    (and maybe renamed), as git pairs a deleted and an added file of the same content. None
    for an asset without inputs: nothing to recognise it by."""
    hashes = sorted(input_hashes)
    return hash_parts(["content", kind, *hashes]) if hashes else None


def _contents(scan: ScanResult, input_hashes: Mapping[str, str]) -> dict[str, str | None]:
    """``content_fingerprint`` of each declaration whose inputs are all in ``input_hashes``."""
    contents: dict[str, str | None] = {}
    for d in scan.decls:
        hashes = [input_hashes[rel] for rel in d.inputs if rel in input_hashes]
        if len(hashes) == len(d.inputs):
            contents[d.path] = content_fingerprint(d.kind, hashes)
    return contents


def reconcile(
    registry: Registry, scan: ScanResult, input_hashes: Mapping[str, str] | None = None
) -> Status:
    """How ``scan`` differs from ``registry``. Entries and folders are paired by path, then by
    asset_name, then, with ``input_hashes`` (of the new folders' inputs at least), by content:
    one missing entry and one new folder with the same ``content_fingerprint`` are a move."""
    decls = {d.path: d for d in scan.decls}
    contents = _contents(scan, input_hashes or {})
    # Content is recorded only from a workspace without problems: a sync or build that fails
    # leaves registry.json as it was unless an identity changed.
    clean = not scan.all_problems
    renamed: list[RenamedAsset] = []
    stale: list[str] = []
    missing_by_name: dict[str, list[RegistryEntry]] = {}
    for entry in registry.entries:
        decl = decls.get(entry.path)
        if decl is not None:
            if decl.asset_name != entry.asset_name:
                renamed.append(
                    RenamedAsset(entry.asset_id, entry.path, entry.asset_name, decl.asset_name)
                )
            if entry.path in contents and contents[entry.path] != entry.content and clean:
                stale.append(entry.asset_id)
        elif entry.path not in scan.broken_paths:
            missing_by_name.setdefault(entry.asset_name, []).append(entry)
    new_by_name: dict[str, list[Declaration]] = {}
    for d in scan.decls:
        if d.path not in registry.by_path:
            new_by_name.setdefault(d.asset_name, []).append(d)

    moved: list[MovedAsset] = []
    ambiguous: list[AmbiguousMove] = []
    unpaired: list[RegistryEntry] = []
    unplaced: list[Declaration] = []
    for name in sorted(set(missing_by_name) | set(new_by_name)):
        gone, fresh = missing_by_name.get(name, []), new_by_name.get(name, [])
        if len(gone) == 1 and len(fresh) == 1:
            moved.append(MovedAsset(gone[0].asset_id, name, gone[0].path, fresh[0].path, name))
        elif gone and fresh:
            ambiguous.append(
                AmbiguousMove(
                    name,
                    tuple(sorted(e.asset_id for e in gone)),
                    tuple(sorted(d.path for d in fresh)),
                )
            )
        else:
            unpaired += gone
            unplaced += fresh
    pairs = _paired_by_content(unpaired, unplaced, contents)
    for entry, decl in pairs:
        moved.append(
            MovedAsset(entry.asset_id, decl.asset_name, entry.path, decl.path, entry.asset_name)
        )
    paired_ids = {entry.asset_id for entry, _ in pairs}
    paired_paths = {decl.path for _, decl in pairs}
    missing = [
        MissingAsset(e.asset_id, e.asset_name, e.path)
        for e in unpaired
        if e.asset_id not in paired_ids
    ]
    new = [NewAsset(d.path, d.asset_name) for d in unplaced if d.path not in paired_paths]
    return Status(
        registered=len(registry.entries),
        new=tuple(sorted(new, key=lambda a: a.path)),
        missing=tuple(sorted(missing, key=lambda a: a.asset_id)),
        moved=tuple(sorted(moved, key=lambda a: a.asset_id)),
        renamed=tuple(sorted(renamed, key=lambda a: a.asset_id)),
        ambiguous=tuple(ambiguous),
        broken=scan.broken,
        invalid=scan.all_problems,
        contents=contents,
        stale=tuple(sorted(stale, key=str.encode)),
    )


def _paired_by_content(
    gone: list[RegistryEntry], fresh: list[Declaration], contents: Mapping[str, str | None]
) -> list[tuple[RegistryEntry, Declaration]]:
    """Missing entries and new folders whose content is the same and shared by no other of
    them. Several with one content (copies of a placeholder) pair nothing: a guess could give
    one asset's id to another, while leaving them new and missing loses no file."""
    by_content: dict[str, tuple[list[RegistryEntry], list[Declaration]]] = {}
    for entry in gone:
        if entry.content is not None:
            by_content.setdefault(entry.content, ([], []))[0].append(entry)
    for decl in fresh:
        content = contents.get(decl.path)
        if content is not None and content in by_content:
            by_content[content][1].append(decl)
    return [
        (entries[0], decls[0])
        for entries, decls in by_content.values()
        if len(entries) == 1 and len(decls) == 1
    ]


@dataclass(frozen=True)
class SyncChanges:
    """What a sync applied to the registry, for the lines and JSON that report it."""

    registered: tuple[RegistryEntry, ...]
    """The new entries, with the ids drawn for them; sorted by path."""
    moved: tuple[MovedAsset, ...]
    renamed: tuple[RenamedAsset, ...]
    retired: tuple[MissingAsset, ...]


def moved_line(m: MovedAsset) -> str:
    if m.renamed:
        return (
            f"moved+renamed {m.asset_id}  {m.from_path} -> {m.to_path}  "
            f"{m.from_name!r} -> {m.asset_name!r}"
        )
    return f"moved      {m.asset_id}  {m.from_path} -> {m.to_path}  ({m.asset_name})"


def renamed_line(r: RenamedAsset) -> str:
    return f"renamed    {r.asset_id}  {r.path}  {r.old_name!r} -> {r.new_name!r}"


def change_lines(changes: SyncChanges, *, drawn: bool = True) -> list[str]:
    """One line per identity change, as ``packer sync`` and a build's sync print them (the
    caller escapes them, ``errors.shown``). ``drawn=False`` (a dry run): the ids a sync would
    draw are not shown, since the real sync draws others."""
    lines = [
        f"registered {e.asset_id if drawn else '(new id)'}  {e.path}  ({e.asset_name})"
        for e in changes.registered
    ]
    lines += [moved_line(m) for m in changes.moved]
    lines += [renamed_line(r) for r in changes.renamed]
    lines += [f"retired    {m.asset_id}  {m.path}  ({m.asset_name})" for m in changes.retired]
    return lines


def sync_registry(registry: Registry, status: Status) -> tuple[Registry, SyncChanges]:
    """The registry after registering new assets, applying moves and renames, retiring missing,
    recording the content of the entries whose inputs ``status`` saw hashed, and what changed.

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
    contents = status.contents

    def entry(asset_id: str, asset_name: str, path: str) -> RegistryEntry:
        old = registry.by_id.get(asset_id)
        content = contents.get(path, old.content if old else None)
        return RegistryEntry(asset_id=asset_id, asset_name=asset_name, path=path, content=content)

    taken = set(registry.taken_ids())
    registered: list[RegistryEntry] = []
    for new in status.new:
        asset_id = new_asset_id(taken)
        taken.add(asset_id)
        registered.append(entry(asset_id, new.asset_name, new.path))
    # Content alone first: a renamed entry's later upsert replaces its own.
    by_id = registry.by_id
    upsert = [
        entry(asset_id, by_id[asset_id].asset_name, by_id[asset_id].path)
        for asset_id in status.stale
    ]
    upsert += registered
    upsert += [entry(m.asset_id, m.asset_name, m.to_path) for m in status.moved]
    upsert += [entry(r.asset_id, r.new_name, r.path) for r in status.renamed]
    synced = registry.replace(upsert=upsert, retire=(m.asset_id for m in status.missing))
    return synced, SyncChanges(tuple(registered), status.moved, status.renamed, status.missing)


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
    """One asset as the build sees it: its declaration, what the plan adds to it (its id, its
    inputs' hashes, its deps' ids) and its keys (``packer.keys``). Plain data: it pickles."""

    decl: Declaration
    asset_id: str
    input_hashes: tuple[str, ...]
    """xxh3_128 of each input, as the snapshot saw it, in declared order."""
    dep_ids: tuple[str, ...]
    """The asset_id of each dep, in declared order."""
    output_key: str
    """The output key before the deps' outputs are folded in (``keys.completed``)."""
    task_key: str
    """The task key before the deps' outputs are folded in."""

    @property
    def asset_name(self) -> str:
        return self.decl.asset_name

    @property
    def path(self) -> str:
        return self.decl.path

    @property
    def kind(self) -> str:
        return self.decl.kind


@dataclass(frozen=True)
class BuildPlan:
    snapshot_fingerprint: str
    tasks: tuple[AssetTask, ...]
    """Sorted by asset_id (byte order)."""
    pack_key: str
    """Digest of everything the pack and manifest bytes depend on."""
    pack_codec: ZstdCodec | None = None
    """What the pack's entries are compressed with (packer.toml's ``[pack]``); None: format 1."""
    late: frozenset[str] = frozenset()
    """asset_ids of the assets that read a generated input: their keys, and the pack key, are
    made once the inputs exist (``with_generated``); until then they hold ``PENDING``."""


PENDING = "-"
"""The hash of a generated input before it is hashed (as ``snapshot.fingerprint`` spells one
that is absent)."""


def plan_build(
    snapshot: Snapshot,
    pack: PackSection | None = None,
    generated: frozenset[str] = frozenset(),
    previous: BuildPlan | None = None,
) -> BuildPlan:
    """Tasks for a snapshot whose registry is in sync and whose declarations are all valid,
    for a pack stored as packer.toml's ``[pack]`` says (None: format 1).

    ``generated`` names inputs (workspace-relative) that another task of a larger graph writes
    during the build: one that does not exist yet is no error, and the assets that read one
    are planned late (``BuildPlan.late``). A task of ``previous`` (an earlier plan of the same
    workspace) whose declaration, input hashes and deps are the same is reused, keys and all."""
    scan = snapshot.scan
    problems = [
        p
        for p in scan.problems
        if not (isinstance(p, MissingInputError) and p.input_path in generated)
    ]
    if scan.broken or problems:
        # A broken asset.json hides its asset_name, so another asset's dep on it shows up as
        # an "unknown dep" that may sort first: name the cause, not that consequence.
        raise (scan.broken or problems)[0]
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
    late: set[str] = set()
    before = {} if previous is None else {t.asset_id: t for t in previous.tasks}
    for d in scan.decls:
        if generated and not generated.isdisjoint(d.inputs):
            late.add(ids[d.asset_name])
            hashes = tuple(
                PENDING if rel in generated else snapshot.input_hashes[rel] for rel in d.inputs
            )
        else:
            hashes = tuple(snapshot.input_hashes[rel] for rel in d.inputs)
        dep_ids = tuple(ids[dep] for dep in d.deps)
        asset_id = ids[d.asset_name]
        old = before.get(asset_id)
        if old is not None and (old.decl, old.input_hashes, old.dep_ids) == (d, hashes, dep_ids):
            tasks.append(old)
        else:
            tasks.append(_asset_task(d, asset_id, hashes, dep_ids))
    tasks.sort(key=lambda t: t.asset_id.encode())
    outputs = ((t.asset_id, t.output_key) for t in tasks)
    codec = None if pack is None or pack.compression is None else ZstdCodec(pack.level)
    # The library's version is read here, once per build: a missing zstandard is one error.
    fingerprint = None if codec is None else codec.fingerprint(CONFIG_FILE)
    key = pack_key(snapshot.fingerprint, outputs, fingerprint)
    return BuildPlan(snapshot.fingerprint, tuple(tasks), key, codec, frozenset(late))


def changed_since(before: BuildPlan, after: BuildPlan) -> frozenset[str]:
    """The asset_ids of ``after``'s tasks that are not exactly as in ``before`` (new ones
    included), and of every asset that depends on one of them, directly or not: its key folds
    in their outputs. The others have the same keys as in ``before``."""
    previous = {t.asset_id: t for t in before.tasks}
    dependents: dict[str, list[str]] = {}
    for t in after.tasks:
        for dep_id in t.dep_ids:
            dependents.setdefault(dep_id, []).append(t.asset_id)
    changed = {t.asset_id for t in after.tasks if previous.get(t.asset_id) != t}
    stack = list(changed)
    while stack:
        for dependent in dependents.get(stack.pop(), ()):
            if dependent not in changed:
                changed.add(dependent)
                stack.append(dependent)
    return frozenset(changed)


def _asset_task(
    d: Declaration, asset_id: str, hashes: tuple[str, ...], dep_ids: tuple[str, ...]
) -> AssetTask:
    output = output_key(d, hashes)
    return AssetTask(d, asset_id, hashes, dep_ids, output, task_key(d, output))


def with_generated(task: AssetTask, hashes: Mapping[str, str]) -> AssetTask:
    """A late-planned asset's task once its generated inputs exist, ``hashes`` their xxh3_128
    by workspace-relative path: the same task ``plan_build`` gives when they existed at once."""
    found = tuple(
        hashes.get(rel, old) for rel, old in zip(task.decl.inputs, task.input_hashes, strict=True)
    )
    return _asset_task(task.decl, task.asset_id, found, task.dep_ids)
