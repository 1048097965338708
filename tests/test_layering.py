"""Imports point downward: each module may import only the packer modules listed for it.

The list is the architecture (docs/architecture.md) in executable form: a new import that
crosses a layer fails here, so it is a decision made in review, not an accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "packer"

KINDS = {"packer.kinds.base", "packer.errors", "packer.hashing", "packer.kinds.text"}
ALLOWED: dict[str, set[str]] = {
    "packer.errors": set(),
    "packer.fsutil": set(),
    "packer.jsontext": set(),
    "packer.hashing": set(),
    "packer.model": set(),
    "packer.kinds.base": set(),
    "packer.kinds.raw": KINDS,
    "packer.kinds.text": KINDS,
    "packer.kinds.json": KINDS,
    "packer.kinds.image": KINDS,
    "packer.kinds.audio": KINDS,
    "packer.kinds.registry": KINDS
    | {f"packer.kinds.{k}" for k in ("raw", "text", "json", "image", "audio")},
    "packer.kinds": {"packer.kinds.base", "packer.kinds.registry"},
    "packer.workspace": {
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.model",
    },
    "packer.statcache": {
        "packer.errors",
        "packer.fsutil",
        "packer.hashing",
    },
    "packer.artifact": {
        "packer.errors",
        "packer.fsutil",
    },
    "packer.registry": {
        "packer.errors",
        "packer.fsutil",
        "packer.hashing",
        "packer.jsontext",
        "packer.model",
        "packer.workspace",
    },
    "packer.lane": {
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.registry",
        "packer.workspace",
    },
    "packer.scan": {
        "packer.scan.assetfile",
        "packer.scan.declaration",
        "packer.scan.graph",
        "packer.scan.scanner",
    },
    "packer.scan.declaration": {"packer.errors", "packer.statcache", "packer.workspace"},
    "packer.scan.walk": {"packer.errors", "packer.workspace"},
    "packer.scan.assetfile": {
        "packer.errors",
        "packer.fsutil",
        "packer.hashing",
        "packer.jsontext",
        "packer.kinds.base",
        "packer.model",
    },
    "packer.scan.declcache": {"packer.fsutil", "packer.scan.declaration", "packer.statcache"},
    "packer.scan.inputs": {
        "packer.errors",
        "packer.model",
        "packer.scan.declaration",
        "packer.scan.walk",
        "packer.statcache",
    },
    "packer.scan.graph": {"packer.errors", "packer.scan.declaration"},
    "packer.scan.scanner": {
        "packer.errors",
        "packer.fsutil",
        "packer.hashing",
        "packer.kinds.base",
        "packer.model",
        "packer.scan.assetfile",
        "packer.scan.declaration",
        "packer.scan.declcache",
        "packer.scan.graph",
        "packer.scan.inputs",
        "packer.scan.walk",
        "packer.statcache",
        "packer.workspace",
    },
    "packer.keys": {"packer.artifact", "packer.hashing", "packer.scan"},
    "packer.snapshot": {
        "packer.hashing",
        "packer.registry",
        "packer.scan",
        "packer.statcache",
        "packer.workspace",
    },
    "packer.plan": {
        "packer.errors",
        "packer.keys",
        "packer.model",
        "packer.registry",
        "packer.scan",
        "packer.snapshot",
        "packer.workspace",
    },
    "packer.pack": {
        "packer.artifact",
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
    },
    "packer.build": {
        "packer.artifact",
        "packer.errors",
        "packer.fsutil",
        "packer.hashing",
        "packer.keys",
        "packer.kinds.base",
        "packer.kinds.registry",
        "packer.plan",
        "packer.workspace",
    },
    # The load phase's collector pause and the ``packer build`` shortcut's record.
    "packer.gcpause": set(),
    "packer.shortcut": {"packer.fsutil", "packer.jsontext", "packer.workspace"},
    "packer.api": {
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.kinds.registry",
        "packer.lane",
        "packer.model",
        "packer.plan",
        "packer.registry",
        "packer.scan",
        "packer.snapshot",
        "packer.workspace",
    },
    # doit's record: the build lock that guards it, the backend that stores it.
    # doit imports every doit.BACKEND entry point when it starts, in every project: keep it light.
    "packer.doitdb": {"packer.errors", "packer.fsutil"},
    # The two shells: thin layers over the API (``packer`` is ``packer.api`` re-exported).
    "packer.doit": {
        "packer",
        "packer.build",
        "packer.doitdb",
        "packer.errors",
        "packer.gcpause",
        "packer.keys",
        "packer.pack",
        "packer.plan",
        "packer.shortcut",
        "packer.workspace",
        "packer.lane",
    },
    "packer.cli": {
        "packer",
        "packer.doit",
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.pack",
        "packer.plan",
        "packer.workspace",
    },
    "packer.__main__": {"packer.cli"},
    "packer": {
        "packer.api",
        "packer.errors",
        "packer.kinds.base",
        "packer.plan",
        "packer.snapshot",
        "packer.workspace",
    },
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _packer_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == "packer" or n.startswith("packer."))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert {_module_name(p) for p in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_imports_point_downward(path: Path) -> None:
    name = _module_name(path)
    assert _packer_imports(path) <= ALLOWED[name], f"{name} imports outside its layer"


def test_only_the_lane_touches_the_registry_file() -> None:
    # The workspace names the path; the lane alone opens it (reads inside the lock, writes).
    users = {_module_name(p) for p in MODULES if "registry_path" in p.read_text(encoding="utf-8")}
    assert users == {"packer.workspace", "packer.lane"}
