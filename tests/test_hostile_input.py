"""Hostile input (SPEC §6): nothing outside the workspace is read through it, and special files,
oversized files, deep nesting, long numbers, NUL bytes and config or registry values that reach
outside or destroy identity are refused with one `error:` line naming the file, never a
traceback or a hang, with nothing that was good changed.

Every case is a real workspace made by `packer init`, with real links, FIFOs and processes.
A command that could block on a FIFO runs as a real process with a timeout, so a regression
fails instead of hanging. Registry and config values with exact lines are in test_bad_input.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import marshal
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result, registry_json, run_packer, text_asset, write_asset

from packer.hashing import hash_bytes
from packer.scan import ASSET_FILE_LIMIT
from packer.statcache import RACY_NS
from packer.workspace import CONFIG_LIMIT

Cli = Callable[..., Result]

TIMEOUT = 60
"""Seconds any process may take: far more than any case needs, far less than a hang."""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (links not followed) but packer's disposable state."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != ".packer"]
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(folder).as_posix()] = path.read_bytes()
    return found


def _error(result: Result, root: Path) -> str:
    """The single `error:` line of a command that failed as a user mistake should."""
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line]
    assert result.code == 1, result
    assert len(lines) == 1, lines
    assert str(root) not in lines[0], "error paths are workspace-relative"
    return lines[0]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the workspace holding a secret: nothing may read or write there."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("not yours\n")
    (folder / "sprites" / "evil").mkdir(parents=True)
    (folder / "sprites" / "evil" / "asset.json").write_text(
        json.dumps({"asset_name": "evil", "kind": "text", "inputs": ["../../secret.txt"]})
    )
    return folder


def _assert_refused(root: Path, outside: Path, line: str, cli: Cli, *commands: str) -> None:
    """Each command exits 1 with exactly ``line``; registry.json and the outside are unchanged."""
    registry, beyond = _sha(root / "registry.json"), _files(outside)
    for command in commands:
        result = cli("-C", str(root), command)
        assert _error(result, root) == line, command
    assert _sha(root / "registry.json") == registry
    assert _files(outside) == beyond


# --- links ----------------------------------------------------------------------------------


def test_input_through_a_folder_link_to_etc_is_refused(workspace: Path, cli: Cli) -> None:
    folder = workspace / "assets" / "x"
    folder.mkdir()
    (folder / "sub").symlink_to("/etc")
    (folder / "asset.json").write_text(
        json.dumps({"asset_name": "x", "kind": "raw", "inputs": ["sub/hostname"]})
    )
    registry = _sha(workspace / "registry.json")
    result = cli("-C", str(workspace), "status")
    assert _error(result, workspace) == (
        "error: assets/x/asset.json:1:47: inputs.0: "
        "input 'sub/hostname' reaches outside the workspace through a link"
    )
    assert _sha(workspace / "registry.json") == registry
    build = run_packer("build", cwd=workspace, timeout=TIMEOUT)
    assert build.code != 0 and "reaches outside the workspace through a link" in build.err
    assert "Traceback" not in build.err
    assert not (workspace / "build" / "game.pack").exists()


@pytest.mark.parametrize(
    "name", ["sub/secret.txt", "deeper/sub/secret.txt", "../x/sub/secret.txt", "sub/./secret.txt"]
)
def test_every_spelling_of_an_input_through_a_link_out_is_refused(
    name: str, workspace: Path, outside: Path, cli: Cli
) -> None:
    folder = write_asset(
        workspace, "assets/x", {"asset_name": "x", "kind": "text", "inputs": [name]}
    )
    (folder / "deeper").mkdir()
    (folder / "sub").symlink_to(outside)
    (folder / "deeper" / "sub").symlink_to(outside)
    line = (
        f"error: assets/x/asset.json:5:5: inputs.0: input {name!r} "
        "reaches outside the workspace through a link"
    )
    _assert_refused(workspace, outside, line, cli, "status")


def test_input_through_a_folder_link_that_stays_inside_is_allowed(
    workspace: Path, cli: Cli
) -> None:
    (workspace / "shared").mkdir()
    (workspace / "shared" / "palette.txt").write_text("p\n")
    folder = write_asset(
        workspace, "assets/x", {"asset_name": "x", "kind": "text", "inputs": ["sub/palette.txt"]}
    )
    (folder / "sub").symlink_to("../../shared")
    assert cli("-C", str(workspace), "sync").code == 0
    assert cli("-C", str(workspace), "status").code == 0
    build = run_packer("build", cwd=workspace, timeout=TIMEOUT)
    assert build.code == 0, build.err


def test_asset_json_linking_outside_is_refused_and_hides_nothing(
    workspace: Path, outside: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/ok", "ok")
    assert cli("-C", str(workspace), "sync").code == 0
    (workspace / "assets" / "x").mkdir()
    (workspace / "assets" / "x" / "asset.json").symlink_to(
        outside / "sprites" / "evil" / "asset.json"
    )
    line = "error: assets/x/asset.json: asset.json links outside the workspace"
    _assert_refused(workspace, outside, line, cli, "status", "sync")


def test_asset_json_linking_inside_the_workspace_is_allowed(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "templates/hero", "hero")
    folder = workspace / "assets" / "hero"
    folder.mkdir()
    (folder / "asset.json").symlink_to("../../templates/hero/asset.json")
    (folder / "data.txt").write_text("hello\n")
    assert cli("-C", str(workspace), "sync").code == 0
    assert [e["path"] for e in registry_json(workspace)["assets"]] == ["assets/hero"]


@pytest.mark.parametrize("shape", ["root-is-link", "root-passes-through-link"])
def test_asset_root_reaching_outside_through_a_link_is_refused(
    shape: str, workspace: Path, outside: Path, cli: Cli
) -> None:
    if shape == "root-is-link":
        (workspace / "art").symlink_to(outside / "sprites")
        root = "art"
    else:
        (workspace / "vendor").symlink_to(outside)
        root = "vendor/sprites"
    (workspace / "packer.toml").write_text(f'[workspace]\nname = "game"\nassets = ["{root}"]\n')
    line = (
        f"error: packer.toml: workspace.assets: asset folder {root!r} "
        "reaches outside the workspace through a link"
    )
    _assert_refused(workspace, outside, line, cli, "status", "sync", "ls")


def test_asset_root_that_a_link_makes_an_alias_of_another_is_refused(
    workspace: Path, outside: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/hero", "hero")
    (workspace / "art").symlink_to("assets")
    (workspace / "packer.toml").write_text(
        '[workspace]\nname = "game"\nassets = ["assets", "art"]\n'
    )
    line = (
        "error: packer.toml: workspace.assets: asset folder 'art' is 'assets' or inside it "
        "through a link; list one of them"
    )
    _assert_refused(workspace, outside, line, cli, "status", "sync")


def test_asset_root_linking_inside_the_workspace_is_allowed(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "source/art/hero", "hero")
    (workspace / "art").symlink_to("source/art")
    (workspace / "packer.toml").write_text('[workspace]\nname = "game"\nassets = ["art"]\n')
    assert cli("-C", str(workspace), "sync").code == 0
    assert [e["path"] for e in registry_json(workspace)["assets"]] == ["art/hero"]


def test_folder_links_inside_an_asset_root_are_not_entered(
    workspace: Path, outside: Path, cli: Cli
) -> None:
    (workspace / "assets" / "vendor").symlink_to(outside / "sprites")
    result = cli("-C", str(workspace), "status")
    assert (result.code, result.err) == (0, "")
    assert "evil" not in result.out


# --- special files and sizes ----------------------------------------------------------------


def _special(kind: str, path: Path) -> None:
    """Put a FIFO (no writer: any blocking open hangs) or a link to /dev/zero at ``path``."""
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


SPECIAL = pytest.mark.parametrize("kind", ["fifo", "dev-zero"])


@SPECIAL
def test_special_asset_json_is_refused_without_blocking(kind: str, workspace: Path) -> None:
    text_asset(workspace, "assets/ok", "ok")
    (workspace / "assets" / "x").mkdir()
    _special(kind, workspace / "assets" / "x" / "asset.json")
    registry = _sha(workspace / "registry.json")
    reason = (
        "cannot read: a FIFO, not a regular file"
        if kind == "fifo"
        else "asset.json links outside the workspace"  # /dev/zero is outside, refused first
    )
    for command in ("status", "sync"):
        result = run_packer(command, cwd=workspace, timeout=TIMEOUT)
        assert _error(result, workspace) == f"error: assets/x/asset.json: {reason}"
    assert _sha(workspace / "registry.json") == registry


@SPECIAL
def test_special_registry_is_refused_without_blocking_and_kept(kind: str, workspace: Path) -> None:
    text_asset(workspace, "assets/ok", "ok")
    _special(kind, workspace / "registry.json")
    what = "a FIFO" if kind == "fifo" else "a character device"
    for command in ("status", "sync", "ls", "build"):
        result = run_packer(command, cwd=workspace, timeout=TIMEOUT)
        assert "Traceback" not in result.err
        assert result.code != 0, command
        assert f"registry.json: cannot read: {what}, not a regular file" in result.err, command
    # Still the special file it was: never replaced by a registry packer wrote.
    assert (workspace / "registry.json").is_symlink() == (kind == "dev-zero")
    assert not (workspace / "registry.json").is_file()


@SPECIAL
def test_special_config_is_refused_without_blocking(kind: str, workspace: Path) -> None:
    _special(kind, workspace / "packer.toml")
    what = "a FIFO" if kind == "fifo" else "a character device"
    result = run_packer("status", cwd=workspace, timeout=TIMEOUT)
    assert (
        _error(result, workspace) == f"error: packer.toml: cannot read: {what}, not a regular file"
    )


@SPECIAL
def test_special_input_is_refused_without_blocking(kind: str, workspace: Path) -> None:
    folder = write_asset(
        workspace, "assets/x", {"asset_name": "x", "kind": "raw", "inputs": ["in"]}
    )
    if kind == "fifo":
        _special(kind, folder / "in")
        line = "error: assets/x/asset.json:5:5: inputs.0: input 'in' is not a file"
    else:
        _special(kind, folder / "in")
        line = "error: assets/x/asset.json:5:5: inputs.0: input 'in' links outside the workspace"
    result = run_packer("status", cwd=workspace, timeout=TIMEOUT)
    assert _error(result, workspace) == line
    build = run_packer("build", cwd=workspace, timeout=TIMEOUT)
    assert build.code != 0 and line.removeprefix("error: ") in build.err + build.out
    assert "Traceback" not in build.err
    assert not (workspace / "build" / "game.pack").exists()


def _wrong_shape_entries(root: Path, cache: str) -> dict[str, object]:
    """Entries of the right cache version under the keys a scan looks up, shaped unlike what
    packer writes: a stat key without its hash, a hash that is not text, a short declaration."""
    decl = root / "assets" / "hero" / "asset.json"
    if cache == "decls":
        return {f"assets/hero\0{hash_bytes(decl.read_bytes())}": ("hero", "text")}
    st, data = decl.stat(), (root / "assets" / "hero" / "data.txt").stat()
    return {
        "assets/hero/asset.json": (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino),
        "assets/hero/data.txt": (data.st_size, data.st_mtime_ns, data.st_ctime_ns, data.st_ino, 7),
    }


@pytest.mark.parametrize("name", ["statcache", "decls"])
@pytest.mark.parametrize("damage", ["fifo", "dev-zero", "folder", "garbage", "wrong-shape"])
def test_damaged_or_special_cache_is_ignored(name: str, damage: str, workspace: Path) -> None:
    """Caches are never authority: whatever sits there, the build gives the clean bytes."""
    text_asset(workspace, "assets/hero", "hero", "hello\n")
    text_asset(workspace, "assets/ok", "ok", "fine\n")
    if damage == "wrong-shape":
        time.sleep(RACY_NS / 1e9 + 0.2)  # old enough to be recorded: the caches are looked up
    assert run_packer("build", cwd=workspace, timeout=TIMEOUT).code == 0
    clean = (workspace / "build" / "game.pack").read_bytes()
    (workspace / "assets" / "hero" / "data.txt").write_text("changed\n")
    path = workspace / ".packer" / name
    if damage == "folder":
        path.unlink(missing_ok=True)
        path.mkdir()
    elif damage == "garbage":
        path.write_bytes(b"\xff" * 100)
    elif damage == "wrong-shape":
        path.write_bytes(marshal.dumps((2, _wrong_shape_entries(workspace, name))))
    else:
        _special(damage, path)
    result = run_packer("build", cwd=workspace, timeout=TIMEOUT)
    if damage == "folder":
        # Saving the cache (skipped when it has nothing to record) cannot replace a folder:
        # that is a write error, one line naming it; never a traceback, never a wrong pack.
        assert "Traceback" not in result.err
        if result.code != 0:
            assert name in _error(result, workspace)
    else:
        assert result.code == 0, result.err
        assert (workspace / "build" / "game.pack").read_bytes() != clean
    (workspace / "assets" / "hero" / "data.txt").write_text("hello\n")
    shutil.rmtree(workspace / ".packer")
    assert run_packer("build", cwd=workspace, timeout=TIMEOUT).code == 0
    assert (workspace / "build" / "game.pack").read_bytes() == clean


@pytest.mark.parametrize(
    ("file", "limit", "line"),
    [
        (
            "assets/x/asset.json",
            ASSET_FILE_LIMIT,
            "error: assets/x/asset.json: cannot read: larger than the limit of 1 MiB",
        ),
        (
            "packer.toml",
            CONFIG_LIMIT,
            "error: packer.toml: cannot read: larger than the limit of 1 MiB",
        ),
    ],
    ids=["asset.json", "packer.toml"],
)
def test_file_past_its_size_limit_is_refused(
    file: str, limit: int, line: str, workspace: Path, cli: Cli
) -> None:
    path = workspace / file
    path.parent.mkdir(parents=True, exist_ok=True)
    # Valid text of its kind, padded with spaces past the limit: only the size is wrong.
    head = (
        b'{"asset_name": "x", "kind": "raw", "inputs": ["a"]}'
        if file.endswith("json")
        else (b'[workspace]\nname = "game"\n')
    )
    path.write_bytes(head + b" " * (limit + 1 - len(head)))
    registry = _sha(workspace / "registry.json")
    for command in ("status", "sync"):
        assert _error(cli("-C", str(workspace), command), workspace) == line
    assert _sha(workspace / "registry.json") == registry


# --- no tracebacks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "[" * 100_000 + "]" * 100_000,
            "error: assets/x/asset.json:1:65: invalid JSON: nested more than 64 levels deep",
        ),
        (
            '{"asset_name": "x", "kind": "raw", "inputs": ["a"], "params": {"n": '
            + "9" * 5000
            + "}}",
            "error: assets/x/asset.json: invalid JSON: "
            "number too long (5000 characters; at most 64)",
        ),
        (
            '{"asset_name": "x", "kind": "raw", "inputs": ["a\\u0000b"]}',
            "error: assets/x/asset.json:1:47: inputs.0: must not hold a NUL byte",
        ),
        (
            '{"asset_name": "x", "kind": "raw", "inputs": ["a"], "deps": ["ok\\u0000"]}',
            "error: assets/x/asset.json:1:62: deps.0: must not hold a NUL byte",
        ),
        (
            '{"asset_name": "x\\u0000", "kind": "raw", "inputs": ["a"]}',
            "error: assets/x/asset.json:1:2: asset_name: must not hold a NUL byte",
        ),
    ],
    ids=["deep", "long-number", "nul-input", "nul-dep", "nul-name"],
)
def test_hostile_asset_json_is_a_declaration_error(
    text: str, line: str, workspace: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/ok", "ok")
    assert cli("-C", str(workspace), "sync").code == 0
    (workspace / "assets" / "x").mkdir()
    (workspace / "assets" / "x" / "asset.json").write_text(text)
    registry = _sha(workspace / "registry.json")
    for command in ("status", "sync"):
        assert _error(cli("-C", str(workspace), command), workspace) == line, command
    assert _sha(workspace / "registry.json") == registry


def _deep_folder(base: Path, levels: int) -> str:
    """Make ``levels`` nested 250-character folders under ``base`` (past PATH_MAX in total),
    each through the descriptor of its parent; the workspace-relative path of the deepest."""
    name = "d" * 250
    fd = os.open(base, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        decl = os.open("asset.json", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(decl, b'{"asset_name": "deep", "kind": "raw", "inputs": ["a"]}')
        os.close(decl)
    finally:
        os.close(fd)
    return "/".join([name] * levels)


def test_folder_past_path_max_is_a_problem_naming_it(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/ok", "ok")
    assert cli("-C", str(workspace), "sync").code == 0
    registry = _sha(workspace / "registry.json")
    deep = _deep_folder(workspace / "assets", 20)
    result = cli("-C", str(workspace), "status")
    line = _error(result, workspace)
    assert line.startswith("error: assets/ddd") and line.endswith(
        ": cannot read folder: " + os.strerror(errno.ENAMETOOLONG)
    )
    assert f"assets/{deep}".startswith(line.removeprefix("error: ").partition(":")[0])
    # The folder may hide registered assets: a sync refuses rather than retire them.
    assert _error(cli("-C", str(workspace), "sync"), workspace) == line
    assert _sha(workspace / "registry.json") == registry


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_folder_without_permission_is_a_problem_naming_it(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/locked/hero", "hero")
    assert cli("-C", str(workspace), "sync").code == 0
    registry = _sha(workspace / "registry.json")
    (workspace / "assets" / "locked").chmod(0)
    try:
        for command in ("status", "sync"):
            assert _error(cli("-C", str(workspace), command), workspace) == (
                "error: assets/locked: cannot read folder: Permission denied"
            )
    finally:
        (workspace / "assets" / "locked").chmod(0o755)
    assert _sha(workspace / "registry.json") == registry


def test_state_folder_that_is_a_file_is_a_config_error(workspace: Path, cli: Cli) -> None:
    shutil.rmtree(workspace / ".packer")
    (workspace / ".packer").write_text("not a folder\n")
    registry = _sha(workspace / "registry.json")
    line = "error: .packer: cannot use it as packer's state folder: exists and is not a folder"
    for command in ("status", "sync", "ls"):
        assert _error(cli("-C", str(workspace), command), workspace) == line, command
    assert _sha(workspace / "registry.json") == registry
    assert (workspace / ".packer").read_text() == "not a folder\n"


# --- out and the registry -------------------------------------------------------------------


def test_out_holding_a_registered_asset_is_refused_not_retired(
    tmp_path: Path, outside: Path, cli: Cli
) -> None:
    """Before, such an out made the scan skip the asset, and a sync retired its id."""
    root = tmp_path / "flat"
    root.mkdir()
    (root / "packer.toml").write_text('[workspace]\nname = "flat"\nassets = ["."]\nout = "out"\n')
    text_asset(root, "gen/hero", "hero")
    assert cli("-C", str(root), "sync").code == 0
    (root / "packer.toml").write_text('[workspace]\nname = "flat"\nassets = ["."]\nout = "gen"\n')
    hero = registry_json(root)["assets"][0]["asset_id"]
    line = (
        f"error: packer.toml: workspace.out: 'gen' holds the registered asset {hero} "
        "(gen/hero); choose another output folder"
    )
    _assert_refused(root, outside, line, cli, "status", "sync")
    assert registry_json(root)["retired"] == []


def test_out_that_links_to_the_root_or_an_asset_folder_is_refused(
    workspace: Path, outside: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/chars/hero", "hero")
    (workspace / "build").symlink_to(".")
    line = (
        "error: packer.toml: workspace.out: 'build' is the workspace root, which holds "
        "packer.toml and registry.json; choose another output folder"
    )
    _assert_refused(workspace, outside, line, cli, "status", "sync", "ls")
    (workspace / "build").unlink()
    (workspace / "build").symlink_to("assets/chars")
    line = (
        "error: packer.toml: workspace.out: 'build' is or holds the asset folder "
        "'assets/chars/hero'; choose another output folder"
    )
    _assert_refused(workspace, outside, line, cli, "status", "sync", "ls")


# --- packer mv ------------------------------------------------------------------------------


@pytest.fixture
def synced(workspace: Path, cli: Cli) -> Path:
    text_asset(workspace, "assets/hero", "hero")
    assert cli("-C", str(workspace), "sync").code == 0
    return workspace


def test_mv_of_an_unregistered_folder_outside_pulls_nothing_in(
    synced: Path, outside: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(synced)
    before = _files(synced)
    line = "error: ../outside/sprites/evil: not a registered asset folder (no asset.json)"
    _assert_refused(synced, outside, line, cli)  # registry and outside snapshot only
    result = cli("mv", "../outside/sprites/evil", "assets/pulled")
    assert _error(result, synced) == line
    assert _files(synced) == before
    assert (outside / "sprites" / "evil" / "asset.json").is_file()


@pytest.mark.parametrize(
    ("link", "target", "reason"),
    [
        ("assets/away", "outside", "reaches outside the workspace through a link"),
        ("assets/alias", "inside", "passes through a link (packer does not follow folder links)"),
    ],
)
def test_mv_into_a_folder_link_is_refused_and_moves_nothing(
    link: str,
    target: str,
    reason: str,
    synced: Path,
    outside: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (synced / "assets" / "real").mkdir()
    (synced / link).symlink_to(outside if target == "outside" else synced / "assets" / "real")
    monkeypatch.chdir(synced)
    registry, before, beyond = _sha(synced / "registry.json"), _files(synced), _files(outside)
    result = cli("mv", "assets/hero", f"{link}/hero")
    assert _error(result, synced) == f"error: {link}/hero: destination {reason}"
    assert _sha(synced / "registry.json") == registry
    assert _files(synced) == before
    assert _files(outside) == beyond
    assert not (synced / "assets" / "real" / "hero").exists()


def test_mv_of_a_registered_folder_replaced_by_a_link_out_is_refused(
    synced: Path, outside: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(synced / "assets" / "hero")
    (synced / "assets" / "hero").symlink_to(outside / "sprites" / "evil")
    monkeypatch.chdir(synced)
    registry, beyond = _sha(synced / "registry.json"), _files(outside)
    result = cli("mv", "assets/hero", "assets/hero2")
    assert _error(result, synced) == (
        "error: assets/hero: source reaches outside the workspace through a link"
    )
    assert _sha(synced / "registry.json") == registry
    assert _files(outside) == beyond
    assert (synced / "assets" / "hero").is_symlink()


# --- nested roots and the merge driver ------------------------------------------------------


def test_nested_asset_roots_find_every_asset_once(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/music", "music")
    text_asset(workspace, "assets/sprites/hero", "hero")
    text_asset(workspace, "assets/sprites/.hidden/ghost", "ghost")
    (workspace / "packer.toml").write_text(
        '[workspace]\nname = "game"\nassets = ["assets", "assets/sprites"]\n'
    )
    result = cli("-C", str(workspace), "sync")
    assert (result.code, result.err) == (0, "")
    paths = sorted(e["path"] for e in registry_json(workspace)["assets"])
    assert paths == ["assets/music", "assets/sprites/hero"]
    assert cli("-C", str(workspace), "status").code == 0
    build = run_packer("build", cwd=workspace, timeout=TIMEOUT)
    assert build.code == 0, build.err


def test_merge_registry_names_a_missing_side(
    synced: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(synced)
    registry = _sha(synced / "registry.json")
    result = cli("merge-registry", "/dev/null", "registry.json", "missing.json")
    assert _error(result, synced) == "error: missing.json: no such file"
    assert _sha(synced / "registry.json") == registry


@pytest.mark.parametrize("base", ["/dev/null", "empty"])
def test_merge_registry_takes_an_empty_base_as_no_base(
    base: str, synced: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git passes an empty base when both branches added registry.json."""
    monkeypatch.chdir(synced)
    (synced / "empty").write_bytes(b"")
    theirs = tmp_path / "theirs.json"
    entry = {"asset_id": "00000000000000aa", "asset_name": "villain", "path": "assets/villain"}
    theirs.write_text(json.dumps({"format": 1, "assets": [entry], "retired": []}))
    result = cli("merge-registry", base, "registry.json", str(theirs))
    assert (result.code, result.err) == (0, "")
    names = sorted(e["asset_name"] for e in registry_json(synced)["assets"])
    assert names == ["hero", "villain"]
    assert os.path.exists("/dev/null") and not Path("/dev/null").is_file()


def test_merge_registry_never_writes_through_dev_null_as_ours(synced: Path, cli: Cli) -> None:
    result = cli("merge-registry", "/dev/null", "/dev/null", str(synced / "registry.json"))
    assert _error(result, synced) == (
        "error: /dev/null: cannot read: a character device, not a regular file"
    )
    assert Path("/dev/null").is_char_device()


# --- packer init ----------------------------------------------------------------------------


def test_init_keeps_a_registry_already_there(synced: Path, tmp_path: Path) -> None:
    """A registry without its packer.toml (lost, or a partial checkout) keeps its identities."""
    (synced / "packer.toml").unlink()
    registry = _sha(synced / "registry.json")
    result = run_packer("init", str(synced), "--name", "game", cwd=tmp_path, timeout=TIMEOUT)
    assert (result.code, result.err) == (0, "")
    assert _sha(synced / "registry.json") == registry


def test_init_refuses_a_special_registry_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "game"
    root.mkdir()
    os.mkfifo(root / "registry.json")
    result = run_packer("init", str(root), cwd=tmp_path, timeout=TIMEOUT)
    assert _error(result, root) == "error: registry.json: cannot read: a FIFO, not a regular file"
    assert not (root / "registry.json").is_file()
