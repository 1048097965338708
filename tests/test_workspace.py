"""The workspace (SPEC §2): finding the root, packer.toml, what is scanned, and `packer init`."""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result, registry_json, run_packer, text_asset, write_asset

from packer import open_workspace

Cli = Callable[..., Result]

EMPTY_REGISTRY = '{\n  "format": 1,\n  "assets": [],\n  "retired": []\n}\n'


def _status(cli: Cli, root: Path) -> dict[str, object]:
    result = cli("-C", str(root), "status", "--json")
    assert "Traceback" not in result.err
    data: dict[str, object] = json.loads(result.out)
    return data


def _new_paths(cli: Cli, root: Path) -> list[str]:
    new = _status(cli, root)["new"]
    assert isinstance(new, list)
    return [n["path"] for n in new]


def _no_workspace_above(folder: Path) -> None:
    if any((parent / "packer.toml").exists() for parent in folder.parents):
        pytest.skip("a packer.toml above tmp_path makes every folder part of a workspace")


# --- finding the root ---------------------------------------------------------------------------


def test_root_is_found_upward_from_a_nested_folder(workspace: Path) -> None:
    text_asset(workspace, "assets/chars/hero", "hero")
    nested = workspace / "assets" / "chars" / "hero"
    synced = run_packer("sync", cwd=nested)
    assert synced.code == 0, synced.err
    # Paths are recorded relative to the root, not to where the command ran.
    assert [e["path"] for e in registry_json(workspace)["assets"]] == ["assets/chars/hero"]
    (nested / "asset.json").write_text("{")
    status = run_packer("status", cwd=nested)
    assert status.code == 1
    assert "Traceback" not in status.err
    assert status.err.startswith("error: assets/chars/hero/asset.json:1:2: invalid JSON: ")


@pytest.mark.parametrize("option", ["-C", "--workspace"])
def test_workspace_option_selects_the_workspace_from_anywhere(
    option: str, workspace: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text_asset(workspace, "assets/hero", "hero")
    assert cli(option, str(workspace), "sync").code == 0
    assert cli(option, str(workspace), "status").out == "in sync: 1 asset registered\n"
    # A folder inside the workspace works too: the root is found upward from it.
    assert cli(option, str(workspace / "assets" / "hero"), "ls").out.split()[1:] == [
        "hero",
        "assets/hero",
        "text",
    ]
    assert not (elsewhere / "registry.json").exists()


def test_outside_any_workspace_is_exit_1_with_a_clear_line(tmp_path: Path, cli: Cli) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _no_workspace_above(empty)
    expected = (
        "error: .: not inside a packer workspace (no packer.toml here or in any parent folder); "
        "make one with `packer init`, or name one with `-C DIR`\n"
    )
    for command in ("status", "sync", "ls"):
        result = cli("-C", str(empty), command)
        assert (result.code, result.err) == (1, expected), command
    real = run_packer("status", cwd=empty)
    assert (real.code, real.err) == (1, expected)
    assert list(empty.iterdir()) == []


def test_workspace_option_naming_no_folder_is_exit_1(tmp_path: Path, cli: Cli) -> None:
    result = cli("-C", "no/such/dir", "status")
    assert (result.code, result.err) == (1, "error: no/such/dir: no such folder\n")


# --- packer.toml --------------------------------------------------------------------------------


def test_packer_toml_defaults_are_assets_and_build(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "minimal"
    (root / "assets").mkdir(parents=True)
    (root / "packer.toml").write_text('[workspace]\nname = "minimal"\n')
    ws = open_workspace(str(root))
    assert ws.asset_roots == ("assets",)
    assert ws.out_rel == "build"
    assert Path(ws.pack_path) == root / "build" / "minimal.pack"
    assert Path(ws.manifest_path) == root / "build" / "minimal.manifest.json"
    text_asset(root, "assets/hero", "hero")
    text_asset(root, "elsewhere/villain", "villain")  # not under the default asset root
    assert _new_paths(cli, root) == ["assets/hero"]


def test_several_asset_roots_are_all_scanned(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "multi"
    root.mkdir()
    (root / "packer.toml").write_text(
        '[workspace]\nname = "multi"\nassets = ["sprites", "audio/sfx"]\n'
    )
    text_asset(root, "sprites/hero", "hero")
    text_asset(root, "audio/sfx/jump", "jump")
    text_asset(root, "audio/music/theme", "theme")  # outside both roots
    assert _new_paths(cli, root) == ["audio/sfx/jump", "sprites/hero"]
    assert cli("-C", str(root), "sync").code == 0
    assert sorted(e["path"] for e in registry_json(root)["assets"]) == [
        "audio/sfx/jump",
        "sprites/hero",
    ]


def test_output_folder_is_not_scanned_when_the_asset_root_is_the_workspace(
    tmp_path: Path, cli: Cli
) -> None:
    root = tmp_path / "flat"
    root.mkdir()
    (root / "packer.toml").write_text('[workspace]\nname = "flat"\nassets = ["."]\nout = "out"\n')
    text_asset(root, "hero", "hero")
    text_asset(root, "out/stale-copy", "stale")
    assert _new_paths(cli, root) == ["hero"]


def test_dot_folders_are_not_scanned(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    text_asset(workspace, "assets/.hidden", "hidden")
    text_asset(workspace, "assets/.trash/old", "old")
    text_asset(workspace, "assets/chars/.cache/villain", "villain")
    assert _new_paths(cli, workspace) == ["assets/hero"]
    assert cli("-C", str(workspace), "sync").code == 0
    assert [e["asset_name"] for e in registry_json(workspace)["assets"]] == ["hero"]


def test_scanning_order_does_not_change_status_or_ls(tmp_path: Path, cli: Cli) -> None:
    folders = ["assets/b", "assets/a/z", "assets/c", "assets/a", "assets/m/n/o"]
    roots = []
    for name, order in (("one", folders), ("two", folders[::-1])):
        root = tmp_path / name
        root.mkdir()
        (root / "packer.toml").write_text('[workspace]\nname = "game"\n')
        (root / "assets").mkdir()
        for folder in order:
            text_asset(root, folder, folder.replace("/", "-"))
        roots.append(root)
    one, two = roots
    assert _status(cli, one) == _status(cli, two)
    assert _new_paths(cli, one) == sorted(folders)
    assert cli("-C", str(one), "sync").code == 0
    shutil.copyfile(one / "registry.json", two / "registry.json")
    assert cli("-C", str(two), "status").code == 0
    assert cli("-C", str(one), "ls", "--json").out == cli("-C", str(two), "ls", "--json").out


# --- packer init --------------------------------------------------------------------------------


def test_init_creates_every_workspace_file(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "new-game"
    result = cli("init", str(root), "--name", "my-game")
    assert result.code == 0, result.err
    config = tomllib.loads((root / "packer.toml").read_text())
    assert config == {"workspace": {"name": "my-game", "assets": ["assets"], "out": "build"}}
    assert (root / "registry.json").read_text() == EMPTY_REGISTRY
    assert (root / "assets").is_dir()
    assert list((root / "assets").iterdir()) == []
    dodo = (root / "dodo.py").read_text()
    assert len(dodo.splitlines()) == 2
    assert "packer.doit" in dodo
    compile(dodo, "dodo.py", "exec")
    ignored = (root / ".gitignore").read_text().splitlines()
    assert ".packer/" in ignored
    assert "/build/" in ignored
    assert "registry.json merge=packer-registry" in (root / ".gitattributes").read_text().split(
        "\n"
    )
    assert "registry.json" not in ignored
    status = cli("-C", str(root), "status")
    assert (status.code, status.out) == (0, "in sync: 0 assets registered\n")


def test_init_names_the_pack_after_the_folder_by_default(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "space-duel"
    root.mkdir()
    monkeypatch.chdir(root)
    assert cli("init").code == 0
    assert open_workspace(str(root)).name == "space-duel"
    other = tmp_path / "other"
    assert cli("-C", str(other), "init").code == 0
    assert open_workspace(str(other)).name == "other"


def test_init_keeps_existing_git_files_and_dodo(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "existing"
    root.mkdir()
    (root / ".gitignore").write_text("node_modules/\n.packer/")
    (root / ".gitattributes").write_text("*.png binary\n")
    (root / "dodo.py").write_text("# my own tasks\n")
    assert cli("init", str(root)).code == 0
    assert (root / ".gitignore").read_text().splitlines()[:2] == ["node_modules/", ".packer/"]
    assert (root / ".gitignore").read_text().splitlines().count(".packer/") == 1
    assert (root / ".gitattributes").read_text() == (
        "*.png binary\nregistry.json merge=packer-registry\n"
    )
    assert (root / "dodo.py").read_text() == "# my own tasks\n"


def test_init_refuses_to_init_twice_and_changes_nothing(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    assert cli("-C", str(workspace), "sync").code == 0
    files = {
        p.relative_to(workspace).as_posix(): p.read_bytes()
        for p in workspace.rglob("*")
        if p.is_file() and ".packer" not in p.parts
    }
    result = cli("init", str(workspace), "--name", "other")
    assert (result.code, result.err) == (1, "error: packer.toml: already a packer workspace\n")
    after = {
        p.relative_to(workspace).as_posix(): p.read_bytes()
        for p in workspace.rglob("*")
        if p.is_file() and ".packer" not in p.parts
    }
    assert after == files


def test_init_in_a_folder_that_cannot_name_a_pack_fails_cleanly(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "my game"
    result = cli("init", str(root))
    assert result.code == 1
    assert result.err.startswith("error: packer.toml: workspace.name: ")
    assert "Traceback" not in result.err
    assert not (root / "packer.toml").exists()
    assert not (root / "registry.json").exists()
    assert not (root / "assets").exists()
    # ...and can be retried with a name.
    assert cli("init", str(root), "--name", "my-game").code == 0
    assert (root / "registry.json").read_text() == EMPTY_REGISTRY


def test_asset_json_may_sit_at_any_depth(workspace: Path, cli: Cli) -> None:
    write_asset(
        workspace,
        "assets/a/b/c/d/e",
        {"asset_name": "deep", "kind": "raw", "inputs": ["x.bin"]},
        {"x.bin": b"\x00"},
    )
    text_asset(workspace, "assets/a", "shallow")  # an asset folder may hold another asset
    assert _new_paths(cli, workspace) == ["assets/a", "assets/a/b/c/d/e"]
