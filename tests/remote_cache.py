"""What the remote cache's tests share, whatever the backend: the workspace they build, its
one-machine pack and manifest, fresh clones, ``packer build --json`` runs, and where an asset's
entry lives in a remote.

A "fresh clone" is a copy of a workspace without ``build/`` and ``.packer/``: what a new CI runner
checks out. Every build in these tests is checked against the pack and manifest of a one-machine
build with no remote at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import pack_bytes, run_packer, text_asset

TEXTS = 12
DEPENDENT = ("chain/one", "chain/two", "chain/three")
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
    text_asset(root, "assets/chain/one", "chain/one", "one\n", deps=["text/t0"])
    text_asset(root, "assets/chain/two", "chain/two", "two\n", deps=["chain/one", "text/t3"])
    text_asset(root, "assets/chain/three", "chain/three", "three\n", deps=["chain/two"])


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


def entry_name(writer: Path, asset_name: str) -> str:
    """The remote object name (``<2 hex>/<key>``) of an asset's output as ``writer`` built it:
    the writer's output cache entry shares its artifact's inode and is named by the same key."""
    ids = {
        e["asset_name"]: e["asset_id"]
        for e in json.loads((writer / "registry.json").read_text())["assets"]
    }
    inode = (writer / "build" / "assets" / f"{ids[asset_name]}.bin").stat().st_ino
    for entry in (writer / ".packer" / "cache").rglob("*"):
        if entry.is_file() and entry.stat().st_ino == inode:
            return f"{entry.parent.name}/{entry.name}"
    raise AssertionError(f"no cache entry for {asset_name}")
