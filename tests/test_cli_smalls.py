"""Small things a user meets at the command line (SPEC §8): `packer mv` leaves no empty folder,
`packer init` refuses to nest a workspace, `packer verify` spells the pack one way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import Result, run_doit, run_packer, text_asset

from packer import api

Cli = Callable[..., Result]


def test_mv_removes_the_folders_it_emptied_up_to_the_asset_root(workspace: Path) -> None:
    text_asset(workspace, "assets/old/deep/one", "one")
    text_asset(workspace, "assets/kept/two", "two")
    assert run_packer("sync", cwd=workspace).code == 0
    moved = run_packer("mv", "assets/old/deep/one", "assets/new/one", cwd=workspace)
    assert moved.code == 0, moved.err
    assert not (workspace / "assets/old").exists()
    assert (workspace / "assets/new/one/asset.json").is_file()
    assert (workspace / "assets").is_dir()  # the asset root stays, even when emptied
    moved = run_packer("mv", "assets/kept/two", "assets/new/two", cwd=workspace)
    assert moved.code == 0, moved.err
    assert not (workspace / "assets/kept").exists()
    assert run_packer("status", cwd=workspace).code == 0


def test_mv_keeps_a_folder_that_still_holds_something(workspace: Path) -> None:
    text_asset(workspace, "assets/group/one", "one")
    (workspace / "assets/group/notes.txt").write_text("mine\n")
    assert run_packer("sync", cwd=workspace).code == 0
    assert run_packer("mv", "assets/group/one", "assets/one", cwd=workspace).code == 0
    assert (workspace / "assets/group/notes.txt").read_text() == "mine\n"


def test_init_inside_a_workspace_is_refused(workspace: Path) -> None:
    inner = workspace / "assets" / "sub"
    result = run_packer("init", str(inner), cwd=workspace)
    assert result.code == 1
    assert result.err.splitlines() == [
        f"error: {inner.relative_to(workspace)}: inside the packer workspace at {workspace}; "
        "make the new workspace elsewhere, or add asset folders to that one"
    ]
    assert not (inner / "packer.toml").exists()


def test_init_beside_a_workspace_is_fine(tmp_path: Path) -> None:
    api.init(str(tmp_path / "a"), "a")
    assert run_packer("init", str(tmp_path / "b"), cwd=tmp_path).code == 0


def test_verify_spells_the_pack_the_same_on_success_and_failure(workspace: Path) -> None:
    text_asset(workspace, "assets/one", "one")
    assert run_doit(workspace).code == 0
    good = run_packer("verify", cwd=workspace)
    assert good.out == "ok: build/game.pack: 1 entries\n", good.out
    pack = workspace / "build/game.pack"
    data = bytearray(pack.read_bytes())
    data[70] ^= 0xFF  # inside the first blob
    pack.write_bytes(bytes(data))
    bad = run_packer("verify", cwd=workspace)
    assert bad.code == 1
    assert bad.err.startswith("error: build/game.pack: "), bad.err
