"""Checks across declarations: duplicate asset_names, deps on no asset, dependency cycles.

Computed afresh on every scan (never cached): each depends on every declaration at once.
Imports: stdlib, packer.errors, packer.scan.declaration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from packer.errors import CycleError, DeclError, DuplicateNameError, PackerError
from packer.scan.declaration import Declaration


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


def duplicate_names(decls: Sequence[Declaration]) -> list[PackerError]:
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


def unknown_deps(decls: Sequence[Declaration]) -> list[PackerError]:
    names = {d.asset_name for d in decls}
    return [
        DeclError(f"unknown dep {dep!r} (no asset has that asset_name)", d.asset_file, field="deps")
        for d in decls
        for dep in d.deps
        if dep not in names
    ]
