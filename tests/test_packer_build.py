"""`packer build`: the shortcut that skips doit when nothing changed must never hide work."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import ids_by_name, pack_bytes, run_doit, run_packer, text_asset

UP_TO_DATE = "assets and the pack are up to date"


def _built(workspace: Path) -> Path:
    text_asset(workspace, "assets/a", "a", "alpha\n")
    text_asset(workspace, "assets/b", "b", "beta\n")
    first = run_packer("build", cwd=workspace)
    assert first.code == 0, first.err
    assert ".  pack" in first.out
    return workspace


def test_second_build_skips_doit(workspace: Path) -> None:
    _built(workspace)
    before = pack_bytes(workspace)
    again = run_packer("build", cwd=workspace)
    assert again.code == 0, again.err
    assert UP_TO_DATE in again.out
    assert pack_bytes(workspace) == before


def test_touch_keeps_the_shortcut(workspace: Path) -> None:
    _built(workspace)
    run_packer("build", cwd=workspace)
    os.utime(workspace / "assets/a/data.txt")
    assert UP_TO_DATE in run_packer("build", cwd=workspace).out


def test_content_change_goes_through_doit(workspace: Path) -> None:
    _built(workspace)
    run_packer("build", cwd=workspace)
    (workspace / "assets/a/data.txt").write_text("ALPHA\n", encoding="utf-8")
    result = run_packer("build", cwd=workspace)
    assert result.code == 0, result.err
    asset_id = ids_by_name(workspace)["a"]
    assert f".  asset:{asset_id}" in result.out
    assert ".  pack" in result.out


def test_forget_or_deleted_output_goes_through_doit(workspace: Path) -> None:
    _built(workspace)
    asset_id = ids_by_name(workspace)["b"]
    assert run_doit(workspace, "forget", f"asset:{asset_id}").code == 0
    result = run_packer("build", cwd=workspace)
    assert f".  asset:{asset_id}" in result.out

    artifact = workspace / "build" / "assets" / f"{asset_id}.bin"
    artifact.unlink()
    result = run_packer("build", cwd=workspace)
    assert f".  asset:{asset_id}" in result.out
    assert artifact.exists()

    (workspace / "build" / "game.pack").unlink()
    result = run_packer("build", cwd=workspace)
    assert ".  pack" in result.out


def test_doit_arguments_always_reach_doit(workspace: Path) -> None:
    _built(workspace)
    result = run_packer("build", "list", cwd=workspace)
    assert result.code == 0, result.err
    assert "pack" in result.out.split()
    assert UP_TO_DATE not in result.out
    assert run_packer("build", "no-such-task", cwd=workspace).code == 2
