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
    "packer.lazyexports": set(),
    "packer.hashing": set(),
    "packer.model": {"packer.errors"},
    "packer.kinds.base": {"packer.errors"},
    "packer.kinds.raw": KINDS,
    "packer.kinds.text": KINDS,
    "packer.kinds.json": KINDS,
    "packer.kinds.samples16": KINDS,
    "packer.kinds.image": KINDS | {"packer.kinds.samples16"},
    "packer.kinds.oggpages": set(),
    "packer.kinds.audio": KINDS | {"packer.kinds.oggpages"},
    "packer.kinds.skyline": set(),
    "packer.kinds.atlas": KINDS | {"packer.kinds.image", "packer.kinds.skyline"},
    "packer.kinds.registry": KINDS
    | {f"packer.kinds.{k}" for k in ("raw", "text", "json", "image", "audio", "atlas")},
    "packer.kinds": {"packer.kinds.base", "packer.kinds.registry"},
    "packer.layout": {"packer.errors", "packer.fsutil"},
    "packer.workspace": {
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.layout",
        "packer.model",
    },
    "packer.statcache": {
        "packer.errors",
        "packer.fsutil",
        "packer.hashing",
    },
    # What a plain packer build that nothing changed imports: no pydantic, no doit.
    "packer.statrecord": {"packer.errors", "packer.fsutil", "packer.layout", "packer.statcache"},
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
        "packer.errors",
        "packer.fsutil",
        "packer.hashing",
        "packer.registry",
        "packer.scan",
        "packer.scan.inputs",
        "packer.statcache",
        "packer.workspace",
    },
    "packer.plan": {
        "packer.errors",
        "packer.hashing",
        "packer.keys",
        "packer.model",
        "packer.pack.codec",
        "packer.registry",
        "packer.scan",
        "packer.snapshot",
        "packer.workspace",
    },
    # The pack: the face and the reader stay light (stdlib and xxhash); the rest loads on use.
    "packer.pack": {
        "packer.errors",
        "packer.pack.codec",
        "packer.pack.commit",
        "packer.pack.format",
        "packer.pack.manifest",
        "packer.pack.reader",
        "packer.pack.verify",
        "packer.pack.writer",
        "packer.lazyexports",
    },
    "packer.pack.codec": {"packer.errors"},
    "packer.pack.format": {"packer.errors", "packer.pack.codec"},
    "packer.pack.reader": {
        "packer.errors",
        "packer.fsutil",
        "packer.pack.codec",
        "packer.pack.format",
    },
    "packer.pack.commit": {
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.pack.format",
    },
    "packer.pack.manifest": {
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.pack.format",
    },
    "packer.pack.reuse": {"packer.fsutil", "packer.statcache"},
    "packer.pack.writer": {
        "packer.artifact",
        "packer.errors",
        "packer.fsutil",
        "packer.pack.codec",
        "packer.pack.commit",
        "packer.pack.format",
        "packer.pack.manifest",
        "packer.pack.reuse",
        "packer.statcache",
    },
    "packer.pack.verify": {
        "packer.errors",
        "packer.pack.codec",
        "packer.pack.commit",
        "packer.pack.format",
        "packer.pack.manifest",
        "packer.pack.reader",
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
    "packer.doittask": set(),
    # The edit loop: why a task is not up to date (its key's parts against doit's record), and
    # packer build's reporter.
    "packer.why": {
        "packer.doitdb",
        "packer.errors",
        "packer.hashing",
        "packer.keys",
        "packer.kinds.registry",
        "packer.lane",
        "packer.model",
        "packer.plan",
        "packer.registry",
        "packer.scan",
        "packer.snapshot",
        "packer.statcache",
        "packer.workspace",
    },
    "packer.progress": {"packer.errors"},
    # The shared cache: the store interface, its backends, the entries, one build's use of it.
    "packer.cache": set(),
    "packer.cache.store": set(),
    # boto3, loaded only when a remote names s3://.
    "packer.cache.s3": {"packer.cache.store"},
    "packer.cache.entry": set(),
    "packer.cache.bundle": set(),
    "packer.cache.filestore": {"packer.cache.store", "packer.fsutil"},
    "packer.cache.settings": {
        "packer.cache.filestore",
        "packer.cache.s3",
        "packer.cache.store",
        "packer.errors",
        "packer.model",
    },
    "packer.cache.remote": {
        "packer.artifact",
        "packer.cache.bundle",
        "packer.cache.entry",
        "packer.cache.settings",
        "packer.cache.store",
        "packer.errors",
        "packer.keys",
        "packer.model",
        "packer.plan",
        "packer.workspace",
    },
    "packer.cache.prune": {
        "packer",
        "packer.cache.bundle",
        "packer.cache.remote",
        "packer.cache.store",
        "packer.errors",
        "packer.plan",
        "packer.workspace",
    },
    "packer.shards": {"packer.plan"},
    # The two shells: thin layers over the API (``packer`` is ``packer.api`` re-exported).
    "packer.doit": {
        "packer",
        "packer.build",
        "packer.cache.remote",
        "packer.model",
        "packer.shards",
        "packer.doitdb",
        "packer.doittask",
        "packer.errors",
        "packer.gcpause",
        "packer.keys",
        "packer.pack",
        "packer.plan",
        "packer.progress",
        "packer.scan",
        "packer.shortcut",
        "packer.snapshot",
        "packer.statrecord",
        "packer.why",
        "packer.workspace",
        "packer.lane",
    },
    # packer watch: one packer.doit build per change set the watcher reports.
    "packer.watch": {
        "packer.api",
        "packer.doit",
        "packer.errors",
        "packer.plan",
        "packer.progress",
        "packer.registry",
        "packer.workspace",
    },
    "packer.cli": {
        "packer",
        "packer.cache.prune",
        "packer.cache.settings",
        "packer.shards",
        "packer.doit",
        "packer.watch",
        "packer.why",
        "packer.errors",
        "packer.fsutil",
        "packer.jsontext",
        "packer.pack",
        "packer.plan",
        "packer.workspace",
    },
    "packer.__main__": {"packer.cli", "packer.statrecord"},
    "packer": {
        "packer.api",
        "packer.errors",
        "packer.kinds.base",
        "packer.plan",
        "packer.snapshot",
        "packer.workspace",
        "packer.lazyexports",
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


# Calls that write, move or remove the file named by their arguments (``open`` only with a
# writing mode). tests/test_registry_writes.py checks the same rule on what processes do.
_FILE_WRITERS = {
    "atomic_output",
    "atomic_outputs",
    "atomic_write",
    "copy",
    "copy2",
    "copyfile",
    "link",
    "move",
    "open",
    "remove",
    "remove_stale_temps",
    "rename",
    "renames",
    "replace",
    "symlink",
    "truncate",
    "unlink",
    "write_bytes",
    "write_disposable",
    "write_text",
}
_READ_MODES = {"r", "rb", "rt", "br", "tr"}


def _mentions(node: ast.AST, names: set[str]) -> bool:
    """Whether ``node`` names the registry: ``.registry_path``, ``REGISTRY_FILE``, an alias."""
    return any(
        (isinstance(n, ast.Attribute) and n.attr == "registry_path")
        or (isinstance(n, ast.Name) and n.id in names)
        for n in ast.walk(node)
    )


def _writes_the_registry(call: ast.Call, names: set[str]) -> bool:
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if called not in _FILE_WRITERS:
        return False
    if called == "open" and isinstance(func, ast.Name):
        mode = call.args[1] if len(call.args) > 1 else None
        mode = next((k.value for k in call.keywords if k.arg == "mode"), mode)
        if mode is None or (isinstance(mode, ast.Constant) and mode.value in _READ_MODES):
            return False
    return any(_mentions(arg, names) for arg in [*call.args, *(k.value for k in call.keywords)])


def _bound_to_registry(node: ast.AST, names: set[str]) -> set[str]:
    """The names ``node`` binds to an expression that names the registry."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return set()
    return {t.id for t in targets if isinstance(t, ast.Name)} if _mentions(value, names) else set()


def _registry_writes(path: Path) -> list[int]:
    """Lines where ``path`` hands the registry's path (or a name bound to it) to a writer."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"REGISTRY_FILE"}
    for _ in range(3):  # aliases of aliases: ``path = ws.registry_path; target = path``
        for node in ast.walk(tree):
            names |= _bound_to_registry(node, names)
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _writes_the_registry(node, names)
    ]


def test_only_the_lane_touches_the_registry_file() -> None:
    # The workspace names the path; only the lane passes it to anything that writes.
    writers = {_module_name(p): lines for p in MODULES if (lines := _registry_writes(p))}
    assert set(writers) == {"packer.lane"}, writers
