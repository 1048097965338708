"""Small things a user meets at the command line (SPEC §8): `packer mv` leaves no empty folder,
`packer init` refuses to nest a workspace, `packer verify` spells the pack one way, counts agree
with their number, every subcommand says what it does, a merge conflict says whose side is whose.
"""

from __future__ import annotations

import json
import re
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
    assert good.out == "ok: build/game.pack: 1 entry\n", good.out
    pack = workspace / "build/game.pack"
    data = bytearray(pack.read_bytes())
    data[70] ^= 0xFF  # inside the first blob
    pack.write_bytes(bytes(data))
    bad = run_packer("verify", cwd=workspace)
    assert bad.code == 1
    assert bad.err.startswith("error: build/game.pack: "), bad.err


def test_counts_agree_with_their_number(workspace: Path) -> None:
    text_asset(workspace, "assets/one", "one")
    assert run_packer("sync", cwd=workspace).code == 0
    assert run_packer("status", cwd=workspace).out == "in sync: 1 asset registered\n"
    assert run_doit(workspace).code == 0
    assert run_packer("verify", cwd=workspace).out == "ok: build/game.pack: 1 entry\n"
    assert run_packer("build", cwd=workspace).code == 0  # records the build for the next one
    assert run_packer("build", cwd=workspace).out == "-- 1 asset and the pack are up to date\n"
    text_asset(workspace, "assets/two", "two")
    assert run_packer("sync", cwd=workspace).code == 0
    assert run_packer("status", cwd=workspace).out == "in sync: 2 assets registered\n"
    assert run_doit(workspace).code == 0
    assert run_packer("verify", cwd=workspace).out == "ok: build/game.pack: 2 entries\n"


def _commands(usage: str) -> list[str]:
    """The subcommands a parser's help lists in its ``{a,b,c}`` choice."""
    match = re.search(r"\{([a-z,-]+)\}", usage)
    assert match, usage
    return match[1].split(",")


def _description(help_text: str) -> str:
    """The paragraph after the usage lines of a help text ('' when there is none)."""
    paragraphs = help_text.split("\n\n")
    assert paragraphs[0].startswith("usage: "), help_text
    first = paragraphs[1] if len(paragraphs) > 1 else ""
    return "" if first.startswith(("positional arguments:", "options:")) else first


def test_every_subcommand_has_a_description_in_both_helps(tmp_path: Path) -> None:
    top = run_packer("-h", cwd=tmp_path)
    assert top.code == 0, top.err
    commands = _commands(top.out)
    assert {"init", "status", "build", "verify", "merge-registry"} <= set(commands)
    listed = dict(re.findall(r"^    ([a-z-]+) +(\S.*)$", top.out, re.MULTILINE))
    for command in commands:
        assert listed.get(command), f"`packer -h` gives {command} no description"
        own = run_packer(command, "-h", cwd=tmp_path)
        assert own.code == 0, own.err
        assert _description(own.out), f"`packer {command} -h` has no description"
    nested = run_packer("cache", "-h", cwd=tmp_path)
    for command in _commands(nested.out):
        own = run_packer("cache", command, "-h", cwd=tmp_path)
        assert _description(own.out), f"`packer cache {command} -h` has no description"


def test_a_same_path_merge_conflict_says_which_side_is_which(tmp_path: Path, cli: Cli) -> None:
    def registry(*entries: tuple[str, str, str]) -> bytes:
        assets = [{"asset_id": i, "asset_name": n, "path": p} for i, n, p in entries]
        return json.dumps({"format": 1, "assets": assets, "retired": []}).encode()

    base = tmp_path / "base.json"
    base.write_bytes(registry())
    ours = tmp_path / "ours.json"
    ours.write_bytes(registry(("00000000000000bb", "hero", "assets/hero")))
    theirs = tmp_path / "theirs.json"
    theirs.write_bytes(registry(("00000000000000aa", "villain", "assets/hero")))
    result = cli("merge-registry", str(base), str(ours), str(theirs))
    assert result.code == 1
    # Ours first though its id sorts second: the line reads in git's own order.
    assert result.err == (
        "error: registry.json: path 'assets/hero': "
        "ours has 00000000000000bb ('hero') there, "
        "theirs has 00000000000000aa ('villain') there\n"
    )
