"""What the remote cache's tests share, whatever the backend: the workspace they build, its
one-machine pack and manifest, fresh clones, ``packer build --json`` runs, and where an asset's
entry lives in a remote (which bundle, where in it: the remote's indexes say).

A "fresh clone" is a copy of a workspace without ``build/`` and ``.packer/``: what a new CI runner
checks out. Every build in these tests is checked against the pack and manifest of a one-machine
build with no remote at all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import pack_bytes, run_packer, text_asset

from packer.cache.bundle import INDEX_PREFIX, Location, decode_index

TEXTS = 12
DEPS = {
    "chain/one": ["text/t0"],
    "chain/two": ["chain/one", "text/t3"],
    "chain/three": ["chain/two"],
}
"""The dependent assets and their deps: the remote is looked up in waves."""
DEPENDENT = tuple(DEPS)
ASSETS = TEXTS + len(DEPENDENT)
SECRET = {"PACKER_CACHE_KEY": "main-branch-secret"}
SUMMARY_KEYS = {
    "ok",
    "pack",
    "processed",
    "cache_local",
    "cache_remote",
    "uploaded",
    "up_to_date",
    "failed",
}


def populate(root: Path) -> None:
    for i in range(TEXTS):
        text_asset(root, f"assets/t{i}", f"text/t{i}", f"line {i}\n")
    # Deps fold their outputs into the dependents' keys: the remote is looked up in waves.
    for name, deps in DEPS.items():
        text_asset(root, f"assets/{name}", name, f"{name.split('/')[1]}\n", deps=deps)


def cache_template(factory: pytest.TempPathFactory) -> tuple[Path, tuple[bytes, bytes]]:
    """A synced workspace (its registry as committed) and its one-machine pack and manifest."""
    root = factory.mktemp("template") / "game"
    assert run_packer("init", str(root), "--name", "game").code == 0
    populate(root)
    assert run_packer("sync", cwd=root).code == 0
    built = factory.mktemp("reference") / "game"
    shutil.copytree(root, built)
    done = run_packer("build", cwd=built)
    assert done.code == 0, done.err
    return root, pack_bytes(built)


def fresh_clone(template: Path, folder: Path) -> Path:
    root = folder / "game"
    shutil.copytree(template, root, ignore=shutil.ignore_patterns("build", ".packer"))
    return root


def build_json(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> dict[str, Any]:
    """``packer build --json ARGS``: its last stdout line, checked to be the whole summary."""
    done = run_packer("build", "--json", *args, cwd=root, env=env, timeout=timeout)
    assert done.code == 0, done.err
    summary: dict[str, Any] = json.loads(done.out.splitlines()[-1])
    assert set(summary) >= SUMMARY_KEYS
    summary["stderr"] = done.err
    return summary


def warnings(summary: dict[str, Any]) -> list[str]:
    return [line for line in summary["stderr"].splitlines() if line.startswith("warning:")]


def asset_ids(root: Path) -> dict[str, str]:
    """asset_name -> asset_id, as the workspace's registry has them."""
    return {
        e["asset_name"]: e["asset_id"]
        for e in json.loads((root / "registry.json").read_text())["assets"]
    }


def output_key(writer: Path, asset_name: str) -> str:
    """The completed output key of an asset as ``writer`` built it: the writer's output cache
    entry shares its artifact's inode and is named by the key."""
    ids = asset_ids(writer)
    inode = (writer / "build" / "assets" / f"{ids[asset_name]}.bin").stat().st_ino
    for entry in (writer / ".packer" / "cache").rglob("*"):
        if entry.is_file() and entry.stat().st_ino == inode:
            return entry.name
    raise AssertionError(f"no cache entry for {asset_name}")


def downstream(asset_name: str) -> set[str]:
    """The asset and every asset that depends on it, at any depth: what builds when its entry
    is refused (a dependent's key needs its deps' outputs)."""
    found = {asset_name}
    while grown := {name for name, deps in DEPS.items() if found & set(deps)} - found:
        found |= grown
    return found


def entry_places(objects: Mapping[str, bytes]) -> dict[str, list[Location]]:
    """Where a remote's indexes (among ``objects``: name -> bytes) place each entry, by output
    key."""
    places: dict[str, list[Location]] = {}
    for name, data in objects.items():
        if name.startswith(INDEX_PREFIX):
            for key, location in decode_index(name.removeprefix(INDEX_PREFIX), data):
                places.setdefault(key, []).append(location)
    return places


def entry_count(objects: Mapping[str, bytes]) -> int:
    """How many entries a remote's indexes place (one key may have several)."""
    return sum(len(found) for found in entry_places(objects).values())


def damaged(data: bytes, location: Location, *, truncated: bool) -> bytes:
    """A bundle's bytes with the entry at ``location`` flipped in its last byte or, with
    ``truncated``, the bundle cut one byte into that entry's end (it must be the last)."""
    end = location.offset + location.size
    if truncated:
        assert end == len(data), "only the last entry of a bundle can be cut short"
        return data[: end - 1]
    flipped = bytearray(data)
    flipped[end - 1] ^= 0x01
    return bytes(flipped)
