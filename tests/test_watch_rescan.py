"""``scan.rescan`` on a real workspace: after each kind of change, told the changed paths, it
gives exactly the scan a full scan gives, or declines (and the caller scans in full)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from conftest import text_asset, write_asset

from packer import api
from packer.errors import PackerError
from packer.kinds.registry import load_kinds
from packer.plan import plan_build
from packer.scan import ScanResult, ScanState, rescan, scan_state
from packer.snapshot import open_stat_cache
from packer.workspace import open_workspace


def _problem(err: PackerError) -> tuple[object, ...]:
    return (type(err).__name__, err.path, err.line, err.col, err.field, str(err))


def _comparable(result: ScanResult) -> tuple[object, ...]:
    return (
        result.decls,
        [_problem(e) for e in result.broken],
        result.broken_paths,
        [_problem(e) for e in result.problems],
        dict(result.input_stats),
    )


def _full(root: Path) -> ScanState:
    ws = open_workspace(str(root), search_up=False)
    return scan_state(ws, load_kinds(), open_stat_cache(ws))


def _rescanned(root: Path, previous: ScanState, changed: list[str]) -> ScanState | None:
    ws = open_workspace(str(root), search_up=False)
    return rescan(ws, load_kinds(), open_stat_cache(ws, partial=True), previous, changed)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_after_each_change_the_rescan_is_the_full_scan(workspace: Path) -> None:
    assets = workspace / "assets"
    text_asset(assets, "a", "a", "one\n")
    text_asset(assets, "b", "b", deps=["a"])
    text_asset(assets, "group/c", "c")
    write_asset(
        assets,
        "d",
        {"asset_name": "d", "kind": "text", "inputs": ["../shared/x.txt", "missing.txt"]},
        {},
    )
    _write(assets / "shared" / "x.txt", "shared\n")
    a_decl = (assets / "a" / "asset.json").read_text(encoding="utf-8")
    steps: list[tuple[str, Callable[[], object], list[str]]] = [
        (
            "an input's content",
            lambda: _write(assets / "a/data.txt", "two\n"),
            ["assets/a/data.txt"],
        ),
        (
            "an asset.json made invalid",
            lambda: _write(assets / "a/asset.json", a_decl.replace('"kind"', '"knd"')),
            ["assets/a/asset.json"],
        ),
        ("and fixed", lambda: _write(assets / "a/asset.json", a_decl), ["assets/a/asset.json"]),
        (
            "a missing input made",
            lambda: _write(assets / "d/missing.txt", "here\n"),
            ["assets/d/missing.txt"],
        ),
        (
            "an input outside its folder",
            lambda: _write(assets / "shared/x.txt", "changed\n"),
            ["assets/shared/x.txt"],
        ),
        (
            "a folder of them renamed",
            lambda: (assets / "shared").rename(assets / "common"),
            ["assets/shared", "assets/common"],
        ),
        ("a new asset", lambda: text_asset(assets, "e/f", "f"), ["assets/e"]),
        (
            "a duplicate asset_name",
            lambda: text_asset(assets, "g", "f"),
            ["assets/g", "assets/g/asset.json", "assets/g/data.txt"],
        ),
        ("a folder deleted", lambda: shutil.rmtree(assets / "g"), ["assets/g"]),
        (
            "an asset moved",
            lambda: (assets / "group").rename(assets / "moved"),
            ["assets/group", "assets/moved"],
        ),
        ("a dep deleted", lambda: shutil.rmtree(assets / "a"), ["assets/a"]),
        (
            "into a dot folder (not scanned)",
            lambda: (assets / "moved").rename(assets / ".hidden"),
            ["assets/moved", "assets/.hidden"],
        ),
        (
            "a file that nothing reads",
            lambda: _write(assets / "notes.txt", "hi\n"),
            ["assets/notes.txt"],
        ),
    ]
    state = _full(workspace)
    for what, change, changed in steps:
        change()
        again = _rescanned(workspace, state, changed)
        assert again is not None, what
        full = _full(workspace)
        assert _comparable(again.result) == _comparable(full.result), what
        state = again


def test_it_declines_what_it_cannot_vouch_for(workspace: Path) -> None:
    assets = workspace / "assets"
    text_asset(assets, "a", "a")
    state = _full(workspace)
    assert _rescanned(workspace, state, ["assets"]) is None  # an asset root
    assert _rescanned(workspace, state, [f"assets/n{i}" for i in range(1_001)]) is None
    os.symlink("a/data.txt", assets / "link.txt")
    write_asset(assets, "l", {"asset_name": "l", "kind": "text", "inputs": ["../link.txt"]}, {})
    linked = _rescanned(workspace, state, ["assets/l", "assets/link.txt"])
    assert linked is not None and not linked.incremental  # reads through a link
    assert _rescanned(workspace, linked, ["assets/a/data.txt"]) is None
    assert (
        json.loads((assets / "l" / "asset.json").read_text(encoding="utf-8"))["asset_name"] == "l"
    )


def test_a_plan_reusing_the_previous_ones_tasks_is_the_plan_made_afresh(workspace: Path) -> None:
    assets = workspace / "assets"
    text_asset(assets, "a", "a", "one\n")
    text_asset(assets, "b", "b", deps=["a"])
    ws = open_workspace(str(workspace), search_up=False)
    before = plan_build(api.snapshot(ws))
    _write(assets / "a" / "data.txt", "two\n")
    snapshot = api.snapshot(ws)
    reused = plan_build(snapshot, previous=before)
    assert reused == plan_build(snapshot)
    assert reused.tasks != before.tasks
