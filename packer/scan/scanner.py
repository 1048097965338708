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

import os
from collections.abc import Iterator, Mapping

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
from packer.scan.walk import walk
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


class _Scanner:
    """One walk: collects declarations, problems and input stats."""

    def __init__(
        self, ws: Workspace, kinds: Mapping[str, Kind], cache: StatCache | None, real_base: str
    ) -> None:
        self.kinds = kinds
        self.fingerprints = _Fingerprints(kinds)
        self.base = os.path.join(ws.root, "")
        self.stat_cache = cache
        self.decl_cache = DeclCache(ws.state_path(DECL_CACHE)) if cache else None
        self.inputs = InputChecker(self.base, real_base)
        self.decls: list[Declaration] = []
        self.broken: list[PackerError] = []
        self.broken_paths: set[str] = set()
        self.problems: list[PackerError] = []
        # Most assets of a kind share their params (often none): validate each distinct set once.
        self.params_seen: dict[tuple[str, str], tuple[str, PackerError | None]] = {}

    def folder(self, folder: str, linked: bool) -> None:
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
                self.decls.append(cached)
                self.inputs.check(cached, display, self.problems)
                return
            raw = read_regular(self.base + display, ASSET_FILE_LIMIT)
            digest = hash_bytes(raw)
            if self.stat_cache is not None and st is not None:
                # The stat was taken before reading: a write after it changes the stat, so the
                # next run reads again.
                self.stat_cache.record(display, st, digest)
            decl = parse_declaration(raw, display)
        except PackerError as err:
            self._broken(folder, err)
            return
        except OSError as err:
            self._broken(folder, DeclError(f"cannot read: {err.strerror}", display))
            return
        self._declaration(folder, display, decl, digest)

    def _place(self, problems: list[PackerError]) -> None:
        """Give each problem with a field of an asset.json the line and column of that key or
        array element. The text is read again, once per file with such a problem: problems are
        few, and the decl cache keeps no text."""
        texts: dict[str, str | None] = {}
        for err in problems:
            if err.line is not None or not err.field or not err.path.endswith(ASSET_FILE):
                continue
            if err.path not in texts:
                texts[err.path] = self._text(err.path)
            text = texts[err.path]
            if text is not None:
                err.line, err.col = field_position(text, err.field)

    def _text(self, display: str) -> str | None:
        try:
            return read_regular(self.base + display, ASSET_FILE_LIMIT).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None  # gone or changed since: the problem keeps no position

    def _broken(self, folder: str, err: PackerError) -> None:
        self.broken.append(err)
        self.broken_paths.add(folder)

    def _cached_declaration(
        self, folder: str, display: str, st: FileStat | None
    ) -> Declaration | None:
        """The declaration from the decl cache when the stat cache vouches for the file."""
        if self.stat_cache is None or self.decl_cache is None or st is None:
            return None
        digest = self.stat_cache.cached(display, st)
        return None if digest is None else self.decl_cache.get(folder, digest, self.fingerprints)

    def _declaration(self, folder: str, display: str, decl: AssetDecl, digest: str) -> None:
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
        self.decls.append(d)
        self.problems.extend(problems)
        if self.decl_cache is not None and not problems:
            self.decl_cache.put(d)
        self.inputs.check(d, display, self.problems)

    def result(self) -> ScanResult:
        self.broken.extend(duplicate_names(self.decls))
        self.problems.extend(unknown_deps(self.decls))
        cycle = find_cycle(self.decls)
        if cycle is not None:
            self.problems.append(cycle)
        self._place(self.broken + self.problems)
        if self.decl_cache is not None:
            self.decl_cache.save()
        return ScanResult(
            decls=tuple(self.decls),
            broken=tuple(sorted(self.broken, key=problem_order)),
            broken_paths=frozenset(self.broken_paths),
            problems=tuple(sorted(self.problems, key=problem_order)),
            input_stats=self.inputs.stats,
        )


def scan(ws: Workspace, kinds: Mapping[str, Kind], cache: StatCache | None = None) -> ScanResult:
    """Walk the workspace and check every asset.json; with ``cache``, reuse unchanged work."""
    real_base = os.path.join(os.path.realpath(ws.root), "")
    walked = walk(ws, real_base)
    scanner = _Scanner(ws, kinds, cache, real_base)
    scanner.broken.extend(walked.unreadable)
    for folder in walked.folders:
        scanner.folder(folder, folder in walked.linked)
    return scanner.result()
