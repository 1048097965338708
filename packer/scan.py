"""The read-only walk of a workspace: find, parse and check every asset.json.

The walk visits folders in sorted order and skips folders whose name starts with ``.``; the result
is sorted by path anyway, so nothing downstream can depend on the order the file system returns.
Problems are collected, not raised, so ``packer status`` can list them all at once. They come in
two grades: ``broken`` ones hide an asset's identity (unreadable asset.json, duplicate name) and
stop a registry sync; the rest (kind, params, inputs, deps) only stop a build.
With a ``StatCache`` (a build's snapshot passes one), an asset.json whose stat is unchanged is
not read again: its hash comes from the stat cache and its parsed declaration from the decl
cache, which is keyed by (folder, content hash) and so can never serve a stale declaration.

Nothing outside the workspace is read through it. The rule is the resolved path: a file or
folder is used only if its real path is under the workspace root's real path, so a link that
stays inside the workspace is followed and one that leads out is refused. It stays cheap at
10,000s of assets because the walk never descends into a folder link (such a folder is not
scanned at all), and every asset root and every folder on its way is resolved once per scan:
so an asset folder is known to be inside, and a plain input name (no ``/``) needs only the
lstat it gets anyway, resolved further only when it is itself a link. An input name with ``/``
has the folders on its way that are not the asset folder's own checked, each once per scan.
An asset.json that is a link (the walk sees that without a system call) is resolved too.

Inputs are only statted here, never opened: a FIFO, device, socket or folder is refused as "not
a file". asset.json is read through ``fsutil.read_regular`` (no blocking open of a special
file) up to ``ASSET_FILE_LIMIT`` (1 MiB) and parsed by ``jsontext.parse_json`` (depth, number
and encoding limits). An unreadable folder in the walk (permission denied, a path longer than
the system takes) is a problem naming it, and it hides identities, so it blocks a sync.
Imports: stdlib, pydantic, packer.model, packer.workspace, packer.kinds.base, packer.hashing,
packer.statcache, packer.fsutil, packer.jsontext, packer.errors.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import json
import marshal
import os
import posixpath
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from packer.errors import (
    ConfigError,
    CycleError,
    DeclError,
    DuplicateNameError,
    InputError,
    PackerError,
    UnknownKindError,
)
from packer.fsutil import MIB, atomic_write, read_regular
from packer.hashing import canonical_json, hash_bytes
from packer.jsontext import JsonTextError, parse_json
from packer.kinds.base import Kind
from packer.model import REGISTRY_OWNED_FIELDS, AssetDecl, path_problem
from packer.statcache import CACHE_FILE_LIMIT, FileStat, StatCache
from packer.workspace import (
    ASSET_FILE,
    CONFIG_FILE,
    DECL_CACHE,
    REGISTRY_FILE,
    Workspace,
    asset_file,
)

ASSET_FILE_LIMIT = 1 * MIB
"""asset.json files larger than this are refused: authoring intent is a few hundred bytes."""


@dataclass(frozen=True, slots=True)
class Declaration:
    """One checked asset.json: its fields, its content hash, its inputs resolved."""

    path: str
    """The asset folder, workspace-relative, POSIX."""
    asset_name: str
    kind: str
    declared_inputs: tuple[str, ...]
    """Inputs as written in asset.json (relative to the asset folder)."""
    deps: tuple[str, ...]
    decl_hash: str
    """xxh3_128 of the asset.json bytes."""
    inputs: tuple[str, ...]
    """Workspace-relative POSIX paths of the inputs, in declared order."""
    kind_version: int
    """Version of the kind, or -1 when the kind is unknown (then a problem is reported)."""
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
    """Stat of every existing input, by workspace-relative path."""

    @property
    def all_problems(self) -> tuple[PackerError, ...]:
        return tuple(sorted(self.broken + self.problems, key=_problem_order))


def _problem_order(err: PackerError) -> tuple[str, int, int, str]:
    return (err.path, err.line or 0, err.col or 0, err.message)


def _key_position(text: str, key: str) -> tuple[int | None, int | None]:
    """Line and column of a top-level ``"key"`` in JSON text, for pointing at a field."""
    index = text.find(json.dumps(key))
    if index < 0:
        return None, None
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_declaration(raw: bytes, display: str) -> AssetDecl:
    """Parse asset.json bytes into a declaration; errors name ``display`` and a position."""
    try:
        data = parse_json(raw)
    except JsonTextError as err:
        raise DeclError(f"invalid JSON: {err.message}", display, err.line, err.col) from None
    if not isinstance(data, dict):
        raise DeclError("must be a JSON object", display, 1, 1)
    text = raw.decode("utf-8")  # parse_json has checked it is UTF-8; the text gives positions
    for owned in REGISTRY_OWNED_FIELDS:
        if owned in data:
            line, col = _key_position(text, owned)
            raise DeclError(
                f"{owned} is owned by registry.json and must not appear in asset.json "
                "(packer allocates ids; remove the field)",
                display,
                line,
                col,
                field=owned,
            )
    try:
        return AssetDecl.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(part) for part in first["loc"]]
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field (allowed: " + ", ".join(AssetDecl.model_fields) + ")"
        line, col = _key_position(text, loc[0]) if loc else (None, None)
        raise DeclError(message, display, line, col, field=".".join(loc)) from None


def _real_rel(real_base: str, real: str) -> str | None:
    """The workspace-relative path of a resolved absolute path ("." for the root), or None
    when it is outside the workspace. ``real_base`` is the root's real path and a separator."""
    if real + os.sep == real_base:
        return "."
    if real.startswith(real_base):
        return real[len(real_base) :].replace(os.sep, "/")
    return None


def _within(rel: str, folder: str) -> bool:
    """Whether workspace-relative ``rel`` is ``folder`` or below it."""
    return folder in (".", rel) or rel.startswith(folder + "/")


def _real_roots(ws: Workspace, real_base: str) -> list[str]:
    """The asset roots' resolved workspace-relative paths, in the order of ``asset_roots``.

    Refuses a root that is missing, one that a link on its way leads out of the workspace, and
    one that a link makes an alias of (or a folder inside) another root, whose assets the scan
    would then find twice under two paths.
    """
    real_roots: list[str] = []
    for root in ws.asset_roots:
        if not os.path.isdir(ws.abspath(root)):
            raise ConfigError(
                f"asset folder {root!r} does not exist", CONFIG_FILE, field="workspace.assets"
            )
        parts = [] if root == "." else root.split("/")
        real = "."
        # Each folder on the way, not only the last: the scan relies on every folder that an
        # asset folder's path passes through resolving inside (see _Scanner._leaves_by_link).
        for end in range(len(parts), 0, -1):
            resolved = _real_rel(real_base, os.path.realpath(ws.abspath("/".join(parts[:end]))))
            if resolved is None:
                raise ConfigError(
                    f"asset folder {root!r} reaches outside the workspace through a link",
                    CONFIG_FILE,
                    field="workspace.assets",
                )
            if end == len(parts):
                real = resolved
        real_roots.append(real)
    pairs = zip(ws.asset_roots, real_roots, strict=True)
    for (root, real), (other, other_real) in itertools.permutations(pairs, 2):
        if _within(real, other_real) and not _within(root, other):
            raise ConfigError(
                f"asset folder {root!r} is {other!r} or inside it through a link; list one of them",
                CONFIG_FILE,
                field="workspace.assets",
            )
    return real_roots


_OWN_FILES = {CONFIG_FILE: "the workspace's config", REGISTRY_FILE: "the workspace's registry"}


def _check_out(ws: Workspace, real_base: str, real_roots: list[str], found: list[str]) -> None:
    """Refuse an output folder that is, or holds, what a build must never write over: the
    workspace's own files or an asset folder (the scan skips the output folder, so an asset
    there would look deleted and its id be retired). Links are resolved first: an output
    folder that links to an asset folder is found among the scanned folders (``found``, sorted)
    by bisection. Registered assets in it are refused by ``api`` (they show as missing)."""
    out = _real_rel(real_base, os.path.realpath(ws.out_dir))
    if out is None:
        return  # outputs outside the workspace (a host graph's out_dir): nothing of it there
    roots = zip(ws.asset_roots, real_roots, strict=True)
    if out == ".":
        problem = "is the workspace root, which holds packer.toml and registry.json"
    elif out in _OWN_FILES:
        problem = f"is {_OWN_FILES[out]}, not a folder for outputs"
    elif held := [root for root, real in roots if _within(real, out)]:
        problem = f"is or holds the asset folder {held[0]!r}"
    elif os.path.lexists(os.path.join(ws.out_dir, ASSET_FILE)):
        problem = f"is an asset folder (it holds {ASSET_FILE})"
    elif (at := _first_within(found, out)) is not None:
        problem = f"is or holds the asset folder {at!r}"
    else:
        return
    raise ConfigError(
        f"{ws.config.workspace.out!r} {problem}; choose another output folder",
        CONFIG_FILE,
        field="workspace.out",
    )


def _first_within(folders: list[str], folder: str) -> str | None:
    """The first of sorted ``folders`` that is ``folder`` or below it (they sort together)."""
    for candidate in (folder, folder + "/"):
        index = bisect.bisect_left(folders, candidate)
        if index < len(folders) and _within(folders[index], folder):
            return folders[index]
    return None


@dataclass(frozen=True)
class _Walked:
    folders: list[str]
    """Workspace-relative folders that hold an asset.json, sorted."""
    linked: set[str]
    """Those of them whose asset.json is a symbolic link."""
    unreadable: list[PackerError]
    """Folders the walk could not list."""


def _walk(ws: Workspace, real_base: str) -> _Walked:
    """Find every asset.json under the asset roots, never entering a folder link.

    Paths are built by string concatenation: ``os.path.join`` per folder is a measurable part
    of a no-op build at 10,000 assets. A root inside another root is skipped by the outer walk
    and walked as itself, so every asset is found once.
    """
    real_roots = _real_roots(ws, real_base)
    found: list[str] = []
    linked: set[str] = set()
    unreadable: list[PackerError] = []
    skip = {ws.out_rel, *ws.asset_roots}
    base = os.path.join(ws.root, "")
    stack = ["" if root == "." else root + "/" for root in ws.asset_roots]
    while stack:
        prefix = stack.pop()
        try:
            with os.scandir(base + prefix if prefix else ws.root) as entries:
                for entry in entries:
                    name = entry.name
                    if name[0] == ".":
                        continue
                    if name == ASSET_FILE:
                        found.append(prefix[:-1] if prefix else ".")
                        if entry.is_symlink():  # from the directory entry: no system call
                            linked.add(found[-1])
                    elif entry.is_dir(follow_symlinks=False) and prefix + name not in skip:
                        stack.append(prefix + name + "/")
        except OSError as err:
            unreadable.append(
                PackerError(f"cannot read folder: {err.strerror}", prefix[:-1] or ".")
            )
    found.sort()
    _check_out(ws, real_base, real_roots, found)
    return _Walked(found, linked, unreadable)


def _resolve_input(folder: str, name: str) -> str | None:
    """Workspace-relative path of an input, or None when it escapes the workspace."""
    if "/" not in name and "\\" not in name and name not in (".", ".."):
        return name if folder == "." else f"{folder}/{name}"  # the common case, kept cheap
    rel = posixpath.normpath(posixpath.join(folder, name))
    return None if path_problem(rel) else rel


_DECL_CACHE_VERSION = 2
# (asset_name, kind, declared inputs, deps, kind version, params_json, inputs)
_CachedDecl = tuple[str, str, tuple[str, ...], tuple[str, ...], int, str, tuple[str, ...]]


class _DeclCache:
    """Parsed declarations of valid asset.json files, keyed by folder and content hash."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._old: dict[str, _CachedDecl] = {}
        try:
            # A special or oversized file is refused unread, a broken one fails to load: either
            # way the cache is empty and the declarations are parsed again.
            version, entries = marshal.loads(read_regular(path, CACHE_FILE_LIMIT))
        except (OSError, EOFError, ValueError, TypeError):
            pass
        else:
            if version == _DECL_CACHE_VERSION and isinstance(entries, dict):
                self._old = entries
        self._new: dict[str, _CachedDecl] = {}

    def get(self, folder: str, digest: str, kinds: Mapping[str, Kind]) -> Declaration | None:
        key = f"{folder}\0{digest}"
        entry = self._old.get(key)
        if type(entry) is not tuple or len(entry) != 7:
            return None  # absent, or not of packer's making: parse the file instead
        name, kind, declared, deps, kind_version, params_json, inputs = entry
        known = kinds.get(kind)
        if known is None or known.version != kind_version:
            return None
        self._new[key] = entry
        return Declaration(
            folder, name, kind, declared, deps, digest, inputs, kind_version, params_json
        )

    def put(self, d: Declaration) -> None:
        self._new[f"{d.path}\0{d.decl_hash}"] = (
            d.asset_name,
            d.kind,
            d.declared_inputs,
            d.deps,
            d.kind_version,
            d.params_json,
            d.inputs,
        )

    def save(self) -> None:
        if self._new != self._old:
            atomic_write(self.path, marshal.dumps((_DECL_CACHE_VERSION, self._new)), durable=False)


def _check_params(
    kind: Kind, params: dict[str, Any], display: str
) -> tuple[str, PackerError | None]:
    """Canonical JSON of the params as the kind validates them (defaults filled in), or error."""
    try:
        validated = kind.Params.model_validate(params)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(["params", *(str(part) for part in first["loc"])])
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(kind.Params.model_fields) or "none"
            message = f"unknown param for kind {kind.name!r} (allowed: {allowed})"
        return canonical_json(params).decode(), DeclError(message, display, field=loc)
    return canonical_json(validated.model_dump(mode="json")).decode(), None


class _Scanner:
    """One walk: collects declarations, problems and input stats."""

    def __init__(
        self, ws: Workspace, kinds: Mapping[str, Kind], cache: StatCache | None, real_base: str
    ) -> None:
        self.ws = ws
        self.kinds = kinds
        self.base = os.path.join(ws.root, "")
        self.real_base = real_base
        self.stat_cache = cache
        self.decl_cache = _DeclCache(ws.state_path(DECL_CACHE)) if cache else None
        self.decls: list[Declaration] = []
        self.broken: list[PackerError] = []
        self.broken_paths: set[str] = set()
        self.problems: list[PackerError] = []
        self.stats: dict[str, FileStat] = {}
        # Most assets of a kind share their params (often none): validate each distinct set once.
        self.params_seen: dict[tuple[str, str], tuple[str, PackerError | None]] = {}
        # Folders off an asset folder's own path that inputs pass through: whether each stays
        # inside the workspace (checked once per scan however many inputs pass through it).
        self.folder_inside: dict[str, bool] = {}

    def folder(self, folder: str, linked: bool) -> None:
        """Check the asset folder ``folder``; ``linked`` when its asset.json is a link."""
        display = asset_file(folder)
        try:
            unusable = path_problem(folder)
            if unusable is not None:
                # The registry refuses such a path, so registering it would break the registry.
                raise DeclError(f"cannot be registered: its folder path {unusable}", display)
            if linked and self._outside(display):
                raise DeclError(f"{ASSET_FILE} links outside the workspace", display)
            st = FileStat.of(os.stat(self.base + display)) if self.stat_cache else None
            cached = self._cached_declaration(folder, display, st)
            if cached is not None:
                self.decls.append(cached)
                self._stat_inputs(cached, display)
                return
            raw = read_regular(self.base + display, ASSET_FILE_LIMIT)
            digest = hash_bytes(raw)
            if self.stat_cache is not None and st is not None:
                # The stat was taken before reading: a write after it changes the stat, so the
                # next run reads again.
                self.stat_cache.record(display, st, digest)
            decl = parse_declaration(raw, display)
        except PackerError as err:
            self.broken.append(err)
            self.broken_paths.add(folder)
            return
        except OSError as err:
            self.broken.append(DeclError(f"cannot read: {err.strerror}", display))
            self.broken_paths.add(folder)
            return
        self._declaration(folder, display, decl, digest)

    def _cached_declaration(
        self, folder: str, display: str, st: FileStat | None
    ) -> Declaration | None:
        """The declaration from the decl cache when the stat cache vouches for the file."""
        if self.stat_cache is None or self.decl_cache is None or st is None:
            return None
        digest = self.stat_cache.cached(display, st)
        return None if digest is None else self.decl_cache.get(folder, digest, self.kinds)

    def _declaration(self, folder: str, display: str, decl: AssetDecl, digest: str) -> None:
        before = len(self.problems)
        inputs: list[str] = []
        for index, name in enumerate(decl.inputs):
            rel = _resolve_input(folder, name)
            if rel is None:
                self.problems.append(
                    InputError(
                        f"input {name!r} escapes the workspace", display, field=f"inputs.{index}"
                    )
                )
            else:
                inputs.append(rel)
        kind = self.kinds.get(decl.kind)
        if kind is None:
            self.problems.append(UnknownKindError(decl.kind, list(self.kinds), display))
            kind_version, params_json = -1, canonical_json(decl.params).decode()
        else:
            memo_key = (decl.kind, repr(decl.params))
            checked = self.params_seen.get(memo_key)
            if checked is None:
                checked = self.params_seen[memo_key] = _check_params(kind, decl.params, display)
            params_json, error = checked
            kind_version = kind.version
            if error is not None:
                self.problems.append(
                    DeclError(error.message, display, error.line, error.col, field=error.field)
                )
        d = Declaration(
            folder,
            decl.asset_name,
            decl.kind,
            decl.inputs,
            decl.deps,
            digest,
            tuple(inputs),
            kind_version,
            params_json,
        )
        self.decls.append(d)
        if self.decl_cache is not None and len(self.problems) == before:
            self.decl_cache.put(d)
        self._stat_inputs(d, display)

    def _outside(self, rel: str) -> bool:
        """Whether ``rel`` resolves (links followed) to a path outside the workspace."""
        return _real_rel(self.real_base, os.path.realpath(self.base + rel)) is None

    def _leaves_by_link(self, folder: str, rel: str) -> bool:
        """Whether a folder on the way to input ``rel`` of asset ``folder`` is a link out.

        The folders on the asset folder's own path are inside already (the roots and the
        folders on their way are resolved once per scan, and the walk enters no folder link),
        so only the others are checked: each with an lstat, resolved if it is a link. Checked
        in order from the root, so each one's parent is known to resolve inside.
        """
        parts = rel.split("/")[:-1]
        own = [] if folder == "." else folder.split("/")
        shared = 0
        while shared < min(len(parts), len(own)) and parts[shared] == own[shared]:
            shared += 1
        for end in range(shared + 1, len(parts) + 1):
            sub = "/".join(parts[:end])
            inside = self.folder_inside.get(sub)
            if inside is None:
                inside = self.folder_inside[sub] = not self._is_link_out(sub)
            if not inside:
                return True
        return False

    def _is_link_out(self, rel: str) -> bool:
        try:
            if not stat.S_ISLNK(os.lstat(self.base + rel).st_mode):
                return False
        except OSError:
            return False  # nothing there: the input itself is then reported missing
        return self._outside(rel)

    def _stat_inputs(self, d: Declaration, display: str) -> None:
        for index, name in enumerate(d.declared_inputs):
            rel = _resolve_input(d.path, name)
            if rel is None:
                continue  # reported with the declaration
            field = f"inputs.{index}"
            if "/" in name and self._leaves_by_link(d.path, rel):
                self.problems.append(
                    InputError(
                        f"input {name!r} reaches outside the workspace through a link",
                        display,
                        field=field,
                    )
                )
                continue
            try:
                st = os.lstat(self.base + rel)
                if stat.S_ISLNK(st.st_mode):
                    # A link may point anywhere: follow it only to a file inside the workspace.
                    if self._outside(rel):
                        self.problems.append(
                            InputError(
                                f"input {name!r} links outside the workspace", display, field=field
                            )
                        )
                        continue
                    st = os.stat(self.base + rel)
            except OSError as err:
                missing = err.errno in (errno.ENOENT, errno.ENOTDIR)
                reason = "does not exist" if missing else f"cannot be read: {err.strerror}"
                self.problems.append(InputError(f"input {name!r} {reason}", display, field=field))
                continue
            if not stat.S_ISREG(st.st_mode):
                self.problems.append(
                    InputError(f"input {name!r} is not a file", display, field=field)
                )
                continue
            self.stats[rel] = FileStat.of(st)

    def result(self) -> ScanResult:
        self.broken.extend(_duplicate_names(self.decls))
        self.problems.extend(_unknown_deps(self.decls))
        cycle = find_cycle(self.decls)
        if cycle is not None:
            self.problems.append(cycle)
        if self.decl_cache is not None:
            self.decl_cache.save()
        return ScanResult(
            decls=tuple(self.decls),
            broken=tuple(sorted(self.broken, key=_problem_order)),
            broken_paths=frozenset(self.broken_paths),
            problems=tuple(sorted(self.problems, key=_problem_order)),
            input_stats=self.stats,
        )


def scan(ws: Workspace, kinds: Mapping[str, Kind], cache: StatCache | None = None) -> ScanResult:
    """Walk the workspace and check every asset.json; with ``cache``, reuse unchanged work."""
    real_base = os.path.join(os.path.realpath(ws.root), "")
    walked = _walk(ws, real_base)
    scanner = _Scanner(ws, kinds, cache, real_base)
    scanner.broken.extend(walked.unreadable)
    for folder in walked.folders:
        scanner.folder(folder, folder in walked.linked)
    return scanner.result()


def find_cycle(decls: Sequence[Declaration]) -> CycleError | None:
    """The first dependency cycle among the declarations, if any (unknown deps are skipped:
    they are reported on their own)."""
    deps = {d.asset_name: d.deps for d in decls}
    files = {d.asset_name: d.asset_file for d in decls}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(deps):
        if start in state:
            continue
        path: list[str] = [start]
        stack: list[Iterator[str]] = [iter(deps[start])]
        state[start] = 1
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(dep) == 1:
                return CycleError([*path[path.index(dep) :], dep], files[dep])
            elif dep not in state and dep in deps:
                state[dep] = 1
                path.append(dep)
                stack.append(iter(deps[dep]))
    return None


def _duplicate_names(decls: list[Declaration]) -> list[PackerError]:
    by_name: dict[str, list[str]] = {}
    for d in decls:
        by_name.setdefault(d.asset_name, []).append(d.asset_file)
    errors: list[PackerError] = []
    for name, files in by_name.items():
        if len(files) > 1:
            for file in files:
                others = ", ".join(f for f in files if f != file)
                errors.append(
                    DuplicateNameError(
                        f"asset_name {name!r} is also declared in {others}",
                        file,
                        field="asset_name",
                    )
                )
    return errors


def _unknown_deps(decls: list[Declaration]) -> list[PackerError]:
    names = {d.asset_name for d in decls}
    return [
        DeclError(f"unknown dep {dep!r} (no asset has that asset_name)", d.asset_file, field="deps")
        for d in decls
        for dep in d.deps
        if dep not in names
    ]
