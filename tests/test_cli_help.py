"""`packer --version` and `packer build --help` (SPEC §8): packer's own words, not doit's.

Through the CLI as a real process, inside a workspace and outside any.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_packer


def test_version_names_packer_and_its_version(tmp_path: Path) -> None:
    result = run_packer("--version", cwd=tmp_path)
    assert result.code == 0, result.err
    assert re.fullmatch(r"packer \d+\.\d+\.\d+\n", result.out), result.out


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("where", ["workspace", "outside"])
def test_build_help_describes_packers_options_then_doits(
    flag: str, where: str, workspace: Path, tmp_path: Path
) -> None:
    cwd = workspace if where == "workspace" else tmp_path
    result = run_packer("build", flag, cwd=cwd)
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.startswith(
        "usage: packer build [-h] [--frozen] [--json] [--shard K/N] [DOIT ARGS ...]\n"
    )
    assert "--frozen" in result.out and "PACKER_FROZEN=1" in result.out
    assert "--json" in result.out and "--shard K/N" in result.out
    assert "passed to doit unchanged" in result.out
    # Not doit's help, whose commands and program name do not exist under packer.
    assert "__main__.py" not in result.out and "CmdOption" not in result.out
    assert "packer run" not in result.out and "packer list" not in result.out


def test_build_help_after_frozen_is_still_packers(workspace: Path) -> None:
    result = run_packer("build", "--frozen", "--help", cwd=workspace)
    assert result.code == 0, result.err
    assert result.out.startswith("usage: packer build")
    assert not (workspace / "build").exists()  # help builds nothing
