"""The read-only walk of a workspace: find, parse and check every asset.json.

The walk visits folders in sorted order and skips folders whose name starts with ``.``; the result
is sorted by path anyway, so nothing downstream can depend on the order the file system returns.
Problems are collected, not raised, so ``packer status`` can list them all at once. They come in
two grades: ``broken`` ones hide an asset's identity (unreadable asset.json, duplicate name) and
stop a registry sync; the rest (kind, params, inputs, deps) only stop a build.
Imports: stdlib, pydantic, packer.model, packer.workspace, packer.kinds, packer.hashing, errors.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from packer.errors import (
    ConfigError,
    DeclError,
    DuplicateNameError,
    InputError,
    PackerError,
    UnknownKindError,
)
from packer.hashing import canonical_json, hash_bytes
from packer.kinds.base import Kind
from packer.model import REGISTRY_OWNED_FIELDS, AssetDecl
from packer.workspace import Workspace

ASSET_FILE = "asset.json"


@dataclass(frozen=True)
class FileStat:
    """What the stat cache compares: a change in any of these means "hash again"."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int


@dataclass(frozen=True)
class Declaration:
    """One parsed asset.json with its inputs resolved to workspace-relative paths."""

    path: str
    """The asset folder, workspace-relative, POSIX."""
    decl: AssetDecl
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
        return posixpath.join(self.path, ASSET_FILE)


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
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as err:
        raise DeclError(f"not UTF-8 text ({err.reason})", display) from None
    except json.JSONDecodeError as err:
        raise DeclError(f"invalid JSON: {err.msg}", display, err.lineno, err.colno) from None
    if not isinstance(data, dict):
        raise DeclError("must be a JSON object", display, 1, 1)
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


def _walk(ws: Workspace) -> list[str]:
    """Workspace-relative folders that hold an asset.json, in sorted order."""
    found: list[str] = []
    skip = {ws.out_rel}
    stack: list[str] = []
    for root in ws.asset_roots:
        if not os.path.isdir(ws.abspath(root)):
            raise ConfigError(
                f"asset folder {root!r} does not exist", "packer.toml", field="workspace.assets"
            )
        stack.append(root)
    while stack:
        rel = stack.pop()
        subdirs: list[str] = []
        with os.scandir(ws.abspath(rel)) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    child = entry.name if rel == "." else f"{rel}/{entry.name}"
                    if child not in skip:
                        subdirs.append(child)
                elif entry.name == ASSET_FILE:
                    found.append(rel)
        stack.extend(sorted(subdirs, reverse=True))
    return sorted(set(found))


def _resolve_input(folder: str, name: str) -> str | None:
    """Workspace-relative path of an input, or None when it escapes the workspace."""
    if posixpath.isabs(name) or "\\" in name:
        return None
    rel = posixpath.normpath(posixpath.join(folder, name))
    if rel == ".." or rel.startswith("../"):
        return None
    return rel


def scan(ws: Workspace, kinds: Mapping[str, Kind]) -> ScanResult:
    decls: list[Declaration] = []
    broken: list[PackerError] = []
    broken_paths: set[str] = set()
    problems: list[PackerError] = []
    stats: dict[str, FileStat] = {}
    for folder in _walk(ws):
        display = posixpath.join(folder, ASSET_FILE)
        try:
            with open(ws.abspath(display), "rb") as handle:
                raw = handle.read()
            decl = parse_declaration(raw, display)
        except PackerError as err:
            broken.append(err)
            broken_paths.add(folder)
            continue
        except OSError as err:
            broken.append(DeclError(f"cannot read: {err.strerror}", display))
            broken_paths.add(folder)
            continue
        inputs: list[str] = []
        for index, name in enumerate(decl.inputs):
            rel = _resolve_input(folder, name)
            if rel is None:
                problems.append(
                    InputError(
                        f"input {name!r} escapes the workspace", display, field=f"inputs.{index}"
                    )
                )
                continue
            inputs.append(rel)
            try:
                st = os.stat(ws.abspath(rel))
            except OSError:
                problems.append(
                    InputError(f"input {name!r} does not exist", display, field=f"inputs.{index}")
                )
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(
                    InputError(f"input {name!r} is not a file", display, field=f"inputs.{index}")
                )
                continue
            stats[rel] = FileStat(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        kind_version, params_json = -1, canonical_json(decl.params).decode()
        kind = kinds.get(decl.kind)
        if kind is None:
            problems.append(UnknownKindError(decl.kind, list(kinds), display))
        else:
            try:
                params = kind.Params.model_validate(decl.params)
                kind_version = kind.version
                params_json = canonical_json(params.model_dump(mode="json")).decode()
            except ValidationError as err:
                first = err.errors()[0]
                loc = ".".join(["params", *(str(part) for part in first["loc"])])
                message = first["msg"]
                if first["type"] == "extra_forbidden":
                    allowed = ", ".join(kind.Params.model_fields) or "none"
                    message = f"unknown param for kind {kind.name!r} (allowed: {allowed})"
                problems.append(DeclError(message, display, field=loc))
        decls.append(
            Declaration(folder, decl, hash_bytes(raw), tuple(inputs), kind_version, params_json)
        )
    broken.extend(_duplicate_names(decls))
    problems.extend(_unknown_deps(decls))
    return ScanResult(
        decls=tuple(decls),
        broken=tuple(sorted(broken, key=_problem_order)),
        broken_paths=frozenset(broken_paths),
        problems=tuple(sorted(problems, key=_problem_order)),
        input_stats=stats,
    )


def _duplicate_names(decls: list[Declaration]) -> list[PackerError]:
    by_name: dict[str, list[str]] = {}
    for d in decls:
        by_name.setdefault(d.decl.asset_name, []).append(d.asset_file)
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
    names = {d.decl.asset_name for d in decls}
    return [
        DeclError(f"unknown dep {dep!r} (no asset has that asset_name)", d.asset_file, field="deps")
        for d in decls
        for dep in d.decl.deps
        if dep not in names
    ]
