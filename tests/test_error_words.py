"""Errors in the user's words (SPEC §3, §6, §8): each mistake a new user makes is one
`error: PATH[:LINE:COL]: message` line, exit 1, no traceback, naming what is wrong as the user
wrote it: an unknown key with a "did you mean", JSON's types, a trailing comma, an unresolved git
merge of registry.json, no workspace here, a missing input at its place in asset.json.

Through the CLI (``packer.cli.main`` in-process, or a real process) on real workspaces.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result, run_packer, text_asset, write_asset

Cli = Callable[..., Result]

ERROR_LINE = re.compile(r"^error: (?P<path>[^\s:]+)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<msg>.+)$")
TIMEOUT = 120


def _one_error(result: Result) -> re.Match[str]:
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    match = ERROR_LINE.match(lines[0])
    assert match, lines[0]
    return match


def _at(root: Path, match: re.Match[str]) -> str:
    """The text of the file the error names, from its line and column on."""
    assert match["line"] and match["col"], match[0]
    lines = (root / match["path"]).read_text(encoding="utf-8").splitlines()
    return lines[int(match["line"]) - 1][int(match["col"]) - 1 :]


def _asset_json(root: Path, text: str) -> None:
    write_asset(root, "assets/hero", text, {"hero.png": b"not really a png"})


# --- unknown keys: named, with a "did you mean" -------------------------------------------------


def test_a_mistyped_top_level_key_is_named_not_reported_as_the_missing_one(
    workspace: Path, cli: Cli
) -> None:
    _asset_json(
        workspace, '{\n  "asset_name": "hero",\n  "knd": "image",\n  "inputs": ["hero.png"]\n}\n'
    )
    match = _one_error(cli("-C", str(workspace), "status"))
    assert match["path"] == "assets/hero/asset.json"
    assert (match["line"], match["col"]) == ("3", "3")
    assert _at(workspace, match).startswith('"knd"')
    assert match["msg"] == (
        "knd: unknown key (did you mean 'kind'?); allowed: asset_name, kind, inputs, params, deps"
    )
    assert "required" not in match["msg"]


def test_an_unknown_key_like_no_known_one_lists_the_allowed_keys(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero", colour="red")
    match = _one_error(cli("-C", str(workspace), "status"))
    assert match["msg"] == "colour: unknown key; allowed: asset_name, kind, inputs, params, deps"
    assert _at(workspace, match).startswith('"colour"')


def test_a_mistyped_param_gets_a_did_you_mean_at_its_key(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero", params={"encodng": "latin-1"})
    match = _one_error(cli("-C", str(workspace), "status"))
    assert match["msg"] == (
        "params.encodng: unknown param for kind 'text' (did you mean 'encoding'?); "
        "allowed: trailing_newline, encoding"
    )
    assert _at(workspace, match).startswith('"encodng"')


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[workspace]\nnmae = "game"\n',
            "workspace.nmae: unknown key (did you mean 'name'?); allowed: name, assets, out",
        ),
        (
            '[workspce]\nname = "game"\n',
            "workspce: unknown table (did you mean 'workspace'?); allowed: workspace, pack, cache",
        ),
        (
            '[workspace]\nname = "game"\n[pack]\ncompresion = "zstd"\n',
            "pack.compresion: unknown key (did you mean 'compression'?); "
            "allowed: compression, level",
        ),
        ('name = "game"\n', "workspace: required table is missing"),
    ],
    ids=["key", "table", "pack-key", "no-table"],
)
def test_packer_toml_typos_are_named_with_a_did_you_mean(
    toml: str, message: str, workspace: Path, cli: Cli
) -> None:
    (workspace / "packer.toml").write_text(toml)
    match = _one_error(cli("-C", str(workspace), "status"))
    assert (match["path"], match["msg"]) == ("packer.toml", message)


# --- JSON's types in JSON's words ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message", "token"),
    [
        (
            '"inputs": "hero.png"',
            "inputs",
            "expected an array of strings, got a string",
            '"inputs"',
        ),
        ('"inputs": [7]', "inputs.0", "expected a string, got an integer", "7"),
        (
            '"inputs": ["hero.png"], "params": []',
            "params",
            "expected an object, got an array",
            '"params"',
        ),
        (
            '"inputs": ["hero.png"], "deps": {"a": 1}',
            "deps",
            "expected an array of strings, got an object",
            '"deps"',
        ),
        ('"inputs": []', "inputs", "must not be empty", '"inputs"'),
    ],
    ids=["string-for-array", "number-for-string", "array-for-object", "object-for-array", "empty"],
)
def test_json_types_are_named_in_json_words(
    fields: str, field: str, message: str, token: str, workspace: Path, cli: Cli
) -> None:
    _asset_json(workspace, '{"asset_name": "hero", "kind": "image",\n  ' + fields + "}\n")
    match = _one_error(cli("-C", str(workspace), "status"))
    assert match["msg"] == f"{field}: {message}"
    assert _at(workspace, match).startswith(token)
    assert not re.search(r"\b(tuple|dict|str|list|Input should)\b", match["msg"])


def test_packer_toml_types_are_named_in_toml_words(workspace: Path, cli: Cli) -> None:
    (workspace / "packer.toml").write_text('[workspace]\nname = "game"\nassets = "assets"\n')
    match = _one_error(cli("-C", str(workspace), "status"))
    assert match["msg"] == "workspace.assets: expected an array of strings, got a string"
    (workspace / "packer.toml").write_text('workspace = "game"\n')
    match = _one_error(cli("-C", str(workspace), "status"))
    assert match["msg"] == "workspace: expected a table, got a string"


# --- JSON syntax --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "closer"),
    [
        ('{\n  "asset_name": "hero",\n  "kind": "raw",\n  "inputs": ["hero.png"],\n}\n', "}"),
        ('{"asset_name": "hero", "kind": "raw",\n "inputs": ["hero.png", ]}\n', "]"),
    ],
    ids=["object", "array"],
)
def test_a_trailing_comma_is_called_one_at_its_place(
    text: str, closer: str, workspace: Path, cli: Cli
) -> None:
    _asset_json(workspace, text)
    match = _one_error(cli("-C", str(workspace), "status"))
    assert (
        match["msg"]
        == f"invalid JSON: trailing comma before {closer!r} (JSON allows none; remove it)"
    )
    assert _at(workspace, match).startswith(",")
    assert "property name" not in match["msg"]


# --- registry.json after a git merge without packer's driver ------------------------------------


def _git(root: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    subprocess.run(
        ["git", *args], cwd=root, env=env, check=False, capture_output=True, timeout=TIMEOUT
    )


def test_a_registry_with_conflict_markers_says_it_is_an_unresolved_merge_and_how_to_fix_it(
    workspace: Path,
) -> None:
    # Two branches each register an asset; git merges registry.json as text (no driver
    # installed in this clone) and leaves conflict markers in it.
    _git(workspace, "init", "-q", "-b", "main")
    _git(workspace, "add", "-A")
    _git(workspace, "commit", "-q", "-m", "init")
    for branch in ("left", "right"):
        _git(workspace, "checkout", "-q", "-b", branch, "main")
        text_asset(workspace, f"assets/{branch}", branch)
        assert run_packer("sync", cwd=workspace, timeout=TIMEOUT).code == 0
        _git(workspace, "add", "-A")
        _git(workspace, "commit", "-q", "-m", branch)
    _git(workspace, "merge", "-q", "--no-edit", "left")
    registry = (workspace / "registry.json").read_bytes()
    assert b"<<<<<<< HEAD" in registry, "git did not leave a conflict"

    for command in ("status", "sync", "build"):
        match = _one_error(run_packer(command, cwd=workspace, timeout=TIMEOUT))
        assert match["path"] == "registry.json"
        assert _at(workspace, match).startswith("<<<<<<<")
        message = match["msg"]
        assert message.startswith("unresolved git merge"), message
        assert "packer merge-registry --install" in message
        assert 'git config merge.packer-registry.driver "packer merge-registry %O %A %B"' in message
        assert "registry.json merge=packer-registry" in message
        assert "invalid JSON" not in message
    assert (workspace / "registry.json").read_bytes() == registry
    # The lines the message names are the ones `packer init` and `--install` write.
    assert "registry.json merge=packer-registry" in (workspace / ".gitattributes").read_text()


# --- where the workspace is ---------------------------------------------------------------------


def test_outside_a_workspace_the_error_says_how_to_make_or_name_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    match = _one_error(run_packer("status", cwd=empty, timeout=TIMEOUT))
    assert match["path"] == "."
    assert "not inside a packer workspace" in match["msg"]
    assert "`packer init`" in match["msg"] and "`-C DIR`" in match["msg"]


# --- inputs -------------------------------------------------------------------------------------


def test_a_missing_input_is_placed_at_its_string_in_asset_json(workspace: Path, cli: Cli) -> None:
    _asset_json(
        workspace,
        '{\n  "asset_name": "hero",\n  "kind": "raw",\n'
        '  "inputs": [\n    "hero.png",\n    "gone.png"\n  ]\n}\n',
    )
    for command in ("status", "sync"):
        match = _one_error(cli("-C", str(workspace), command))
        assert match["msg"] == "inputs.1: input 'gone.png' does not exist"
        assert (match["line"], match["col"]) == ("6", "5")
        assert _at(workspace, match).startswith('"gone.png"')


def test_a_missing_input_of_a_cached_declaration_is_placed_too(workspace: Path, cli: Cli) -> None:
    # The decl cache keeps no text: a declaration served from it still gets its position.
    _asset_json(workspace, '{"asset_name": "hero", "kind": "raw",\n "inputs": ["hero.png"]}\n')
    assert run_packer("build", cwd=workspace, timeout=TIMEOUT).code == 0
    (workspace / "assets/hero/hero.png").unlink()
    match = _one_error(run_packer("build", cwd=workspace, timeout=TIMEOUT))
    assert match["msg"] == "inputs.0: input 'hero.png' does not exist"
    assert _at(workspace, match).startswith('"hero.png"')


# --- where the build runs, and what it builds ---------------------------------------------------


def test_packer_build_finds_the_workspace_from_a_subfolder_and_doit_k_does_too(
    workspace: Path,
) -> None:
    text_asset(workspace, "assets/sprites/hero", "hero")
    inside = workspace / "assets/sprites"
    built = run_packer("build", cwd=inside, timeout=TIMEOUT)
    assert built.code == 0, built.out + built.err
    assert (workspace / "build/game.pack").is_file()
    assert not (inside / "build").exists() and not (inside / ".packer").exists()

    def doit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "doit", *args],
            cwd=inside,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    lost = doit()
    assert lost.returncode != 0 and "Could not find dodo file" in lost.stderr
    found = doit("-k")  # documented in docs/doit.md: doit's --seek-file
    assert found.returncode == 0, found.stdout + found.stderr
    assert found.stdout.splitlines()[-1] == "-- pack"  # packer build left nothing to do


def test_an_empty_workspace_builds_an_empty_pack_with_a_warning(workspace: Path) -> None:
    for build in (("packer", "build"), ("doit",)):
        result = subprocess.run(
            [sys.executable, "-m", *build],
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr == "warning: no assets under assets; the pack is empty\n", build
        assert (workspace / "build/game.pack").is_file()
        shutil.rmtree(workspace / "build")
