"""`packer why ASSET` and `doit info`: every reason an asset's task is not up to date, in words."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result, ids_by_name, run_doit, text_asset, write_asset

Cli = Callable[..., Result]


@pytest.fixture
def built(workspace: Path) -> Path:
    """A built workspace: text asset `a` and raw asset `b` that depends on it."""
    text_asset(workspace, "assets/a", "a", "one\n")
    write_asset(
        workspace,
        "assets/b",
        {"asset_name": "b", "kind": "raw", "inputs": ["b.bin"], "deps": ["a"]},
        {"b.bin": b"\x00\x01"},
    )
    assert run_doit(workspace).code == 0
    return workspace


def why(cli: Cli, root: Path, asset: str) -> dict[str, object]:
    result = cli("-C", str(root), "why", asset, "--json")
    assert result.code == 0, result.err
    answer: dict[str, object] = json.loads(result.out)
    return answer


def test_up_to_date_after_a_build_by_name_id_and_path(cli: Cli, built: Path) -> None:
    ids = ids_by_name(built)
    for asset in ("a", ids["a"], str(built / "assets" / "a"), str(built / "assets/a/asset.json")):
        answer = why(cli, built, asset)
        assert answer["asset_id"] == ids["a"]
        assert answer["up_to_date"] is True
        assert answer["reasons"] == []
    text = cli("-C", str(built), "why", "b")
    assert text.code == 0
    assert text.out == f"b (asset:{ids['b']}, assets/b): up to date\n"


def test_never_built(cli: Cli, workspace: Path) -> None:
    text_asset(workspace, "assets/a", "a")
    answer = why(cli, workspace, "a")
    assert answer == {
        "ok": True,
        "asset_id": None,
        "asset_name": "a",
        "path": "assets/a",
        "up_to_date": False,
        "reasons": ["never built: not registered yet"],
    }
    assert cli("-C", str(workspace), "sync").code == 0
    assert why(cli, workspace, "a")["reasons"] == ["never built"]


def test_a_changed_input_is_named(cli: Cli, built: Path) -> None:
    write_asset(
        built,
        "assets/c",
        {"asset_name": "c", "kind": "raw", "inputs": ["one.bin", "two.bin"]},
        {"one.bin": b"1", "two.bin": b"2"},
    )
    assert run_doit(built).code == 0
    (built / "assets/c/two.bin").write_bytes(b"22")
    answer = why(cli, built, "c")
    assert answer["up_to_date"] is False
    assert answer["reasons"] == ["input 'two.bin' changed"]
    text = cli("-C", str(built), "why", "c")
    assert text.out.splitlines()[1:] == ["  input 'two.bin' changed"]


def test_params_kind_and_asset_json(cli: Cli, built: Path) -> None:
    decl = {"asset_name": "a", "kind": "text", "inputs": ["data.txt"]}
    (built / "assets/a/asset.json").write_text(json.dumps(decl))  # same content, other bytes
    assert why(cli, built, "a")["reasons"] == ["asset.json changed"]
    decl["params"] = {"encoding": "latin-1"}
    (built / "assets/a/asset.json").write_text(json.dumps(decl))
    assert why(cli, built, "a")["reasons"] == ["params changed: encoding", "asset.json changed"]
    decl = {"asset_name": "a", "kind": "raw", "inputs": ["data.txt"]}
    (built / "assets/a/asset.json").write_text(json.dumps(decl))
    reasons = why(cli, built, "a")["reasons"]
    assert isinstance(reasons, list)
    assert reasons[0] == "kind changed: text -> raw"


def test_a_deps_output(cli: Cli, built: Path) -> None:
    ids = ids_by_name(built)
    (built / "assets/a/data.txt").write_text("two\n")
    answer = why(cli, built, "b")
    assert answer["reasons"] == [
        "dep 'a' is not up to date: it builds first, and this asset rebuilds if its output changes"
    ]
    assert run_doit(built, f"asset:{ids['a']}").executed == (f"asset:{ids['a']}",)
    assert why(cli, built, "b")["reasons"] == ["the output of dep 'a' changed"]
    info = run_doit(built, "info", f"asset:{ids['b']}")
    assert "packer: the output of dep 'a' changed" in info.out
    assert "KeyUnchanged object" not in info.out


def test_doit_info_says_why_in_words(built: Path) -> None:
    ids = ids_by_name(built)
    (built / "assets/a/data.txt").write_text("changed\n")
    info = run_doit(built, "info", f"asset:{ids['a']}")
    assert info.code == 1  # doit info's own code for a task that is not up to date
    assert "- packer: input 'data.txt' changed (args=[], kwargs={})" in info.out
    assert "object at 0x" not in info.out
    run_doit(built, "forget", f"asset:{ids['a']}")
    assert "- packer: never built" in run_doit(built, "info", f"asset:{ids['a']}").out


def test_a_missing_output(cli: Cli, built: Path) -> None:
    ids = ids_by_name(built)
    (built / "build" / "assets" / f"{ids['a']}.bin").unlink()
    assert why(cli, built, "a")["reasons"] == [f"its output build/assets/{ids['a']}.bin is missing"]


def test_an_unknown_asset_exits_1(cli: Cli, built: Path) -> None:
    result = cli("-C", str(built), "why", "nosuch")
    assert result.code == 1
    assert result.err == (
        "error: .: unknown asset 'nosuch': not an asset_name, asset_id or asset folder here\n"
    )
