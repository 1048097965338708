"""``--json`` on every command (SPEC §3, §8; docs/cli.md "Stable JSON"): one JSON object on
stdout, ``"ok"`` in each, and ``{"ok": false, "errors": [...]}`` when a command cannot do its
work, with the exit codes unchanged. Each output is parsed and its fields checked."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Result, ids_by_name, run_doit, run_packer, text_asset

Cli = Callable[..., Result]

PROBLEM_KEYS = {"path", "line", "col", "field", "message"}


def as_json(result: Result) -> dict[str, Any]:
    """The one JSON object a ``--json`` command printed (nothing else on stdout)."""
    data: dict[str, Any] = json.loads(result.out)
    assert isinstance(data, dict)
    assert isinstance(data["ok"], bool)
    assert data["ok"] is (result.code == 0)
    return data


def failure(result: Result, code: int = 1) -> dict[str, Any]:
    """The failure object: exactly ``ok`` and ``errors``, each error the parts of one line."""
    assert result.code == code, result.err
    data = as_json(result)
    assert set(data) == {"ok", "errors"}
    assert data["errors"], "a failure names at least one error"
    for error in data["errors"]:
        assert set(error) == PROBLEM_KEYS
        assert error["message"] in result.err
    assert result.err.count("error: ") == len(data["errors"])
    return data


def test_init_json(tmp_path: Path, cli: Cli) -> None:
    root = tmp_path / "made"
    data = as_json(cli("init", str(root), "--name", "demo", "--json"))
    assert data == {"ok": True, "name": "demo", "root": str(root)}
    assert (root / "packer.toml").is_file()
    again = failure(cli("init", str(root), "--json"))
    assert again["errors"] == [
        {
            "path": "packer.toml",
            "line": None,
            "col": None,
            "field": None,
            "message": "already a packer workspace",
        }
    ]


def test_sync_json_names_what_it_registered_moved_renamed_and_retired(
    workspace: Path, cli: Cli
) -> None:
    for name in ("hero", "villain", "intro"):
        text_asset(workspace, f"assets/{name}", name)
    dry = as_json(cli("-C", str(workspace), "sync", "--dry-run", "--json"))
    assert (dry["dry_run"], dry["written"]) == (True, False)
    assert dry["registered"] == [
        {"asset_id": None, "asset_name": n, "path": f"assets/{n}"}
        for n in ("hero", "intro", "villain")
    ]
    first = as_json(cli("-C", str(workspace), "sync", "--json"))
    ids = ids_by_name(workspace)
    assert first == {
        "ok": True,
        "dry_run": False,
        "written": True,
        "registered": [
            {"asset_id": ids[n], "asset_name": n, "path": f"assets/{n}"}
            for n in ("hero", "intro", "villain")
        ],
        "moved": [],
        "renamed": [],
        "retired": [],
        "invalid": [],
    }
    shutil.move(workspace / "assets/hero", workspace / "assets/chars/hero")
    text_asset(workspace, "assets/intro", "title")
    shutil.rmtree(workspace / "assets/villain")
    second = as_json(cli("-C", str(workspace), "sync", "--json"))
    assert second["registered"] == []
    assert second["moved"] == [
        {
            "asset_id": ids["hero"],
            "asset_name": "hero",
            "from": "assets/hero",
            "to": "assets/chars/hero",
            "from_name": "hero",
        }
    ]
    assert second["renamed"] == [
        {"asset_id": ids["intro"], "path": "assets/intro", "from": "intro", "to": "title"}
    ]
    assert second["retired"] == [
        {"asset_id": ids["villain"], "asset_name": "villain", "path": "assets/villain"}
    ]
    noop = as_json(cli("-C", str(workspace), "sync", "--json"))
    assert (noop["written"], noop["registered"], noop["retired"]) == (False, [], [])


def test_sync_json_lists_build_problems_and_exits_1(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero", params={"colour": 1})
    result = cli("-C", str(workspace), "sync", "--json")
    assert result.code == 1
    data = as_json(result)
    assert [e["asset_name"] for e in data["registered"]] == ["hero"]
    [problem] = data["invalid"]
    assert (problem["path"], problem["field"]) == ("assets/hero/asset.json", "params.colour")


def test_sync_refusal_is_the_failure_object(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/fresh", "fresh")
    (workspace / "assets/broken").mkdir()
    (workspace / "assets/broken/asset.json").write_text('{"asset_name": "broken",')
    data = failure(cli("-C", str(workspace), "sync", "--json"))
    [error] = data["errors"]
    assert (error["path"], error["line"], error["col"]) == ("assets/broken/asset.json", 1, 25)
    assert error["message"].startswith("invalid JSON: ")


def test_status_and_ls_json_say_ok(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    status = cli("-C", str(workspace), "status", "--json")
    assert status.code == 1
    assert as_json(status)["new"] == [{"path": "assets/hero", "asset_name": "hero"}]
    assert cli("-C", str(workspace), "sync").code == 0
    assert as_json(cli("-C", str(workspace), "status", "--json"))["in_sync"] is True
    listed = as_json(cli("-C", str(workspace), "ls", "--json"))
    assert [(a["asset_name"], a["kind"]) for a in listed["assets"]] == [("hero", "text")]


def test_outside_a_workspace_every_workspace_command_answers_the_failure_object(
    tmp_path: Path, cli: Cli
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    if any((parent / "packer.toml").exists() for parent in empty.parents):
        pytest.skip("a packer.toml above tmp_path makes every folder part of a workspace")
    for command in (["status"], ["sync"], ["ls"], ["mv", "a", "b"], ["verify"], ["why", "x"]):
        data = failure(cli("-C", str(empty), *command, "--json"))
        [error] = data["errors"]
        assert error["path"] == "."
        assert "not inside a packer workspace" in error["message"]


def test_mv_json(workspace: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    text_asset(workspace, "assets/hero", "hero")
    assert cli("-C", str(workspace), "sync").code == 0
    monkeypatch.chdir(workspace)
    data = as_json(cli("mv", "assets/hero", "assets/chars/hero", "--json"))
    assert data == {
        "ok": True,
        "asset_id": ids_by_name(workspace)["hero"],
        "asset_name": "hero",
        "from": "assets/hero",
        "to": "assets/chars/hero",
        "from_name": "hero",
    }
    refused = failure(cli("mv", "assets/nothing", "assets/x", "--json"))
    assert refused["errors"][0]["path"] == "assets/nothing"


def test_schema_json_wraps_the_schema_and_plain_schema_stays_bare(tmp_path: Path, cli: Cli) -> None:
    plain = json.loads(cli("-C", str(tmp_path), "schema").out)
    data = as_json(cli("-C", str(tmp_path), "schema", "--json"))
    assert set(data) == {"ok", "schema"}
    assert data["schema"] == plain
    assert "ok" not in plain and plain["type"] == "object"


def test_verify_json_on_a_whole_and_a_damaged_pack(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    assert run_doit(workspace).code == 0
    pack = workspace / "build" / "game.pack"
    data = as_json(cli("verify", str(pack), "--json"))
    assert data == {"ok": True, "pack": str(pack), "entries": 1}
    raw = bytearray(pack.read_bytes())
    raw[-1] ^= 0xFF
    pack.write_bytes(bytes(raw))
    damaged = failure(cli("verify", str(pack), "--json"))
    assert damaged["errors"][0]["path"] == str(pack)


def test_merge_registry_json(tmp_path: Path, cli: Cli) -> None:
    def side(name: str, entries: list[tuple[str, str, str]]) -> str:
        path = tmp_path / name
        assets = [{"asset_id": i, "asset_name": n, "path": p} for i, n, p in entries]
        path.write_text(json.dumps({"format": 1, "assets": assets, "retired": []}))
        return str(path)

    base = side("base", [])
    ours = side("ours", [("1000000000000001", "a", "assets/a")])
    theirs = side("theirs", [("2000000000000002", "b", "assets/b")])
    data = as_json(cli("merge-registry", base, ours, theirs, "--json"))
    assert data == {"ok": True, "merged": ours, "assets": 2, "retired": 0}
    clash = side("clash", [("1000000000000001", "a", "assets/elsewhere")])
    conflict = failure(cli("merge-registry", base, ours, clash, "--json"))
    [error] = conflict["errors"]
    assert error["path"] == "registry.json"
    assert error["message"].startswith("asset_id 1000000000000001: ")


def test_usage_errors_with_json_exit_2_with_the_failure_object(cli: Cli) -> None:
    unknown = failure(cli("ls", "--json", "--bogus"), code=2)
    assert unknown["errors"][0]["message"] == "unrecognized arguments: --bogus"
    assert "usage: packer" in cli("ls", "--json", "--bogus").err
    files = failure(cli("merge-registry", "only-one", "--json"), code=2)
    assert files["errors"][0]["message"].startswith("merge-registry takes BASE OURS THEIRS")


def test_json_as_a_real_process(workspace: Path) -> None:
    text_asset(workspace, "assets/hero", "hero")
    synced = run_packer("sync", "--json", cwd=workspace)
    assert synced.code == 0, synced.err
    assert [e["path"] for e in as_json(synced)["registered"]] == ["assets/hero"]
    missing = run_packer("why", "nosuch", "--json", cwd=workspace)
    assert failure(missing)["errors"][0]["message"].startswith("unknown asset 'nosuch'")
