"""The Python API: one function per command. The CLI and the doit adapter are shells over it.

Functions here return typed values and raise ``PackerError``; they never print or exit.
Readers (``status``, ``ls``, a build's snapshot) never wait on writers: they read the registry
and scan without the lane, and keep the result only if the registry on disk is still the one
they read (``lane.read_coherently``), so they never pair the registry of one moment with the
folders scanned against another. Writers (``init``, ``sync``, ``mv``, a build's sync) change
the registry inside the lane, from a registry read inside the same hold.
Imports: every packer module below it (tests/test_layering.py lists them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from packer.errors import ConfigError, MoveError, RegistryError
from packer.fsutil import atomic_write
from packer.kinds.registry import load_kinds
from packer.lane import Lane, LaneSession, read_coherently
from packer.model import (
    DEFAULT_ASSETS,
    DEFAULT_OUT,
    LEADS_OUTSIDE,
    AssetDecl,
    RegistryEntry,
    WorkspaceSection,
    field_problem,
    path_problem,
)
from packer.plan import (
    MovedAsset,
    Status,
    SyncChanges,
    change_lines,
    drift_errors,
    reconcile,
    sync_registry,
)
from packer.registry import (
    GITATTRIBUTES_LINE,
    MERGE_DRIVER,
    MERGE_DRIVER_COMMAND,
    Registry,
    merge,
    parse,
    read_registry_text,
    render,
)
from packer.scan import ScanResult, ScanState, rescan, scan, scan_state
from packer.snapshot import Snapshot, hash_inputs, make_snapshot, open_stat_cache
from packer.workspace import (
    CONFIG_FILE,
    Workspace,
    asset_file,
    find_root,
    open_workspace,
)

_DODO = """\
from packer.doit import workspace_tasks
DOIT_CONFIG, packer = workspace_tasks(__file__)
"""


def init(directory: str, name: str | None = None) -> Workspace:
    """Create a workspace: packer.toml, empty registry, assets/, dodo.py, git files."""
    root = os.path.abspath(directory)
    if os.path.exists(os.path.join(root, CONFIG_FILE)):
        raise ConfigError("already a packer workspace", CONFIG_FILE)
    _refuse_nesting(root)
    pack_name = name or os.path.basename(root) or "pack"
    try:
        WorkspaceSection(name=pack_name)
    except ValidationError as err:
        problem = field_problem(err, WorkspaceSection, toml=True)
        raise ConfigError(problem.message, CONFIG_FILE, field="workspace.name") from None
    os.makedirs(os.path.join(root, DEFAULT_ASSETS), exist_ok=True)
    toml = (
        f"[workspace]\nname = {json.dumps(pack_name)}\n"
        f"assets = {json.dumps([DEFAULT_ASSETS])}\nout = {json.dumps(DEFAULT_OUT)}\n"
    )
    atomic_write(os.path.join(root, CONFIG_FILE), toml.encode())
    ws = open_workspace(root, search_up=False)
    with Lane(ws).hold() as lane:
        # A registry already there (packer.toml lost, a fresh clone) keeps its identities, and
        # one that is broken or not a file is refused, never replaced.
        lane.write(lane.read()[0])
    _write_if_absent(os.path.join(root, "dodo.py"), _DODO)
    _append_lines(os.path.join(root, ".gitignore"), [".packer/", "/build/", ".*.tmp-*"])
    _append_lines(os.path.join(root, ".gitattributes"), [GITATTRIBUTES_LINE])
    return ws


def _refuse_nesting(root: str) -> None:
    # A workspace inside another would have its asset folders scanned by the outer one too.
    try:
        outer = find_root(os.path.dirname(root))
    except ConfigError:
        return
    raise ConfigError(
        f"inside the packer workspace at {outer}; make the new workspace elsewhere, "
        "or add asset folders to that one",
        os.path.relpath(root),
    )


def _write_if_absent(path: str, text: str) -> None:
    if not os.path.exists(path):
        atomic_write(path, text.encode())


def _append_lines(path: str, lines: list[str]) -> None:
    try:
        with open(path, encoding="utf-8") as handle:
            present = handle.read()
    except FileNotFoundError:
        present = ""
    missing = [line for line in lines if line not in present.splitlines()]
    if missing:
        sep = "" if not present or present.endswith("\n") else "\n"
        atomic_write(path, (present + sep + "\n".join(missing) + "\n").encode())


@dataclass(frozen=True)
class _Reconciled:
    """A registry, a scan reconciled against it with its inputs' hashes, and what differs."""

    registry: Registry
    registry_hash: str
    scan: ScanResult
    input_hashes: Mapping[str, str]
    status: Status


@dataclass
class ScanMemory:
    """What ``packer watch`` keeps between builds, for ``snapshot`` to rescan only what changed:
    the last snapshot and its scan, and the paths changed since (None: unknown, scan in full).
    It only ever refers to immutable values: each snapshot replaces them with new ones."""

    snapshot: Snapshot | None = None
    state: ScanState | None = None
    changed: tuple[str, ...] | None = None
    """Workspace-relative paths under the asset roots changed since ``snapshot`` was taken."""


SYNC_ATTEMPTS = 3
"""How many lock-free scans a build tries before it scans inside the lane to sync."""


def snapshot(
    ws: Workspace,
    *,
    frozen: bool = False,
    on_change: Callable[[str], None] | None = None,
    memory: ScanMemory | None = None,
) -> Snapshot:
    """The snapshot a build uses: synced through the lane first unless ``frozen``.

    Frozen, any difference between workspace and registry is an error and nothing is written.
    The scan and the hashing run without the lane (``read_coherently``). A sync takes the lane
    only for its commit, and commits only if the registry is still the one the scan was
    reconciled against; otherwise the scan is taken again. ``on_change`` receives one line per
    identity the sync registered, moved, renamed or retired (``plan.change_lines``).

    With ``memory`` that knows which paths changed since its snapshot, only the asset folders
    they can affect are scanned again and only their inputs hashed (``scan.rescan``, which
    gives the scan a full one would, or None and then the scan is full); ``memory`` then
    holds the new snapshot and its scan, and no changed paths until it is told of them.
    """
    kinds = load_kinds()
    previous = memory if memory is not None and memory.changed is not None else None
    cache = open_stat_cache(ws, partial=previous is not None)
    states: list[ScanState] = []

    def observe(registry: Registry, registry_hash: str) -> _Reconciled:
        state = None
        if previous is not None and previous.state is not None and previous.changed is not None:
            state = rescan(ws, kinds, cache, previous.state, previous.changed)
        if state is None:
            state = scan_state(ws, kinds, cache)
        states.append(state)
        result = state.result
        known_hashes: dict[str, str] = {}
        if previous is not None and previous.state is not None and previous.snapshot is not None:
            old = previous.snapshot.input_hashes
            unchanged = state.unchanged_inputs(previous.state)
            known_hashes = {rel: old[rel] for rel in unchanged if rel in old}
        hashes = hash_inputs(ws, result.input_stats, cache, known_hashes)
        status = _reconcile(ws, registry, result, hashes)
        return _Reconciled(registry, registry_hash, result, hashes, status)

    known = None
    if previous is not None and previous.snapshot is not None:
        known = (previous.snapshot.registry, previous.snapshot.registry_hash)
    seen = _synced(ws, observe, frozen=frozen, on_change=on_change, known=known)
    cache.save()
    taken = make_snapshot(seen.registry, seen.registry_hash, seen.scan, seen.input_hashes)
    if memory is not None:
        state = next(s for s in reversed(states) if s.result is seen.scan)
        memory.snapshot, memory.state, memory.changed = taken, state, ()
    return taken


def _synced(
    ws: Workspace,
    observe: Callable[[Registry, str], _Reconciled],
    *,
    frozen: bool,
    on_change: Callable[[str], None] | None,
    known: tuple[Registry, str] | None = None,
) -> _Reconciled:
    """A registry and a scan that belong together, the registry synced to the scan first
    (``known``: a registry read before, as ``read_coherently`` takes it)."""
    for _ in range(SYNC_ATTEMPTS):
        seen = read_coherently(ws, observe, known)
        if not seen.status.in_sync and frozen:
            raise drift_errors(seen.status)[0]
        if frozen or not seen.status.needs_write:
            return seen  # frozen: content the registry has not recorded is no difference
        with Lane(ws).hold() as lane:
            if lane.current_hash() == seen.registry_hash:
                return _commit_sync(lane, seen, on_change)
    # Writers committed between every scan and its sync: scan inside the lane this once.
    with Lane(ws).hold() as lane:
        return _commit_sync(lane, observe(*lane.read()), on_change)


def _commit_sync(
    lane: LaneSession, seen: _Reconciled, on_change: Callable[[str], None] | None
) -> _Reconciled:
    """Write the sync of ``seen`` (whose registry is the one on disk in this hold) and pair
    the scan with the registry written."""
    synced, changes = sync_registry(seen.registry, seen.status)
    lane.write(synced)
    registry, registry_hash = lane.read()
    if on_change is not None:
        for line in change_lines(changes):
            on_change(line)
    return dataclasses.replace(seen, registry=registry, registry_hash=registry_hash)


def _reconcile(
    ws: Workspace, registry: Registry, result: ScanResult, input_hashes: Mapping[str, str]
) -> Status:
    """``plan.reconcile``, refusing an output folder that holds a registered asset: the scan
    skips the output folder, so the asset would look deleted and a sync would retire its id."""
    status = reconcile(registry, result, input_hashes)
    for gone in status.missing:
        if _within(gone.path, ws.out_rel):
            raise ConfigError(
                f"{ws.config.workspace.out!r} holds the registered asset {gone.asset_id} "
                f"({gone.path}); choose another output folder",
                CONFIG_FILE,
                field="workspace.out",
            )
    return status


def status(ws: Workspace) -> Status:
    """How the workspace differs from the registry, read without the lane. Only the inputs of
    unregistered folders are hashed: what a moved and renamed asset is recognised by."""
    kinds = load_kinds()
    cache = open_stat_cache(ws)

    def observe(registry: Registry, _: str) -> Status:
        result = scan(ws, kinds)
        stats = result.input_stats
        fresh = {
            rel: stats[rel]
            for d in result.decls
            if d.path not in registry.by_path
            for rel in d.inputs
            if rel in stats
        }
        return _reconcile(ws, registry, result, hash_inputs(ws, fresh, cache))

    return read_coherently(ws, observe)


@dataclass(frozen=True)
class SyncResult:
    status: Status
    """What differed before the sync (what the sync applied, or would apply with dry_run)."""
    changes: SyncChanges
    """What the sync applied (with dry_run: would apply; the ids drawn are not kept)."""
    written: bool
    """Whether registry.json was replaced."""


def sync(ws: Workspace, *, dry_run: bool = False) -> SyncResult:
    """Register new assets, apply unambiguous moves and renames, retire missing ones, and
    record what each asset's inputs hold. registry.json is the only file it writes: the stat
    cache spares re-reading inputs, but is not saved (a build saves it)."""
    kinds = load_kinds()
    cache = open_stat_cache(ws)
    with Lane(ws).hold() as lane:
        registry, _ = lane.read()
        result = scan(ws, kinds)
        before = _reconcile(ws, registry, result, hash_inputs(ws, result.input_stats, cache))
        synced, changes = sync_registry(registry, before)
        written = False if dry_run else lane.write(synced)
    return SyncResult(before, changes, written)


@dataclass(frozen=True)
class ListedAsset:
    asset_id: str
    asset_name: str
    path: str
    kind: str | None
    """None when the asset's folder or asset.json is missing or unreadable."""


def ls(ws: Workspace) -> tuple[ListedAsset, ...]:
    """The registered assets of one registry state, sorted by asset_id, read without the lane."""
    kinds = load_kinds()
    registry, result = read_coherently(ws, lambda registry, _: (registry, scan(ws, kinds)))
    kind_at = {d.path: d.kind for d in result.decls}
    return tuple(
        ListedAsset(e.asset_id, e.asset_name, e.path, kind_at.get(e.path)) for e in registry.entries
    )


def mv(ws: Workspace, src: str, dst: str) -> MovedAsset:
    """Move an asset folder and record the move in one lane commit; its asset_id is kept.

    ``src`` and ``dst`` are paths as a user types them (relative to the current folder).
    Every check is made inside the lane, on the registry read there; a refused move is a
    ``MoveError`` and changes nothing. If the registry cannot be written the folder is moved back.
    """
    src_rel, dst_rel = ws.relpath(src), ws.relpath(dst)
    with Lane(ws).hold() as lane:
        registry, _ = lane.read()
        entry = _registered_source(ws, registry, src_rel)
        _check_move(ws, registry, src_rel, dst_rel)
        moved = [
            e.model_copy(update={"path": dst_rel + e.path[len(src_rel) :]})
            for e in registry.entries
            if _within(e.path, src_rel)
        ]
        os.makedirs(os.path.dirname(ws.abspath(dst_rel)), exist_ok=True)
        renamed = False
        try:
            # The folder moves while the new registry waits beside the old one: a reader never
            # pairs the moved folder with the registry from before the move.
            with lane.committing(registry.replace(upsert=moved)):
                os.rename(ws.abspath(src_rel), ws.abspath(dst_rel))
                renamed = True
        except BaseException:
            if renamed:
                os.rename(ws.abspath(dst_rel), ws.abspath(src_rel))
            raise
        _remove_empty_parents(ws, src_rel)
    return MovedAsset(entry.asset_id, entry.asset_name, src_rel, dst_rel, entry.asset_name)


def _remove_empty_parents(ws: Workspace, rel: str) -> None:
    """Remove the folders that held only the moved asset, up to (not including) its asset root,
    as `git mv` leaves no empty folder behind."""
    roots = set(ws.asset_roots)
    parent = posixpath.dirname(rel)
    while parent and parent not in roots:
        try:
            os.rmdir(ws.abspath(parent))
        except OSError:  # not empty (or not ours to remove): stop here
            return
        parent = posixpath.dirname(parent)


def _within(path: str, folder: str) -> bool:
    """Whether workspace-relative ``path`` is ``folder`` or lies inside it."""
    return path == folder or path.startswith(folder + "/")


def _registered_source(ws: Workspace, registry: Registry, src_rel: str) -> RegistryEntry:
    """The entry of the asset folder ``packer mv`` moves, which must be registered and present.

    Only a registered path is moved (registry paths are inside the workspace): so
    `packer mv ../victim assets/pulled` pulls nothing in.
    """
    entry = registry.by_path.get(src_rel)
    if entry is None:
        has_decl = path_problem(src_rel) is None and os.path.isfile(ws.abspath(asset_file(src_rel)))
        raise MoveError(
            "not a registered asset folder"
            + (" (run `packer sync` first)" if has_decl else " (no asset.json)"),
            src_rel,
        )
    if not os.path.isdir(ws.abspath(src_rel)):
        raise MoveError(
            "registered, but the folder is gone (run `packer status` to see where)", src_rel
        )
    return entry


def _check_move(ws: Workspace, registry: Registry, src_rel: str, dst_rel: str) -> None:
    """Refuse a move through a link, or to a destination the asset could not live at."""
    problem = path_problem(dst_rel)
    if problem == LEADS_OUTSIDE or dst_rel.startswith(src_rel + "/"):
        raise MoveError("destination must be inside the workspace, outside the source", dst_rel)
    if problem is not None:
        raise MoveError(f"destination {problem}", dst_rel)
    # The folder moved and the folder it lands in must be where their paths say: through
    # a link the move would take the asset out of the workspace, or somewhere the scan
    # (which enters no folder link) never looks.
    for role, rel, checked in (
        ("source", src_rel, src_rel),
        ("destination", dst_rel, posixpath.dirname(dst_rel)),
    ):
        problem = _link_on_the_way(ws, checked)
        if problem is not None:
            raise MoveError(f"{role} {problem}", rel)
    if os.path.lexists(ws.abspath(dst_rel)):
        raise MoveError("destination already exists", dst_rel)
    roots = [r for r in ws.asset_roots if r == "." or dst_rel.startswith(r + "/")]
    if not roots:
        raise MoveError(
            f"destination is outside the asset folders ({', '.join(ws.asset_roots)})", dst_rel
        )
    # The scan skips dot folders and the output folder: moved there, the asset would be
    # missing at the next sync and its id retired.
    root = max(roots, key=len)
    below = dst_rel if root == "." else dst_rel[len(root) + 1 :]
    if any(part.startswith(".") for part in below.split("/")) or _within(dst_rel, ws.out_rel):
        raise MoveError(
            "destination is in a folder packer does not scan (a name starting with '.', "
            "or the output folder)",
            dst_rel,
        )
    # A registered asset whose folder is gone (not yet synced) still holds its path: moving
    # there would make the registry claim one path twice.
    taken = [e for e in registry.entries if _within(e.path, dst_rel)]
    if taken:
        raise MoveError(
            f"destination is registered to asset {taken[0].asset_id} "
            f"({taken[0].asset_name!r}), whose folder is gone (run `packer sync` first)",
            dst_rel,
        )


def _link_on_the_way(ws: Workspace, rel: str) -> str | None:
    """Why the folders of workspace-relative ``rel`` are not plain folders, or None if they are.

    Compares the resolved path to the resolved root joined with ``rel``: any link on the way
    (or ``rel`` itself a link) makes them differ. A tail that does not exist yet resolves as
    it is written.
    """
    real_root = os.path.realpath(ws.root)
    real = os.path.realpath(ws.abspath(rel))
    if real == (os.path.join(real_root, *rel.split("/")) if rel else real_root):
        return None
    if real == real_root or real.startswith(os.path.join(real_root, "")):
        return "passes through a link (packer does not follow folder links)"
    return "reaches outside the workspace through a link"


def schema() -> dict[str, Any]:
    """The JSON Schema of asset.json."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **AssetDecl.model_json_schema(),
    }


def _read_side(path: str, *, base: bool = False) -> Registry:
    # git hands an empty base when both branches added the file; /dev/null as the base says
    # the same. Only the base: ours is written, and /dev/null is never a registry to replace.
    if base and os.path.exists(path) and os.path.samefile(path, os.devnull):
        return Registry()
    try:
        text = read_registry_text(path, path)
    except FileNotFoundError:
        raise RegistryError("no such file", path) from None
    return parse(text, path) if text.strip() else Registry()


def merge_registry(base: str, ours: str, theirs: str) -> Registry:
    """Three-way merge of registry files; the result replaces ``ours`` (git's ``%A``).

    On a conflict ``ours`` is left as it was and ConflictError lists every conflict. An empty
    ``base`` (or /dev/null) means the file is new on both sides; a missing side is an error.
    """
    merged = merge(_read_side(base, base=True), _read_side(ours), _read_side(theirs))
    atomic_write(ours, render(merged))
    return merged


def install_merge_driver(directory: str) -> None:
    """Add the registry merge driver to the git config of the repository at ``directory``."""
    settings = {
        f"merge.{MERGE_DRIVER}.name": "packer registry.json merge",
        f"merge.{MERGE_DRIVER}.driver": MERGE_DRIVER_COMMAND,
    }
    for key, value in settings.items():
        done = subprocess.run(
            ["git", "config", key, value], cwd=directory, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RegistryError(f"git config failed: {done.stderr.strip()}", ".git/config")


__all__ = [
    "MERGE_DRIVER",
    "ListedAsset",
    "ScanMemory",
    "SyncResult",
    "init",
    "install_merge_driver",
    "ls",
    "merge_registry",
    "mv",
    "schema",
    "snapshot",
    "status",
    "sync",
]
