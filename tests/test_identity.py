"""Managed identity (SPEC §2 registry.json, §3 status/sync/ls/mv/schema).

asset_id is allocated by packer, kept across renames and moves, never reused, and written to
registry.json as canonical text. Tests run the CLI in-process on real workspaces in tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Result,
    ids_by_name,
    pack_bytes,
    registry_json,
    run_doit,
    run_packer,
    text_asset,
    write_asset,
)

from packer.registry import new_asset_id, parse, render

Cli = Callable[..., Result]

HEX16 = re.compile(r"^[0-9a-f]{16}$")
STATUS_KEYS = {
    "in_sync",
    "ok",
    "registered",
    "new",
    "missing",
    "moved",
    "renamed",
    "ambiguous",
    "invalid",
}


def canonical_registry(entries: Iterable[tuple[str, ...]], retired: Iterable[str] = ()) -> str:
    """SPEC §2's canonical text, restated: entries (asset_id, asset_name, path[, content])
    sorted by id, the content recorded when there is one."""
    data = {
        "format": 1,
        "assets": [
            dict(zip(("asset_id", "asset_name", "path", "content"), e, strict=False))
            for e in sorted(entries, key=lambda e: e[0].encode())
        ],
        "retired": sorted(retired, key=str.encode),
    }
    return json.dumps(data, indent=2) + "\n"


def write_registry(
    root: Path, entries: Iterable[tuple[str, str, str]], retired: Iterable[str] = ()
) -> bytes:
    text = canonical_registry(entries, retired).encode()
    (root / "registry.json").write_bytes(text)
    return text


def status_json(cli: Cli, root: Path) -> tuple[int, dict[str, Any]]:
    result = cli("-C", str(root), "status", "--json")
    assert "Traceback" not in result.err
    data: dict[str, Any] = json.loads(result.out)
    assert set(data) == STATUS_KEYS
    return result.code, data


def sync(cli: Cli, root: Path, *args: str) -> Result:
    result = cli("-C", str(root), "sync", *args)
    assert result.code == 0, result.err
    return result


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".packer" not in p.relative_to(root).parts
    }


# --- status -------------------------------------------------------------------------------------


def test_status_json_reports_every_category_in_its_documented_shape(
    workspace: Path, cli: Cli
) -> None:
    write_registry(
        workspace,
        [
            ("1000000000000001", "keep", "assets/keep"),
            ("2000000000000002", "old-name", "assets/rn"),
            ("3000000000000003", "mover", "assets/mover"),
            ("4000000000000004", "gone", "assets/gone"),
            ("5000000000000005", "twin", "assets/twin1"),
            ("6000000000000006", "twin", "assets/twin2"),
            ("7000000000000007", "bad", "assets/bad"),
        ],
    )
    text_asset(workspace, "assets/keep", "keep")
    text_asset(workspace, "assets/rn", "new-name")
    text_asset(workspace, "assets/moved/mover", "mover")
    text_asset(workspace, "assets/twin3", "twin")
    text_asset(workspace, "assets/fresh", "fresh")
    write_asset(workspace, "assets/bad", {"asset_name": "bad", "kind": "imgae", "inputs": ["x"]})
    (workspace / "assets/bad/x").write_bytes(b"x")
    before = (workspace / "registry.json").read_bytes()

    code, data = status_json(cli, workspace)
    assert code == 1
    assert data == {
        "in_sync": False,
        "ok": False,
        "registered": 7,
        "new": [{"path": "assets/fresh", "asset_name": "fresh"}],
        "missing": [{"asset_id": "4000000000000004", "asset_name": "gone", "path": "assets/gone"}],
        "moved": [
            {
                "asset_id": "3000000000000003",
                "asset_name": "mover",
                "from": "assets/mover",
                "to": "assets/moved/mover",
                "from_name": "mover",
            }
        ],
        "renamed": [
            {
                "asset_id": "2000000000000002",
                "path": "assets/rn",
                "from": "old-name",
                "to": "new-name",
            }
        ],
        "ambiguous": [
            {
                "asset_name": "twin",
                "missing": ["5000000000000005", "6000000000000006"],
                "new": ["assets/twin3"],
            }
        ],
        "invalid": [
            {
                "path": "assets/bad/asset.json",
                "line": 3,
                "col": 3,
                "field": "kind",
                "message": "unknown kind 'imgae' (did you mean 'image'?); "
                "known kinds: atlas, audio, image, json, raw, text",
            }
        ],
    }
    text = cli("-C", str(workspace), "status")
    assert text.code == 1
    assert text.out.splitlines() == [
        "new        assets/fresh  (fresh)",
        "missing    4000000000000004  assets/gone  (gone)",
        "moved      3000000000000003  assets/mover -> assets/moved/mover  (mover)",
        "renamed    2000000000000002  assets/rn  'old-name' -> 'new-name'",
        "ambiguous  'twin': missing 5000000000000005, 6000000000000006; new assets/twin3",
    ]
    assert (workspace / "registry.json").read_bytes() == before, "status never writes"


def test_status_in_sync_exits_0(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    assert cli("-C", str(workspace), "status").code == 1
    sync(cli, workspace)
    code, data = status_json(cli, workspace)
    assert (code, data["in_sync"], data["ok"], data["registered"]) == (0, True, True, 1)
    result = cli("-C", str(workspace), "status")
    assert (result.code, result.out, result.err) == (0, "in sync: 1 asset registered\n", "")


# --- sync ---------------------------------------------------------------------------------------


def test_sync_registers_new_assets_with_16_hex_ids(workspace: Path, cli: Cli) -> None:
    for name in ("hero", "villain", "intro"):
        text_asset(workspace, f"assets/{name}", name)
    result = sync(cli, workspace)
    ids = ids_by_name(workspace)
    assert result.out.splitlines() == [
        f"registered {ids['hero']}  assets/hero  (hero)",
        f"registered {ids['intro']}  assets/intro  (intro)",
        f"registered {ids['villain']}  assets/villain  (villain)",
    ]
    assert sorted(ids) == ["hero", "intro", "villain"]
    assert all(HEX16.match(i) for i in ids.values())
    assert len(set(ids.values())) == 3
    assert {e["path"] for e in registry_json(workspace)["assets"]} == {
        "assets/hero",
        "assets/intro",
        "assets/villain",
    }


def test_resync_is_a_noop_leaving_registry_byte_identical(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    text_asset(workspace, "assets/villain", "villain")
    sync(cli, workspace)
    path = workspace / "registry.json"
    before, st = path.read_bytes(), path.stat()
    result = sync(cli, workspace)
    assert result.out == "registry already in sync\n"
    after = path.stat()
    assert path.read_bytes() == before
    # Not even replaced by identical bytes: the file is the same inode, untouched.
    assert (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)


def test_sync_dry_run_says_what_it_would_do_and_writes_nothing(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    before = (workspace / "registry.json").read_bytes()
    result = sync(cli, workspace, "--dry-run")
    assert result.out == "would: registered (new id)  assets/hero  (hero)\n"
    assert (workspace / "registry.json").read_bytes() == before
    assert status_json(cli, workspace)[1]["new"] == [{"path": "assets/hero", "asset_name": "hero"}]


def test_rename_in_asset_json_keeps_the_id(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    sync(cli, workspace)
    hero_id = ids_by_name(workspace)["hero"]
    text_asset(workspace, "assets/hero", "sprites/hero")
    code, data = status_json(cli, workspace)
    assert code == 1
    assert data["renamed"] == [
        {"asset_id": hero_id, "path": "assets/hero", "from": "hero", "to": "sprites/hero"}
    ]
    assert data["new"] == data["missing"] == []
    sync(cli, workspace)
    assert ids_by_name(workspace) == {"sprites/hero": hero_id}
    assert registry_json(workspace)["retired"] == []


def test_folder_moved_outside_packer_keeps_the_id(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    text_asset(workspace, "assets/villain", "villain")
    sync(cli, workspace)
    ids = ids_by_name(workspace)
    (workspace / "assets/chars").mkdir()
    os.rename(workspace / "assets/hero", workspace / "assets/chars/hero")
    code, data = status_json(cli, workspace)
    assert code == 1
    assert data["moved"] == [
        {
            "asset_id": ids["hero"],
            "asset_name": "hero",
            "from": "assets/hero",
            "to": "assets/chars/hero",
            "from_name": "hero",
        }
    ]
    assert data["new"] == data["missing"] == []
    sync(cli, workspace)
    assert ids_by_name(workspace) == ids
    paths = {e["asset_name"]: e["path"] for e in registry_json(workspace)["assets"]}
    assert paths == {"hero": "assets/chars/hero", "villain": "assets/villain"}
    assert registry_json(workspace)["retired"] == []


def test_folder_moved_and_renamed_at_once_is_recognised_by_its_content(
    workspace: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/hero", "hero", "the hero's own lines\n")
    text_asset(workspace, "assets/villain", "villain", "the villain's lines\n")
    sync(cli, workspace)
    old_id = ids_by_name(workspace)["hero"]
    shutil.rmtree(workspace / "assets/hero")
    # Renamed input file too: only what the inputs hold identifies the asset.
    write_asset(
        workspace,
        "assets/chars/player",
        {"asset_name": "player", "kind": "text", "inputs": ["lines.txt"]},
        {"lines.txt": "the hero's own lines\n"},
    )
    code, data = status_json(cli, workspace)
    assert code == 1
    assert (data["missing"], data["new"]) == ([], [])
    move = {
        "asset_id": old_id,
        "asset_name": "player",
        "from": "assets/hero",
        "to": "assets/chars/player",
        "from_name": "hero",
    }
    assert data["moved"] == [move]
    human = cli("-C", str(workspace), "status")
    assert f"moved+renamed {old_id}  assets/hero -> assets/chars/player  'hero' -> 'player'" in (
        human.out.splitlines()
    )
    result = sync(cli, workspace)
    assert result.out.splitlines() == [
        f"moved+renamed {old_id}  assets/hero -> assets/chars/player  'hero' -> 'player'"
    ]
    assert ids_by_name(workspace)["player"] == old_id
    assert "hero" not in ids_by_name(workspace)


def test_a_move_and_rename_with_new_content_or_shared_content_is_not_guessed(
    workspace: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/hero", "hero", "hero v1\n")
    text_asset(workspace, "assets/copy1", "copy1", "placeholder\n")
    text_asset(workspace, "assets/copy2", "copy2", "placeholder\n")
    sync(cli, workspace)
    ids = ids_by_name(workspace)
    shutil.rmtree(workspace / "assets/hero")
    text_asset(workspace, "assets/chars/hero", "sprites/hero", "hero v2\n")
    # Two missing placeholders and one new folder holding the same bytes: no guess.
    shutil.rmtree(workspace / "assets/copy1")
    shutil.rmtree(workspace / "assets/copy2")
    text_asset(workspace, "assets/copy3", "copy3", "placeholder\n")
    code, data = status_json(cli, workspace)
    assert code == 1
    assert data["moved"] == []
    assert sorted(m["asset_id"] for m in data["missing"]) == sorted(
        [ids["hero"], ids["copy1"], ids["copy2"]]
    )
    assert sorted(n["path"] for n in data["new"]) == ["assets/chars/hero", "assets/copy3"]


def test_ambiguous_move_of_two_missing_entries_changes_nothing(workspace: Path, cli: Cli) -> None:
    before = write_registry(
        workspace,
        [
            ("aaaaaaaaaaaaaaaa", "twin", "assets/left/twin"),
            ("bbbbbbbbbbbbbbbb", "twin", "assets/right/twin"),
        ],
    )
    text_asset(workspace, "assets/twin", "twin")
    code, data = status_json(cli, workspace)
    assert code == 1
    assert data["ambiguous"] == [
        {
            "asset_name": "twin",
            "missing": ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"],
            "new": ["assets/twin"],
        }
    ]
    assert data["moved"] == data["missing"] == data["new"] == []
    result = cli("-C", str(workspace), "sync")
    assert result.code == 1
    assert result.err == (
        "error: assets/twin: ambiguous move of asset_name 'twin': missing ids "
        "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb; new folders assets/twin; "
        "use `packer mv` or make the names unique\n"
    )
    assert (workspace / "registry.json").read_bytes() == before


def test_two_new_folders_claiming_one_missing_name_change_nothing(
    workspace: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/hero", "hero")
    sync(cli, workspace)
    before = (workspace / "registry.json").read_bytes()
    shutil.copytree(workspace / "assets/hero", workspace / "assets/a/hero")
    (workspace / "assets/b").mkdir()
    shutil.move(workspace / "assets/hero", workspace / "assets/b/hero")
    code, data = status_json(cli, workspace)
    assert code == 1
    assert data["moved"] == []
    assert [a["new"] for a in data["ambiguous"]] == [["assets/a/hero", "assets/b/hero"]]
    result = cli("-C", str(workspace), "sync")
    assert result.code == 1
    assert result.err.startswith("error: assets/a/hero/asset.json:2:3: asset_name: ")
    assert (workspace / "registry.json").read_bytes() == before


def test_deleting_a_folder_retires_its_id(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    text_asset(workspace, "assets/villain", "villain")
    sync(cli, workspace)
    ids = ids_by_name(workspace)
    shutil.rmtree(workspace / "assets/villain")
    code, data = status_json(cli, workspace)
    assert code == 1
    assert data["missing"] == [
        {"asset_id": ids["villain"], "asset_name": "villain", "path": "assets/villain"}
    ]
    result = sync(cli, workspace)
    assert result.out == f"retired    {ids['villain']}  assets/villain  (villain)\n"
    assert registry_json(workspace)["retired"] == [ids["villain"]]
    assert ids_by_name(workspace) == {"hero": ids["hero"]}


def test_a_retired_id_is_never_reused(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero", content="same bytes\n")
    sync(cli, workspace)
    first = ids_by_name(workspace)["hero"]
    shutil.rmtree(workspace / "assets/hero")
    sync(cli, workspace)
    text_asset(workspace, "assets/hero", "hero", content="same bytes\n")
    sync(cli, workspace)
    second = ids_by_name(workspace)["hero"]
    assert second != first
    assert registry_json(workspace)["retired"] == [first]


def test_new_asset_id_draws_64_random_bits_and_redraws_on_collision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(50):
        assert HEX16.match(new_asset_id(set()))
    draws = iter(["00000000000000aa", "00000000000000bb", "00000000000000cc"])
    sizes: list[int | None] = []

    def fake_token_hex(nbytes: int | None = None) -> str:
        sizes.append(nbytes)
        return next(draws)

    monkeypatch.setattr(secrets, "token_hex", fake_token_hex)
    taken = {"00000000000000aa", "00000000000000bb"}  # one active, one retired: both taken
    assert new_asset_id(taken) == "00000000000000cc"
    assert sizes == [8, 8, 8]


def test_broken_asset_json_blocks_sync_entirely(workspace: Path, cli: Cli) -> None:
    # plan.sync_registry: any asset.json hiding its identity stops the whole sync.
    text_asset(workspace, "assets/fresh", "fresh")
    write_asset(workspace, "assets/broken", '{"asset_name": "broken",')
    before = (workspace / "registry.json").read_bytes()
    for args in ((), ("--dry-run",)):
        result = cli("-C", str(workspace), "sync", *args)
        assert result.code == 1
        assert result.err == (
            "error: assets/broken/asset.json:1:25: invalid JSON: "
            "Expecting property name enclosed in double quotes\n"
        )
    assert (workspace / "registry.json").read_bytes() == before
    code, data = status_json(cli, workspace)
    assert code == 1
    assert data["new"] == [{"path": "assets/fresh", "asset_name": "fresh"}]


def test_asset_moved_and_broken_at_once_keeps_its_id(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    sync(cli, workspace)
    hero_id = ids_by_name(workspace)["hero"]
    os.rename(workspace / "assets/hero", workspace / "assets/moved")
    decl = workspace / "assets/moved/asset.json"
    good = decl.read_text()
    decl.write_text(good.replace('"kind"', '"kind" "'))
    result = cli("-C", str(workspace), "sync")
    assert result.code == 1
    assert registry_json(workspace)["retired"] == [], "the id must not be retired"
    decl.write_text(good)
    assert sync(cli, workspace).out == (
        f"moved      {hero_id}  assets/hero -> assets/moved  (hero)\n"
    )
    assert ids_by_name(workspace) == {"hero": hero_id}


# --- mv -----------------------------------------------------------------------------------------


@pytest.fixture
def synced(workspace: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with assets hero and villain registered; the current folder is its root."""
    text_asset(workspace, "assets/hero", "hero")
    text_asset(workspace, "assets/villain", "villain")
    sync(cli, workspace)
    monkeypatch.chdir(workspace)
    return workspace


def test_mv_moves_the_folder_and_keeps_the_id_in_one_command(synced: Path, cli: Cli) -> None:
    ids = ids_by_name(synced)
    result = cli("mv", "assets/hero", "assets/chars/hero")
    assert (result.code, result.err) == (0, "")
    assert result.out == f"moved {ids['hero']} assets/hero -> assets/chars/hero\n"
    assert not (synced / "assets/hero").exists()
    assert (synced / "assets/chars/hero/data.txt").read_text() == "hello\n"
    assert ids_by_name(synced) == ids
    content = {e["asset_id"]: e["content"] for e in registry_json(synced)["assets"]}
    assert (synced / "registry.json").read_text() == canonical_registry(
        [
            (ids["hero"], "hero", "assets/chars/hero", content[ids["hero"]]),
            (ids["villain"], "villain", "assets/villain", content[ids["villain"]]),
        ]
    )
    # Folder and registry changed together: nothing is left for a sync to do.
    assert cli("status").code == 0
    assert [p.name for p in synced.iterdir() if ".tmp-" in p.name] == []


def test_mv_takes_paths_relative_to_the_current_folder(
    synced: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    hero_id = ids_by_name(synced)["hero"]
    monkeypatch.chdir(synced / "assets")
    assert cli("mv", "hero", "chars/hero").code == 0
    assert {e["asset_id"]: e["path"] for e in registry_json(synced)["assets"]}[hero_id] == (
        "assets/chars/hero"
    )


def test_mv_carries_nested_assets_along(synced: Path, cli: Cli) -> None:
    text_asset(synced, "assets/hero/portrait", "portrait")
    sync(cli, synced)
    ids = ids_by_name(synced)
    assert cli("mv", "assets/hero", "assets/chars/hero").code == 0
    paths = {e["asset_name"]: e["path"] for e in registry_json(synced)["assets"]}
    assert paths["portrait"] == "assets/chars/hero/portrait"
    assert ids_by_name(synced) == ids
    assert cli("status").code == 0


@pytest.mark.parametrize(
    ("src", "dst", "error"),
    [
        ("assets/hero", "assets/villain", "error: assets/villain: destination already exists"),
        (
            "assets/hero",
            "elsewhere/hero",
            "error: elsewhere/hero: destination is outside the asset folders (assets)",
        ),
        (
            "assets/hero",
            "../hero",
            "error: ../hero: destination must be inside the workspace, outside the source",
        ),
        (
            "assets/hero",
            "assets/hero/inner",
            "error: assets/hero/inner: "
            "destination must be inside the workspace, outside the source",
        ),
        ("assets", "assets2", "error: assets: not a registered asset folder (no asset.json)"),
        (
            "assets/nothing",
            "assets/x",
            "error: assets/nothing: not a registered asset folder (no asset.json)",
        ),
        (
            "assets/fresh",
            "assets/x",
            "error: assets/fresh: not a registered asset folder (run `packer sync` first)",
        ),
    ],
    ids=[
        "dst-exists",
        "dst-outside-roots",
        "dst-outside-workspace",
        "dst-inside-src",
        "src-not-asset",
        "src-absent",
        "src-unregistered",
    ],
)
def test_mv_refuses_and_changes_nothing(
    src: str, dst: str, error: str, synced: Path, cli: Cli
) -> None:
    text_asset(synced, "assets/fresh", "fresh")  # declared but not yet registered
    before = tree(synced)
    result = cli("mv", src, dst)
    assert (result.code, result.err) == (1, error + "\n")
    assert tree(synced) == before
    assert not (synced.parent / "hero").exists()


def test_mv_of_a_registered_asset_whose_folder_is_gone_says_so(synced: Path, cli: Cli) -> None:
    shutil.rmtree(synced / "assets/hero")
    before = (synced / "registry.json").read_bytes()
    result = cli("mv", "assets/hero", "assets/heroine")
    assert result.code == 1
    assert result.err.startswith("error: assets/hero: registered, but the folder is gone")
    assert "Traceback" not in result.err
    assert (synced / "registry.json").read_bytes() == before


# --- ls -----------------------------------------------------------------------------------------


def test_ls_lists_assets_sorted_by_asset_id(workspace: Path, cli: Cli) -> None:
    # Ids in the opposite order of paths and names, so only a sort by id gives this order.
    write_registry(
        workspace,
        [
            ("f00000000000000a", "a-first-name", "assets/a"),
            ("0b0000000000000b", "b-name", "assets/b"),
            ("50000000000000cc", "c-name", "assets/c"),
        ],
    )
    text_asset(workspace, "assets/a", "a-first-name")
    text_asset(workspace, "assets/b", "b-name")
    write_asset(workspace, "assets/c", {"asset_name": "c-name", "kind": "raw", "inputs": ["x"]})
    (workspace / "assets/c/x").write_bytes(b"")
    result = cli("-C", str(workspace), "ls")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines() == [
        "0b0000000000000b  b-name  assets/b  text",
        "50000000000000cc  c-name  assets/c  raw",
        "f00000000000000a  a-first-name  assets/a  text",
    ]
    as_json = cli("-C", str(workspace), "ls", "--json")
    assert as_json.code == 0
    assert json.loads(as_json.out) == {
        "ok": True,
        "assets": [
            {
                "asset_id": "0b0000000000000b",
                "asset_name": "b-name",
                "path": "assets/b",
                "kind": "text",
            },
            {
                "asset_id": "50000000000000cc",
                "asset_name": "c-name",
                "path": "assets/c",
                "kind": "raw",
            },
            {
                "asset_id": "f00000000000000a",
                "asset_name": "a-first-name",
                "path": "assets/a",
                "kind": "text",
            },
        ],
    }


def test_ls_of_an_empty_workspace_is_empty(workspace: Path, cli: Cli) -> None:
    assert cli("-C", str(workspace), "ls").out == ""
    assert json.loads(cli("-C", str(workspace), "ls", "--json").out) == {"ok": True, "assets": []}


# --- schema -------------------------------------------------------------------------------------


def test_schema_prints_the_json_schema_of_asset_json(cli: Cli, tmp_path: Path) -> None:
    result = cli("-C", str(tmp_path), "schema")  # needs no workspace
    assert (result.code, result.err) == (0, "")
    schema = json.loads(result.out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"asset_name", "kind", "inputs", "params", "deps"}
    assert "asset_id" not in schema["properties"]
    assert set(schema["required"]) == {"asset_name", "kind", "inputs"}
    inputs = schema["properties"]["inputs"]
    assert (inputs["type"], inputs["minItems"], inputs["items"]["type"]) == ("array", 1, "string")
    assert schema["properties"]["params"]["type"] == "object"
    assert schema["properties"]["deps"]["items"]["type"] == "string"


# --- registry text ------------------------------------------------------------------------------


def test_registry_text_is_canonical(workspace: Path, cli: Cli) -> None:
    for name in ("delta", "alpha", "charlie", "bravo"):
        text_asset(workspace, f"assets/{name}", name)
    sync(cli, workspace)
    shutil.rmtree(workspace / "assets/charlie")
    sync(cli, workspace)
    path = workspace / "registry.json"
    text = path.read_text(encoding="utf-8")
    data = registry_json(workspace)
    entries = [(e["asset_id"], e["asset_name"], e["path"], e["content"]) for e in data["assets"]]
    assert text == canonical_registry(entries, data["retired"])
    # Fixed key order, entries sorted by id, two-space indent, one trailing newline.
    pairs = json.loads(text, object_pairs_hook=lambda kv: [k for k, _ in kv])
    assert pairs[:] == ["format", "assets", "retired"]
    assert [e["asset_id"] for e in data["assets"]] == sorted(e["asset_id"] for e in data["assets"])
    assert text.splitlines()[1] == '  "format": 1,'
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert len(data["retired"]) == 1
    # Re-saving an unchanged registry gives identical bytes.
    raw = path.read_bytes()
    assert render(parse(raw)) == raw


def test_registry_holds_no_field_that_every_write_changes(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    sync(cli, workspace)
    first = (workspace / "registry.json").read_text()
    text_asset(workspace, "assets/villain", "villain")
    sync(cli, workspace)
    second = (workspace / "registry.json").read_text()
    hero_id = ids_by_name(workspace)["hero"]
    # Registering villain adds only villain's lines: hero's block and the header are untouched.
    removed = set(first.splitlines()) - set(second.splitlines())
    assert removed <= {"    }"}, removed
    assert f'      "asset_id": "{hero_id}",' in second.splitlines()
    assert set(registry_json(workspace)) == {"format", "assets", "retired"}


def test_builds_say_what_their_sync_registered_moved_and_retired(workspace: Path) -> None:
    text_asset(workspace, "assets/hero", "hero", "the hero\n")
    text_asset(workspace, "assets/villain", "villain", "the villain\n")
    first = run_packer("build", cwd=workspace)
    assert first.code == 0, first.err
    ids = ids_by_name(workspace)
    assert first.out.splitlines()[:2] == [
        f"registered {ids['hero']}  assets/hero  (hero)",
        f"registered {ids['villain']}  assets/villain  (villain)",
    ]
    shutil.rmtree(workspace / "assets/villain")
    shutil.move(workspace / "assets/hero", workspace / "assets/player")
    text_asset(workspace, "assets/player", "player", "the hero\n")
    second = run_packer("build", cwd=workspace)
    assert second.code == 0, second.err
    assert second.out.splitlines()[:2] == [
        f"moved+renamed {ids['hero']}  assets/hero -> assets/player  'hero' -> 'player'",
        f"retired    {ids['villain']}  assets/villain  (villain)",
    ]
    assert ids_by_name(workspace) == {"player": ids["hero"]}
    # Plain doit syncs while it loads the tasks: the same lines, on stderr beside doit's report.
    text_asset(workspace, "assets/intro", "intro", "the intro\n")
    third = run_doit(workspace)
    assert third.code == 0, third.err
    intro = ids_by_name(workspace)["intro"]
    assert f"packer: registered {intro}  assets/intro  (intro)" in third.err.splitlines()
    # An edit changes no identity: nothing to say, though the sync records the new content.
    recorded = {e["asset_id"]: e["content"] for e in registry_json(workspace)["assets"]}
    (workspace / "assets/intro/data.txt").write_text("the intro, longer\n")
    fourth = run_packer("build", cwd=workspace)
    assert fourth.code == 0, fourth.err
    said = [line for line in fourth.out.splitlines() if line.startswith(("registered", "moved"))]
    assert said == []
    now = {e["asset_id"]: e["content"] for e in registry_json(workspace)["assets"]}
    assert now[intro] != recorded[intro] and now[ids["hero"]] == recorded[ids["hero"]]


def test_recorded_content_is_no_build_input(workspace: Path, tmp_path: Path) -> None:
    # A clone whose registry.json recorded no content (or an old one) builds frozen to the
    # same pack and manifest bytes: content is advisory, never drift, never in the pack.
    text_asset(workspace, "assets/hero", "hero", "the hero\n")
    text_asset(workspace, "assets/villain", "villain", "the villain\n")
    assert run_packer("build", cwd=workspace).code == 0
    clone = tmp_path / "clone"
    shutil.copytree(workspace, clone, ignore=shutil.ignore_patterns(".packer", "build"))
    data = registry_json(clone)
    assert all("content" in e for e in data["assets"])
    for e in data["assets"]:
        del e["content"]
    (clone / "registry.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    before = (clone / "registry.json").read_bytes()
    frozen = run_packer("build", "--frozen", cwd=clone)
    assert frozen.code == 0, frozen.err
    assert (clone / "registry.json").read_bytes() == before
    assert pack_bytes(clone) == pack_bytes(workspace)
