"""Chaining into a larger graph (SPEC §4): a project's own dodo.py adds packer's tasks.

The host dodo.py files are written here as text and run with plain ``python -m doit`` in
tmp_path, which holds the workspaces ``game`` and ``tools`` beside the host's own files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DoitRun, ids_by_name, pack_bytes, run_doit, text_asset, write_asset

from packer import api
from packer.doit import packer_tasks
from packer.pack import PackReader, verify_pack

COPY = """\
import os
import shutil


def _copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)
"""

TWO_WORKSPACES = (
    COPY
    + """
from packer.doit import packer_tasks

game = packer_tasks("game", prefix="game/")
tools = packer_tasks("tools", prefix="tools/")


def task_ship():
    return {
        "actions": [(_copy, [game.pack_path, "dist/game.pack"])],
        "file_dep": [game.pack_path],
        "targets": ["dist/game.pack"],
        "clean": True,
    }
"""
)

GENERATED_INPUT = (
    COPY
    + """
from packer.doit import packer_tasks


def task_gen_level():
    return {
        "actions": [(_copy, ["level.src", "game/assets/level/level.json"])],
        "file_dep": ["level.src"],
        "targets": ["game/assets/level/level.json"],
    }


game = packer_tasks("game", prefix="game/", after=["gen_level"])


def task_ship():
    # With ``after``, doit creates packer's tasks late and links a file_dep to their targets
    # only through the named task (see packer_tasks).
    return {
        "actions": [(_copy, [game.pack_path, "dist/game.pack"])],
        "file_dep": [game.pack_path],
        "task_dep": ["game/pack"],
        "targets": ["dist/game.pack"],
    }
"""
)


GENERATED_BY_TARGET = (
    COPY
    + """
from packer.doit import packer_tasks

LEVEL = "game/assets/level/level.json"
game = packer_tasks("game", prefix="game/", generated=[LEVEL])


def task_gen_level():
    return {
        "actions": [(_copy, ["level.src", LEVEL])],
        "file_dep": ["level.src"],
        "targets": [LEVEL],
    }


def task_ship():
    return {
        "actions": [(_copy, [game.pack_path, "dist/game.pack"])],
        "file_dep": [game.pack_path],
        "targets": ["dist/game.pack"],
        "clean": True,
    }
"""
)


def ok(result: DoitRun) -> set[str]:
    assert result.code == 0, result.out + result.err
    return set(result.executed)


def asset_tasks(prefix: str, root: Path, *names: str) -> set[str]:
    ids = ids_by_name(root)
    return {f"{prefix}asset:{ids[name]}" for name in (names or ids)}


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """tmp_path with workspaces game (3 assets) and tools (2 assets) and TWO_WORKSPACES."""
    game, tools = tmp_path / "game", tmp_path / "tools"
    api.init(str(game), "game")
    api.init(str(tools), "tools")
    text_asset(game / "assets", "intro", "intro", "hello\n")
    decl = {"asset_name": "config", "kind": "json", "inputs": ["c.json"], "deps": ["intro"]}
    write_asset(game / "assets", "config", decl, {"c.json": '{"b": 1, "a": 2}'})
    decl = {"asset_name": "blob", "kind": "raw", "inputs": ["b.bin"]}
    write_asset(game / "assets", "blob", decl, {"b.bin": b"\x01\x02"})
    text_asset(tools / "assets", "help", "help", "usage\n")
    text_asset(tools / "assets", "about", "about", "about\n")
    (tmp_path / "dodo.py").write_text(TWO_WORKSPACES, encoding="utf-8")
    return tmp_path


def test_doit_list_shows_both_workspaces_tasks_under_their_prefixes(host: Path) -> None:
    listed = run_doit(host, "list")
    assert listed.code == 0, listed.err
    names = {line.split()[0] for line in listed.out.splitlines() if line.strip()}
    game, tools = host / "game", host / "tools"
    assert names == (
        asset_tasks("game/", game)
        | {"game/pack"}
        | asset_tasks("tools/", tools)
        | {"tools/pack", "ship"}
    )
    assert len(asset_tasks("game/", game)) == 3
    assert len(asset_tasks("tools/", tools)) == 2


def test_task_with_file_dep_on_the_pack_runs_after_it_and_again_when_it_changes(
    host: Path,
) -> None:
    game, tools = host / "game", host / "tools"
    first = run_doit(host)
    everything = asset_tasks("game/", game) | asset_tasks("tools/", tools)
    assert ok(first) == everything | {"game/pack", "tools/pack", "ship"}
    order = list(first.executed)
    assert order.index("game/pack") < order.index("ship")
    assert (host / "dist/game.pack").read_bytes() == pack_bytes(game)[0]
    assert ok(run_doit(host)) == set()

    (game / "assets/intro/data.txt").write_text("changed\n", encoding="utf-8")
    again = run_doit(host)
    assert ok(again) == asset_tasks("game/", game, "intro", "config") | {"game/pack", "ship"}
    assert asset_tasks("tools/", tools) | {"tools/pack"} <= set(again.up_to_date)
    assert (host / "dist/game.pack").read_bytes() == pack_bytes(game)[0]

    # The other workspace's change leaves the game pack, so the host task, alone.
    (tools / "assets/help/data.txt").write_text("more usage\n", encoding="utf-8")
    assert ok(run_doit(host)) == asset_tasks("tools/", tools, "help") | {"tools/pack"}


def test_doit_clean_in_the_host_graph_removes_every_output(host: Path) -> None:
    ok(run_doit(host))
    cleaned = run_doit(host, "clean")
    assert cleaned.code == 0, cleaned.err
    for name in ("game", "tools"):
        out = host / name / "build"
        assert not (out / f"{name}.pack").exists()
        assert not (out / f"{name}.manifest.json").exists()
        assert list((out / "assets").iterdir()) == []
    assert not (host / "dist/game.pack").exists()
    # Authored files are not outputs.
    assert (host / "game/assets/intro/data.txt").read_text("utf-8") == "hello\n"
    assert (host / "game/registry.json").exists()


def test_asset_input_generated_by_a_host_task_builds_and_rebuilds(host: Path) -> None:
    game = host / "game"
    (host / "dodo.py").write_text(GENERATED_INPUT, encoding="utf-8")
    (host / "level.src").write_text('{"tiles": [1, 2], "name": "one"}', encoding="utf-8")
    decl = {"asset_name": "level", "kind": "json", "inputs": ["level.json"]}
    write_asset(game / "assets", "level", decl)  # its input does not exist until gen_level runs

    first = run_doit(host)
    assert ok(first) == asset_tasks("game/", game) | {"gen_level", "game/pack", "ship"}
    assert first.executed[0] == "gen_level"
    assert first.executed[-1] == "ship"
    with PackReader(str(game / "build/game.pack")) as reader:
        assert reader.get_by_name("level") == b'{"name":"one","tiles":[1,2]}'
    assert (host / "dist/game.pack").read_bytes() == pack_bytes(game)[0]
    assert ok(run_doit(host)) == set()

    (host / "level.src").write_text('{"tiles": [3], "name": "two"}', encoding="utf-8")
    again = run_doit(host)
    assert ok(again) == asset_tasks("game/", game, "level") | {"gen_level", "game/pack", "ship"}
    with PackReader(str(game / "build/game.pack")) as reader:
        assert reader.get_by_name("level") == b'{"name":"two","tiles":[3]}'
    verify_pack(str(game / "build/game.pack"))

    listed = run_doit(host, "list")
    assert listed.code == 0, listed.err
    names = {line.split()[0] for line in listed.out.splitlines() if line.strip()}
    assert asset_tasks("game/", game) | {"game/pack", "gen_level", "ship"} <= names


def test_after_takes_one_task_name() -> None:
    # doit's delayed creation waits for one task; a second name would silently be dropped.
    with pytest.raises(ValueError, match="one task"):
        packer_tasks("game", prefix="game/", after=["gen_a", "gen_b"])


def _generated_level(host: Path, dodo: str) -> Path:
    """The host graph ``dodo`` whose gen_level writes game's level input from level.src, and
    the asset ``level`` (plus ``menu``, whose dep it is), before gen_level ever ran."""
    game = host / "game"
    (host / "dodo.py").write_text(dodo, encoding="utf-8")
    (host / "level.src").write_text('{"tiles": [1, 2], "name": "one"}', encoding="utf-8")
    write_asset(
        game / "assets", "level", {"asset_name": "level", "kind": "json", "inputs": ["level.json"]}
    )
    text_asset(game / "assets", "menu", "menu", "menu\n", deps=["level"])
    return game


def _level(game: Path) -> bytes:
    with PackReader(str(game / "build/game.pack")) as reader:
        return reader.get_by_name("level")


@pytest.mark.parametrize(
    "dodo",
    [GENERATED_BY_TARGET, GENERATED_BY_TARGET.replace(", generated=[LEVEL]", "")],
    ids=["declared", "missing"],
)
def test_a_fresh_checkout_lists_cleans_and_builds_a_generated_input_in_order(
    host: Path, dodo: str
) -> None:
    game = _generated_level(host, dodo)
    listed = run_doit(host, "list")
    assert listed.code == 0, listed.err
    names = {line.split()[0] for line in listed.out.splitlines() if line.strip()}
    level = asset_tasks("game/", game, "level").pop()
    assert names == asset_tasks("game/", game) | {"game/pack", "gen_level", "ship"}
    info = run_doit(host, "info", level)
    assert "game/assets/level/level.json" in info.out  # its file_dep: what links the generator
    assert "Traceback" not in info.err
    cleaned = run_doit(host, "clean")
    assert cleaned.code == 0, cleaned.err
    assert not (game / "assets/level/level.json").exists()

    first = run_doit(host)
    assert ok(first) == asset_tasks("game/", game) | {"gen_level", "game/pack", "ship"}
    order = first.executed
    menu = asset_tasks("game/", game, "menu").pop()
    assert order.index("gen_level") < order.index(level) < order.index(menu)
    assert order[-2:] == ("game/pack", "ship")
    assert _level(game) == b'{"name":"one","tiles":[1,2]}'
    verify_pack(str(game / "build/game.pack"))
    if "generated=" not in dodo:
        # The input now exists, so it is no longer a file_dep of the asset, and doit runs a
        # task whose file_dep list changed once more (a hit in the output cache).
        assert ok(run_doit(host)) == {level}
    assert ok(run_doit(host)) == set()


def test_a_change_of_the_generated_input_rebuilds_its_asset_and_the_pack(host: Path) -> None:
    game = _generated_level(host, GENERATED_BY_TARGET)
    ok(run_doit(host))
    first_pack = pack_bytes(game)
    (host / "level.src").write_text('{"tiles": [3], "name": "two"}', encoding="utf-8")
    again = run_doit(host, "-n", "2")
    assert ok(again) == asset_tasks("game/", game, "level", "menu") | {
        "gen_level",
        "game/pack",
        "ship",
    }
    assert _level(game) == b'{"name":"two","tiles":[3]}'
    assert (host / "dist/game.pack").read_bytes() == pack_bytes(game)[0]
    verify_pack(str(game / "build/game.pack"))
    assert ok(run_doit(host)) == set()
    # The generated input's content is all that counts: back to the first, the first pack.
    (host / "level.src").write_text('{"tiles": [1, 2], "name": "one"}', encoding="utf-8")
    ok(run_doit(host))
    assert pack_bytes(game) == first_pack
    # A graph where the input is an ordinary one finds the pack key the late pack saved:
    # the level asset runs only because its file_dep list changed.
    (host / "dodo.py").write_text(TWO_WORKSPACES, encoding="utf-8")
    plain = run_doit(host, "game/pack")
    assert ok(plain) == asset_tasks("game/", game, "level")
    assert "game/pack" in plain.up_to_date
    assert pack_bytes(game) == first_pack


def test_an_input_no_task_generates_fails_its_task_naming_it(host: Path) -> None:
    game = _generated_level(host, GENERATED_BY_TARGET.replace("LEVEL]", '"game/other.json"]'))
    failed = run_doit(host)
    assert failed.code != 0
    assert "assets/level/asset.json: inputs.0: input 'level.json' does not exist" in (
        failed.out + failed.err
    )
    assert "Traceback" not in failed.err
    assert not (game / "build/game.pack").exists()


def test_a_generated_input_outside_the_workspace_is_one_error(host: Path) -> None:
    (host / "dodo.py").write_text(
        GENERATED_BY_TARGET.replace("LEVEL]", '"elsewhere.json"]'), encoding="utf-8"
    )
    listed = run_doit(host, "list")
    assert listed.code == 3
    # Loading synced the registry first (one line per asset it registered), then stopped.
    said = [line for line in listed.err.splitlines() if not line.startswith("packer: registered")]
    assert said == [
        "ERROR: packer [game]: elsewhere.json: a generated input must be inside the workspace"
    ]
    assert "Traceback" not in listed.err
