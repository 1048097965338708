"""One scan: every asset folder the walk finds, its asset.json read and checked, its inputs statted.

Problems are collected, not raised, so ``packer status`` can list them all at once. They come in
two grades: ``broken`` ones hide an asset's identity (unreadable asset.json, duplicate name) and
stop a registry sync; the rest (kind, params, inputs, deps) only stop a build.
With a ``StatCache`` (a build's snapshot passes one), an asset.json whose stat is unchanged is
not read again: its hash comes from the stat cache and its parsed declaration from the decl
cache, which is keyed by (folder, content hash) and so can never serve a stale declaration.

asset.json is read through ``fsutil.read_regular`` (no blocking open of a special file) up to
``ASSET_FILE_LIMIT`` (1 MiB). An asset.json that is a link (the walk sees that without a
system call) is resolved, and refused when it leads outside the workspace.
Imports: stdlib, packer.kinds.base, packer.model, packer.workspace, packer.hashing,
packer.statcache, packer.fsutil, packer.errors, and the scan's own modules.
"""

from __future__ import annotations

import bisect
import os
import posixpath
import stat
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

from packer.errors import DeclError, PackerError, UnknownKindError
from packer.fsutil import read_regular
from packer.hashing import canonical_json, hash_bytes
from packer.kinds.base import Kind, kind_fingerprint
from packer.model import AssetDecl, path_problem
from packer.scan.assetfile import (
    ASSET_FILE_LIMIT,
    check_params,
    field_position,
    parse_declaration,
)
from packer.scan.declaration import Declaration, ScanResult, problem_order
from packer.scan.declcache import DeclCache
from packer.scan.graph import duplicate_names, find_cycle, unknown_deps
from packer.scan.inputs import InputChecker, resolve_inputs
from packer.scan.walk import check_roots, reached, real_rel, walk, walk_below, within
from packer.statcache import FileStat, StatCache
from packer.workspace import ASSET_FILE, DECL_CACHE, Workspace, asset_file


class _Fingerprints(Mapping[str, str]):
    """Each kind's fingerprint, by kind name, computed the first time a declaration asks: a
    fingerprint may import a kind's library to read its version (audio loads soundfile and
    numpy for libsndfile's), which a workspace without that kind must not pay for."""

    def __init__(self, kinds: Mapping[str, Kind]) -> None:
        self._kinds = kinds
        self._known: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        found = self._known.get(name)
        if found is None:
            found = self._known[name] = kind_fingerprint(self._kinds[name])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


@dataclass(frozen=True, slots=True)
class FolderScan:
    """What the scan found in one asset folder, before the checks across folders."""

    decl: Declaration | None
    """None when its asset.json could not be read as a declaration (``broken`` says why)."""
    broken: tuple[PackerError, ...]
    problems: tuple[PackerError, ...]
    input_stats: Mapping[str, FileStat]
    elsewhere: bool
    """It reads a file through a link, or one outside the asset roots or in the output or state
    folder: a change to it may be seen under another path, or not watched at all."""


class _Scanner:
    """One scan's checks of asset folders, each giving its ``FolderScan``."""

    def __init__(
        self,
        ws: Workspace,
        kinds: Mapping[str, Kind],
        cache: StatCache | None,
        real_base: str,
        *,
        partial: bool = False,
    ) -> None:
        self.kinds = kinds
        self.fingerprints = _Fingerprints(kinds)
        self.base = os.path.join(ws.root, "")
        self.stat_cache = cache
        decl_cache = ws.state_path(DECL_CACHE)
        self.decl_cache = DeclCache(decl_cache, partial=partial) if cache else None
        self.inputs = InputChecker(self.base, real_base)
        self.roots = ws.asset_roots
        self.unwatched = tuple(
            rel
            for rel in (ws.out_rel, real_rel(self.base, os.path.abspath(ws.state_dir)))
            if rel is not None
        )
        # Most assets of a kind share their params (often none): validate each distinct set once.
        self.params_seen: dict[tuple[str, str], tuple[str, PackerError | None]] = {}

    def folder(self, folder: str, linked: bool) -> FolderScan:
        """Check the asset folder ``folder``; ``linked`` when its asset.json is a link."""
        display = asset_file(folder)
        try:
            unusable = path_problem(folder)
            if unusable is not None:
                # The registry refuses such a path, so registering it would break the registry.
                raise DeclError(f"cannot be registered: its folder path {unusable}", display)
            if linked and self.inputs.outside(display):
                raise DeclError(f"{ASSET_FILE} links outside the workspace", display)
            st = FileStat.of(os.stat(self.base + display)) if self.stat_cache else None
            cached = self._cached_declaration(folder, display, st)
            if cached is not None:
                return self._checked(cached, display, [], linked)
            raw = read_regular(self.base + display, ASSET_FILE_LIMIT)
            digest = hash_bytes(raw)
            if self.stat_cache is not None and st is not None:
                # The stat was taken before reading: a write after it changes the stat, so the
                # next run reads again.
                self.stat_cache.record(display, st, digest)
            decl = parse_declaration(raw, display)
        except PackerError as err:
            return FolderScan(None, (err,), (), {}, linked)
        except OSError as err:
            return FolderScan(
                None, (DeclError(f"cannot read: {err.strerror}", display),), (), {}, linked
            )
        d, problems = self._declaration(folder, display, decl, digest)
        return self._checked(d, display, problems, linked)

    def _checked(
        self, d: Declaration, display: str, problems: list[PackerError], linked: bool
    ) -> FolderScan:
        """``d`` with its inputs statted (``problems``: the declaration's own so far)."""
        stats = self.inputs.check(d, display, problems)
        elsewhere = (
            linked
            or self.inputs.through_link(d)
            or any(
                not any(within(rel, root) for root in self.roots)
                or any(within(rel, folder) for folder in self.unwatched)
                for rel in d.inputs
            )
        )
        return FolderScan(d, (), tuple(problems), stats, elsewhere)

    def _cached_declaration(
        self, folder: str, display: str, st: FileStat | None
    ) -> Declaration | None:
        """The declaration from the decl cache when the stat cache vouches for the file."""
        if self.stat_cache is None or self.decl_cache is None or st is None:
            return None
        digest = self.stat_cache.cached(display, st)
        return None if digest is None else self.decl_cache.get(folder, digest, self.fingerprints)

    def _declaration(
        self, folder: str, display: str, decl: AssetDecl, digest: str
    ) -> tuple[Declaration, list[PackerError]]:
        inputs, problems = resolve_inputs(folder, decl.inputs, display)
        kind = self.kinds.get(decl.kind)
        if kind is None:
            problems.append(UnknownKindError(decl.kind, list(self.kinds), display))
            fingerprint, params_json = "", canonical_json(decl.params).decode()
        else:
            fingerprint = self.fingerprints[decl.kind]
            memo_key = (decl.kind, repr(decl.params))
            checked = self.params_seen.get(memo_key)
            if checked is None:
                checked = self.params_seen[memo_key] = check_params(kind, decl.params, display)
            params_json, error = checked
            if error is not None:
                problems.append(
                    DeclError(error.message, display, error.line, error.col, field=error.field)
                )
        d = Declaration(
            folder,
            decl.asset_name,
            decl.kind,
            decl.inputs,
            decl.deps,
            digest,
            inputs,
            fingerprint,
            params_json,
        )
        if self.decl_cache is not None and not problems:
            self.decl_cache.put(d)
        return d, problems

    def save(self) -> None:
        if self.decl_cache is not None:
            self.decl_cache.save()


def _place(base: str, problems: list[PackerError]) -> None:
    """Give each problem with a field of an asset.json the line and column of that key or
    array element. The text is read again, once per file with such a problem: problems are
    few, and the decl cache keeps no text. A problem placed once keeps its place."""
    texts: dict[str, str | None] = {}
    for err in problems:
        if err.line is not None or not err.field or not err.path.endswith(ASSET_FILE):
            continue
        if err.path not in texts:
            texts[err.path] = _text(base + err.path)
        text = texts[err.path]
        if text is not None:
            err.line, err.col = field_position(text, err.field)


def _text(path: str) -> str | None:
    try:
        return read_regular(path, ASSET_FILE_LIMIT).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # gone or changed since: the problem keeps no position


@dataclass(frozen=True)
class ScanState:
    """A scan's result and what each asset folder gave it, from which ``rescan`` takes the
    next scan when only a few paths changed. Never mutated: a rescan makes a new one."""

    result: ScanResult
    folders: Mapping[str, FolderScan]
    """Each asset folder's scan, by folder, sorted (a read-only view)."""
    unreadable: tuple[PackerError, ...]
    """Folders the walk could not list."""
    listed: tuple[str, ...] | None = None
    """Every folder the walk listed (``Walked.listed``); None after a ``rescan``, which walks
    only some."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "folders", MappingProxyType(dict(self.folders)))

    @property
    def incremental(self) -> bool:
        """Whether ``rescan`` may start from this state: every folder was walked, and no asset
        reads a file a change to which might not be seen at its own path."""
        return not self.unreadable and not any(f.elsewhere for f in self.folders.values())

    @cached_property
    def _readers(self) -> tuple[list[str], list[str]]:
        """Every (input, folder that reads it) pair, sorted by input: two parallel lists."""
        pairs = sorted(
            (rel, folder)
            for folder, found in self.folders.items()
            if found.decl is not None
            for rel in found.decl.inputs
        )
        return [rel for rel, _ in pairs], [folder for _, folder in pairs]

    def reads(self, rel: str) -> bool:
        """Whether an asset reads the input ``rel`` (or would, were it there)."""
        rels = self._readers[0]
        index = bisect.bisect_left(rels, rel)
        return index < len(rels) and rels[index] == rel

    def unchanged_inputs(self, previous: ScanState) -> frozenset[str]:
        """The inputs statted in this state that only folders scanned for ``previous`` too
        (the very same scans, not scanned again since) read."""
        kept: set[str] = set()
        rescanned: set[str] = set()
        for folder, found in self.folders.items():
            same = previous.folders.get(folder) is found
            (kept if same else rescanned).update(found.input_stats)
        return frozenset(kept - rescanned)

    @cached_property
    def _paths(self) -> list[str]:
        return list(self.folders)

    def affected(self, path: str) -> set[str]:
        """The asset folders a change at ``path`` (workspace-relative, a file or a folder) can
        change: those at or below it, and those reading an input at or below it."""
        found = {self._paths[i] for i in _at_or_below(self._paths, path)}
        rels, readers = self._readers
        found.update(readers[i] for i in _at_or_below(rels, path))
        return found


def _at_or_below(paths: list[str], path: str) -> list[int]:
    """The indexes in sorted ``paths`` (repeats allowed) of those that are ``path`` or below
    it. They are two runs: siblings such as ``path-x`` sort between them."""
    same = range(bisect.bisect_left(paths, path), bisect.bisect_right(paths, path))
    start = bisect.bisect_left(paths, path + "/")
    below = range(start, bisect.bisect_left(paths, path + "0", lo=start))  # "0" follows "/"
    return [*same, *below]


def _state(
    base: str,
    folders: Mapping[str, FolderScan],
    unreadable: Sequence[PackerError],
    listed: Sequence[str] | None = None,
) -> ScanState:
    """The scan of ``folders`` (sorted by folder): theirs, with the checks across them."""
    decls = [f.decl for f in folders.values() if f.decl is not None]
    broken = [*unreadable]
    problems: list[PackerError] = []
    for found in folders.values():
        broken.extend(found.broken)
        problems.extend(found.problems)
    broken.extend(duplicate_names(decls))
    problems.extend(unknown_deps(decls))
    cycle = find_cycle(decls)
    if cycle is not None:
        problems.append(cycle)
    _place(base, broken + problems)
    stats: dict[str, FileStat] = {}
    for found in folders.values():
        stats.update(found.input_stats)
    result = ScanResult(
        decls=tuple(decls),
        broken=tuple(sorted(broken, key=problem_order)),
        broken_paths=frozenset(folder for folder, f in folders.items() if f.decl is None),
        problems=tuple(sorted(problems, key=problem_order)),
        input_stats=stats,
    )
    return ScanState(result, folders, tuple(unreadable), None if listed is None else tuple(listed))


def scan(ws: Workspace, kinds: Mapping[str, Kind], cache: StatCache | None = None) -> ScanResult:
    """Walk the workspace and check every asset.json; with ``cache``, reuse unchanged work."""
    return scan_state(ws, kinds, cache).result


def scan_state(ws: Workspace, kinds: Mapping[str, Kind], cache: StatCache | None) -> ScanState:
    """``scan``, with what each asset folder gave it (to ``rescan`` from later)."""
    real_base = os.path.join(os.path.realpath(ws.root), "")
    walked = walk(ws, real_base)
    scanner = _Scanner(ws, kinds, cache, real_base)
    folders = {f: scanner.folder(f, f in walked.linked) for f in walked.folders}
    scanner.save()
    return _state(scanner.base, folders, walked.unreadable, walked.listed)


RESCAN_LIMIT = 1_000
"""More changed paths than this (a branch switch, a large copy) are scanned in full."""


def rescan(
    ws: Workspace,
    kinds: Mapping[str, Kind],
    cache: StatCache,
    previous: ScanState,
    changed: Collection[str],
) -> ScanState | None:
    """The ``ScanState`` that ``scan_state`` would give now, when nothing but the paths
    ``changed`` (workspace-relative: files or folders, added, changed or removed) changed since
    ``previous`` was taken: the asset folders they can affect are scanned again (those at or
    below a changed path, those reading an input at or below one, and the folders of a changed
    asset.json), the others' scans kept. ``cache`` is a partial stat cache (it keeps what this
    scan does not look at).

    None when that cannot be relied on, and the caller scans in full: ``previous`` is not
    ``incremental``, too many paths changed, one is an asset root or holds one, or a folder
    that changed cannot be walked.
    """
    if not previous.incremental or len(changed) > RESCAN_LIMIT:
        return None
    dirty: set[str] = set()
    for path in changed:
        if any(within(root, path) for root in ws.asset_roots):
            return None
        if posixpath.basename(path) == ASSET_FILE:
            dirty.add(posixpath.dirname(path) or ".")
        dirty.update(previous.affected(path))
        below = walk_below(ws, path)
        if below.unreadable:
            return None
        dirty.update(below.folders)
    real_base = os.path.join(os.path.realpath(ws.root), "")
    scanner = _Scanner(ws, kinds, cache, real_base, partial=True)
    folders = dict(previous.folders)
    for folder in dirty:
        folders.pop(folder, None)
        if not reached(ws, folder):
            continue
        try:
            linked = stat.S_ISLNK(os.lstat(scanner.base + asset_file(folder)).st_mode)
        except FileNotFoundError:
            continue  # no asset.json (any more): not an asset folder
        except OSError:
            return None
        folders[folder] = scanner.folder(folder, linked)
    ordered = dict(sorted(folders.items()))
    check_roots(ws, real_base, list(ordered))
    scanner.save()
    return _state(scanner.base, ordered, ())
