"""Bad input on the identity half (SPEC §3 exit codes and error lines, §6 bad input).

Each case under tests/workspaces/<case>/ is a complete workspace with one fault, its registry as
`packer sync` wrote it before the fault was made. Tests copy a case into tmp_path and drive
`packer status`, `packer sync` and `packer ls` on it: every fault is an
`error: PATH[:LINE:COL]: message` line naming the workspace-relative file, exit code 1, no
traceback, and nothing in the workspace (registry.json above all) is rewritten.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Result, registry_json, run_packer, text_asset, write_asset

from packer import CycleError, api
from packer.plan import plan_build
from packer.registry import parse, render
from packer.workspace import open_workspace

Cli = Callable[..., Result]

WORKSPACES = Path(__file__).parent / "workspaces"
ERROR_LINE = re.compile(
    r"^error: (?P<path>[^\s:]+)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<message>\S.*)$"
)
KNOWN_KINDS = "atlas, audio, image, json, raw, text"
UNKNOWN_KEY = "unknown key; allowed: asset_name, kind, inputs, params, deps"
UNRESOLVED_MERGE = (
    "error: registry.json:4:1: unresolved git merge (conflict markers <<<<<<< ======= >>>>>>>); "
    "registry.json is merged by packer's merge driver: undo the merge (git merge --abort), "
    "install the driver with `packer merge-registry --install` (that is, `git config "
    'merge.packer-registry.driver "packer merge-registry %O %A %B"`), check that '
    ".gitattributes holds `registry.json merge=packer-registry`, and merge again"
)
OWNED_ID = (
    "asset_id: asset_id is owned by registry.json and must not appear in asset.json "
    "(packer allocates ids; remove the field)"
)


@dataclass(frozen=True)
class Case:
    status: tuple[str, ...]
    """The exact stderr lines of `packer status` (every problem, sorted by path)."""
    sync: tuple[str, ...]
    """The exact stderr lines of `packer sync`."""
    ls_fails: bool
    """Whether `packer ls` fails too (registry or config faults) or still lists the registry."""


def _same(*lines: str, ls_fails: bool = False) -> Case:
    return Case(lines, lines, ls_fails)


CASES: dict[str, Case] = {
    "bad-json": _same("error: assets/hero/asset.json:3:11: invalid JSON: Expecting value"),
    "schema-violation": Case(
        (
            "error: assets/empty-inputs/asset.json:4:3: inputs: must not be empty",
            "error: assets/wrong-type/asset.json:4:3: inputs: "
            "expected an array of strings, got a string",
        ),
        # A sync refuses on the first declaration that hides an identity.
        ("error: assets/empty-inputs/asset.json:4:3: inputs: must not be empty",),
        ls_fails=False,
    ),
    "unknown-field": _same(f"error: assets/hero/asset.json:5:3: colour: {UNKNOWN_KEY}"),
    "id-in-asset-json": _same(f"error: assets/hero/asset.json:2:3: {OWNED_ID}"),
    "unknown-kind": _same(
        "error: assets/hero/asset.json:3:3: kind: unknown kind 'imgae' (did you mean 'image'?); "
        f"known kinds: {KNOWN_KINDS}"
    ),
    "unknown-param": _same(
        "error: assets/hero/asset.json:5:40: params.colour: "
        "unknown param for kind 'text'; allowed: trailing_newline, encoding"
    ),
    "dup-name": Case(
        (
            "error: assets/hero-copy/asset.json:2:3: asset_name: "
            "asset_name 'hero' is also declared in assets/hero/asset.json",
            "error: assets/hero/asset.json:2:3: asset_name: "
            "asset_name 'hero' is also declared in assets/hero-copy/asset.json",
        ),
        (
            "error: assets/hero-copy/asset.json:2:3: asset_name: "
            "asset_name 'hero' is also declared in assets/hero/asset.json",
        ),
        ls_fails=False,
    ),
    "missing-input": _same(
        "error: assets/hero/asset.json:4:26: inputs.1: input 'gone.txt' does not exist"
    ),
    "escaping-input": _same(
        "error: assets/hero/asset.json:4:26: inputs.1: input '../../../x' escapes the workspace"
    ),
    "cycle": _same("error: assets/a/asset.json:5:3: deps: dependency cycle: a -> b -> a"),
    "corrupt-registry": _same(UNRESOLVED_MERGE, ls_fails=True),
    "hand-broken-registry": _same(
        "error: registry.json: assets: an asset_id is listed twice", ls_fails=True
    ),
    "bad-config": _same(
        "error: packer.toml: workspace.colour: unknown key; allowed: name, assets, out",
        ls_fails=True,
    ),
}


def _copy(case: str, tmp_path: Path) -> Path:
    root = tmp_path / case
    shutil.copytree(WORKSPACES / case, root)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of a workspace but packer's disposable state, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".packer" not in p.relative_to(root).parts
    }


def _error_lines(result: Result, root: Path) -> tuple[str, ...]:
    assert "Traceback" not in result.err
    assert str(root) not in result.err, "error paths must be workspace-relative"
    lines = tuple(result.err.splitlines())
    for line in lines:
        assert ERROR_LINE.match(line), f"not an `error: PATH[:LINE:COL]: message` line: {line!r}"
    return lines


def test_every_case_is_a_complete_workspace_named_after_itself() -> None:
    assert sorted(p.name for p in WORKSPACES.iterdir()) == sorted(CASES)
    for case in CASES:
        root = WORKSPACES / case
        assert (root / "packer.toml").read_text().startswith(f'[workspace]\nname = "{case}"\n')
        assert (root / "registry.json").is_file()
        assert (root / "assets").is_dir()
        assert not (root / ".packer").exists(), "tests must run on copies of the cases"


@pytest.mark.parametrize("case", sorted(CASES))
def test_status_reports_each_fault_as_an_error_line_and_exits_1(
    case: str, tmp_path: Path, cli: Cli
) -> None:
    root = _copy(case, tmp_path)
    before = _tree(root)
    result = cli("-C", str(root), "status")
    assert result.code == 1
    assert _error_lines(result, root) == CASES[case].status
    assert _tree(root) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_sync_exits_1_and_never_rewrites_registry(case: str, tmp_path: Path, cli: Cli) -> None:
    root = _copy(case, tmp_path)
    before = _tree(root)
    result = cli("-C", str(root), "sync")
    assert result.code == 1
    assert _error_lines(result, root) == CASES[case].sync
    assert (root / "registry.json").read_bytes() == before["registry.json"]
    assert _tree(root) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_ls_fails_on_registry_or_config_faults_and_otherwise_lists_the_registry(
    case: str, tmp_path: Path, cli: Cli
) -> None:
    root = _copy(case, tmp_path)
    before = _tree(root)
    result = cli("-C", str(root), "ls", "--json")
    lines = _error_lines(result, root)
    if CASES[case].ls_fails:
        assert result.code == 1
        assert lines == CASES[case].status
        # --json answers a command that could not run with the failure object, the same error.
        failure = json.loads(result.out)
        assert set(failure) == {"ok", "errors"} and failure["ok"] is False
        [error] = failure["errors"]
        at = "" if error["line"] is None else f":{error['line']}:{error['col']}"
        where = error["path"] + at
        field = "" if error["field"] is None else f"{error['field']}: "
        assert result.err == f"error: {where}: {field}{error['message']}\n"
    else:
        # A faulty declaration hides no registered identity: ls still lists every entry.
        assert result.code == 0
        assert lines == ()
        listed = [(a["asset_id"], a["path"]) for a in _ls_json(result)]
        assert listed == [(e["asset_id"], e["path"]) for e in registry_json(root)["assets"]]
    assert _tree(root) == before


def _ls_json(result: Result) -> list[dict[str, str]]:
    assets: list[dict[str, str]] = json.loads(result.out)["assets"]
    return assets


@pytest.mark.parametrize(
    ("case", "file", "token"),
    [
        ("bad-json", "assets/hero/asset.json", "'text'"),
        ("schema-violation", "assets/empty-inputs/asset.json", '"inputs": []'),
        ("unknown-field", "assets/hero/asset.json", '"colour"'),
        ("id-in-asset-json", "assets/hero/asset.json", '"asset_id"'),
        ("missing-input", "assets/hero/asset.json", '"gone.txt"'),
        ("unknown-param", "assets/hero/asset.json", '"colour"'),
        ("corrupt-registry", "registry.json", "<<<<<<< HEAD"),
    ],
)
def test_line_and_column_point_at_the_offending_text(
    case: str, file: str, token: str, tmp_path: Path, cli: Cli
) -> None:
    root = _copy(case, tmp_path)
    first = cli("-C", str(root), "status").err.splitlines()[0]
    match = ERROR_LINE.match(first)
    assert match and match["path"] == file and match["line"] and match["col"]
    text = (root / file).read_text().splitlines()
    assert text[int(match["line"]) - 1][int(match["col"]) - 1 :].startswith(token)


def test_broken_asset_keeps_its_registered_identity_visible(tmp_path: Path, cli: Cli) -> None:
    root = _copy("bad-json", tmp_path)
    result = cli("-C", str(root), "ls")
    assert result.out.splitlines() == [
        "1a2b3c4d5e6f7081  ok  assets/ok  text",
        "9f8e7d6c5b4a3921  hero  assets/hero  -",
    ]
    # Fixing the file brings the asset back with the same id: it was never retired.
    (root / "assets/hero/asset.json").write_text(
        '{"asset_name": "hero", "kind": "text", "inputs": ["data.txt"]}'
    )
    assert cli("-C", str(root), "sync").code == 0
    assert cli("-C", str(root), "status").code == 0
    assert registry_json(root)["retired"] == []
    assert [e["asset_id"] for e in registry_json(root)["assets"]] == [
        "1a2b3c4d5e6f7081",
        "9f8e7d6c5b4a3921",
    ]


def test_status_json_lists_every_problem_with_path_line_col_field(tmp_path: Path, cli: Cli) -> None:
    root = _copy("schema-violation", tmp_path)
    result = cli("-C", str(root), "status", "--json")
    assert result.code == 1
    invalid = json.loads(result.out)["invalid"]
    assert invalid == [
        {
            "path": "assets/empty-inputs/asset.json",
            "line": 4,
            "col": 3,
            "field": "inputs",
            "message": "must not be empty",
        },
        {
            "path": "assets/wrong-type/asset.json",
            "line": 4,
            "col": 3,
            "field": "inputs",
            "message": "expected an array of strings, got a string",
        },
    ]


def test_cycle_is_a_cycle_error_naming_it_when_planning_a_build(tmp_path: Path) -> None:
    root = _copy("cycle", tmp_path)
    before = _tree(root)
    snap = api.snapshot(open_workspace(str(root)), frozen=True)
    with pytest.raises(CycleError) as caught:
        plan_build(snap)
    assert caught.value.cycle == ("a", "b", "a")
    assert str(caught.value) == "assets/a/asset.json:5:3: deps: dependency cycle: a -> b -> a"
    assert _tree(root) == before


def test_cycle_does_not_stop_registering_other_assets(tmp_path: Path, cli: Cli) -> None:
    root = _copy("cycle", tmp_path)
    text_asset(root, "assets/new", "new")
    result = cli("-C", str(root), "sync")
    # Registering is safe (no identity is hidden); the cycle is still reported.
    assert result.code == 1
    assert "new" in {e["asset_name"] for e in registry_json(root)["assets"]}
    assert _error_lines(result, root) == CASES["cycle"].status


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["/etc/hostname"], "input '/etc/hostname' escapes the workspace"),
        (["..\\..\\x"], "input '..\\\\..\\\\x' escapes the workspace"),
        (["../../../x"], "input '../../../x' escapes the workspace"),
        (["sub/../../../../x"], "input 'sub/../../../../x' escapes the workspace"),
    ],
    ids=["absolute", "backslashes", "dotdot", "dotdot-after-sub"],
)
def test_input_escaping_the_workspace_is_refused(
    inputs: list[str], message: str, workspace: Path, cli: Cli
) -> None:
    write_asset(workspace, "assets/hero", {"asset_name": "hero", "kind": "raw", "inputs": inputs})
    result = cli("-C", str(workspace), "status")
    assert result.code == 1
    assert _error_lines(result, workspace) == (
        f"error: assets/hero/asset.json:5:5: inputs.0: {message}",
    )


def test_input_that_links_outside_the_workspace_is_refused(
    workspace: Path, tmp_path: Path, cli: Cli
) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours\n")
    folder = write_asset(
        workspace, "assets/hero", {"asset_name": "hero", "kind": "text", "inputs": ["x.txt"]}
    )
    (folder / "x.txt").symlink_to(secret)
    result = cli("-C", str(workspace), "status")
    assert result.code == 1
    assert _error_lines(result, workspace) == (
        "error: assets/hero/asset.json:5:5: inputs.0: input 'x.txt' links outside the workspace",
    )


def test_input_that_links_inside_the_workspace_is_allowed(workspace: Path, cli: Cli) -> None:
    (workspace / "shared").mkdir()
    (workspace / "shared" / "palette.txt").write_text("p\n")
    folder = write_asset(
        workspace, "assets/hero", {"asset_name": "hero", "kind": "text", "inputs": ["p.txt"]}
    )
    (folder / "p.txt").symlink_to(workspace / "shared" / "palette.txt")
    assert cli("-C", str(workspace), "sync").code == 0
    assert cli("-C", str(workspace), "status").code == 0


def test_input_outside_the_asset_folder_but_inside_the_workspace_is_allowed(
    workspace: Path, cli: Cli
) -> None:
    (workspace / "shared").mkdir()
    (workspace / "shared" / "palette.txt").write_text("p\n")
    write_asset(
        workspace,
        "assets/hero",
        {"asset_name": "hero", "kind": "text", "inputs": ["../../shared/palette.txt"]},
    )
    assert cli("-C", str(workspace), "sync").code == 0
    assert cli("-C", str(workspace), "status").code == 0


REGISTRY_ENTRY = '{"asset_id": "%s", "asset_name": "%s", "path": "%s"}'


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            '{"format": 1, "assets": [' + REGISTRY_ENTRY % ("HERO", "ok", "assets/ok") + "], "
            '"retired": []}',
            "error: registry.json: assets.0.asset_id: "
            "'HERO' does not match the pattern '^[0-9a-f]{16}$'",
        ),
        (
            '{"format": 1, "assets": ['
            + REGISTRY_ENTRY % ("1a2b3c4d5e6f7081", "ok", "assets/ok")
            + ", "
            + REGISTRY_ENTRY % ("2a2b3c4d5e6f7081", "hero", "assets/ok")
            + '], "retired": []}',
            "error: registry.json: assets: path 'assets/ok' is claimed by 1a2b3c4d5e6f7081 "
            "and 2a2b3c4d5e6f7081",
        ),
        (
            '{"format": 1, "assets": ['
            + REGISTRY_ENTRY % ("1a2b3c4d5e6f7081", "ok", "assets/ok")
            + '], "retired": ["1a2b3c4d5e6f7081"]}',
            "error: registry.json: retired: id 1a2b3c4d5e6f7081 is both active and retired",
        ),
        (
            '{"format": 1, "assets": [], "retired": ["1a2b3c4d5e6f7081", "1a2b3c4d5e6f7081"]}',
            "error: registry.json: retired: a retired id is listed twice",
        ),
        (
            '{"format": 2, "assets": [], "retired": []}',
            "error: registry.json: format: must be 1, not 2",
        ),
        (
            '{"format": 1, "assets": [], "retired": [], "generation": 7}',
            "error: registry.json: generation: unknown key; allowed: format, assets, retired",
        ),
        ('{"format": 1, "assets": []}', "error: registry.json: retired: required key is missing"),
        ("", "error: registry.json:1:1: invalid JSON: Expecting value"),
    ],
    ids=[
        "bad-id",
        "path-twice",
        "active-and-retired",
        "retired-twice",
        "format-2",
        "changing-field",
        "no-retired",
        "empty-file",
    ],
)
def test_hand_broken_registry_is_refused_and_kept_byte_for_byte(
    text: str, line: str, tmp_path: Path, cli: Cli
) -> None:
    root = _copy("hand-broken-registry", tmp_path)
    (root / "registry.json").write_text(text)
    _assert_every_command_refuses(root, line, cli)


def _registry_with_path(path: str) -> str:
    entry = {"asset_id": "1a2b3c4d5e6f7081", "asset_name": "ok", "path": path}
    return json.dumps({"format": 1, "assets": [entry], "retired": []})


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc", "leads outside the workspace"),
        ("../victim", "leads outside the workspace"),
        ("assets/../../victim", "leads outside the workspace"),
        ("assets/./ok", "is not normalised (an empty or '.' segment)"),
        ("assets//ok", "is not normalised (an empty or '.' segment)"),
        ("assets/ok/", "is not normalised (an empty or '.' segment)"),
        (".", "names the workspace root, not a path inside it"),
        ("assets\\ok", "holds a backslash (folders are separated by '/')"),
        ("assets/o\x00k", "holds a NUL byte"),
    ],
    ids=["absolute", "dotdot", "dotdot-inside", "dot", "empty", "trailing", "root", "bs", "nul"],
)
def test_registry_path_that_is_not_a_normalised_workspace_path_is_refused(
    path: str, reason: str, tmp_path: Path, cli: Cli
) -> None:
    """A registry path is joined to the root: `packer mv`, a sync or a build would reach it."""
    root = _copy("hand-broken-registry", tmp_path)
    (root / "registry.json").write_text(_registry_with_path(path))
    line = f"error: registry.json: assets.0.path: {path!r} {reason}"
    _assert_every_command_refuses(root, line, cli)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            b'{"format": true, "assets": [], "retired": []}',
            "error: registry.json: format: expected an integer, got true",
        ),
        (
            b'{"format": 1.0, "assets": [], "retired": []}',
            "error: registry.json: format: expected an integer, got a number",
        ),
        (
            b"\xef\xbb\xbf" + _registry_with_path("assets/ok").encode(),
            "error: registry.json:1:1: invalid JSON: "
            "starts with a byte-order mark (save it as UTF-8 without BOM)",
        ),
        (
            _registry_with_path("assets/ok").encode("utf-16"),
            "error: registry.json:1:1: invalid JSON: not UTF-8 text (invalid start byte)",
        ),
        (
            b'{"format": 1, "assets": [], "assets": [], "retired": []}',
            "error: registry.json: invalid JSON: duplicate key 'assets'",
        ),
        (
            b"[" * 100_000 + b"]" * 100_000,
            "error: registry.json:1:65: invalid JSON: nested more than 64 levels deep",
        ),
        (
            b'{"format": ' + b"1" * 5000 + b', "assets": [], "retired": []}',
            "error: registry.json: invalid JSON: number too long (5000 characters; at most 64)",
        ),
    ],
    ids=["format-true", "format-float", "bom", "utf-16", "duplicate-key", "deep", "long-number"],
)
def test_registry_that_is_not_strict_json_is_refused(
    text: bytes, line: str, tmp_path: Path, cli: Cli
) -> None:
    root = _copy("hand-broken-registry", tmp_path)
    (root / "registry.json").write_bytes(text)
    _assert_every_command_refuses(root, line, cli)


def test_mv_refuses_while_registry_is_corrupt_and_moves_nothing(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy("corrupt-registry", tmp_path)
    before = _tree(root)
    monkeypatch.chdir(root)
    result = cli("mv", "assets/hero", "assets/chars/hero")
    assert result.code == 1
    assert _error_lines(result, root) == CASES["corrupt-registry"].status
    assert _tree(root) == before


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        (
            '[workspace]\nname = "x"\nassets = "assets"\n',
            "error: packer.toml: workspace.assets: expected an array of strings, got a string",
        ),
        (
            "[workspace]\nname = 3\n",
            "error: packer.toml: workspace.name: expected a string, got an integer",
        ),
        ('name = "x"\n', "error: packer.toml: workspace: required table is missing"),
        (
            '[workspace]\nname = "x"\nout = "../out"\n',
            "error: packer.toml: workspace.out: '../out' must be a folder inside the workspace",
        ),
        (
            '[workspace]\nname = "x"\nassets = ["nope"]\n',
            "error: packer.toml: workspace.assets: asset folder 'nope' does not exist",
        ),
        (
            '[workspace]\nname = "x"\nname = "y"\n',
            "error: packer.toml:3:11: invalid TOML: "
            "Cannot overwrite a value (at line 3, column 11)",
        ),
        (
            '[workspace]\nname = "x"\nout = "a\\u0000b"\n',
            "error: packer.toml: workspace.out: 'a\\x00b' holds a NUL byte",
        ),
        (
            '[workspace]\nname = "x"\nassets = ["assets\\\\hero"]\n',
            "error: packer.toml: workspace.assets: 'assets\\\\hero' "
            "holds a backslash (folders are separated by '/')",
        ),
        (
            '[workspace]\nname = "x"\nout = "."\n',
            "error: packer.toml: workspace.out: '.' is the workspace root, which holds "
            "packer.toml and registry.json; choose another output folder",
        ),
        (
            '[workspace]\nname = "x"\nout = "registry.json"\n',
            "error: packer.toml: workspace.out: 'registry.json' is the workspace's registry, "
            "not a folder for outputs; choose another output folder",
        ),
        (
            '[workspace]\nname = "x"\nout = "packer.toml"\n',
            "error: packer.toml: workspace.out: 'packer.toml' is the workspace's config, "
            "not a folder for outputs; choose another output folder",
        ),
        (
            '[workspace]\nname = "x"\nout = "assets"\n',
            "error: packer.toml: workspace.out: 'assets' is or holds the asset folder "
            "'assets'; choose another output folder",
        ),
        (
            '[workspace]\nname = "x"\nassets = ["assets/hero"]\nout = "assets"\n',
            "error: packer.toml: workspace.out: 'assets' is or holds the asset folder "
            "'assets/hero'; choose another output folder",
        ),
        (
            '[workspace]\nname = "x"\nout = "assets/hero"\n',
            "error: packer.toml: workspace.out: 'assets/hero' is an asset folder "
            "(it holds asset.json); choose another output folder",
        ),
    ],
    ids=[
        "assets-not-a-list",
        "name-not-a-string",
        "no-workspace-table",
        "out-escapes",
        "asset-root-missing",
        "invalid-toml",
        "out-nul",
        "assets-backslash",
        "out-root",
        "out-registry",
        "out-config",
        "out-asset-root",
        "out-above-asset-root",
        "out-asset-folder",
    ],
)
def test_bad_config_is_an_error_line_on_packer_toml(
    toml: str, line: str, tmp_path: Path, cli: Cli
) -> None:
    root = _copy("bad-config", tmp_path)
    (root / "packer.toml").write_text(toml)
    _assert_every_command_refuses(root, line, cli)


def _assert_every_command_refuses(root: Path, line: str, cli: Cli) -> None:
    """status, sync and ls each exit 1 with exactly ``line``, and no file changes."""
    before = _tree(root)
    for command in ("status", "sync", "ls"):
        result = cli("-C", str(root), command)
        assert result.code == 1, command
        assert _error_lines(result, root) == (line,), command
    assert _tree(root) == before


@pytest.mark.parametrize(
    ("case", "command"),
    [("bad-json", "status"), ("corrupt-registry", "sync"), ("bad-config", "ls")],
)
def test_a_real_process_shows_the_error_line_and_no_traceback(
    case: str, command: str, tmp_path: Path
) -> None:
    root = _copy(case, tmp_path)
    before = _tree(root)
    result = run_packer(command, cwd=root)
    assert result.code == 1
    assert _error_lines(result, root) == CASES[case].status[:1]
    assert _tree(root) == before


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        (),
        ("mv", "assets/ok"),
        ("merge-registry", "a.json", "b.json"),
        ("merge-registry", "--install", "a.json"),
        ("status", "--no-such-flag"),
    ],
    ids=["unknown-command", "no-command", "mv-one-arg", "merge-2-files", "install-files", "flag"],
)
def test_usage_errors_exit_2_and_touch_nothing(
    args: tuple[str, ...], tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy("bad-json", tmp_path)
    before = _tree(root)
    monkeypatch.chdir(root)
    result = cli(*args)
    assert result.code == 2
    assert "Traceback" not in result.err
    assert any(line.startswith("error: ") for line in result.err.splitlines())
    assert _tree(root) == before


def test_usage_error_in_a_real_process_exits_2(tmp_path: Path) -> None:
    result = run_packer("frobnicate", cwd=tmp_path)
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "error: argument command: invalid choice: 'frobnicate'" in result.err


def test_registry_text_of_every_case_is_canonical_where_it_parses() -> None:
    """The cases' registries are what `packer sync` writes, so the faults are the only faults."""
    for case in sorted(CASES):
        text = (WORKSPACES / case / "registry.json").read_bytes()
        if case in ("corrupt-registry", "hand-broken-registry"):
            continue
        assert render(parse(text)) == text, case
