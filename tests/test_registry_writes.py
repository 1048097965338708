"""Only the lane writes registry.json (docs/architecture.md §3), checked on what processes do.

Every command that writes the registry runs as a real process under an audit hook
(``sys.addaudithook``) that records each write to the workspace's registry.json or its temp
files (an ``open`` for writing, a rename or replace onto it or from it, a removal, a
truncation, a link) with the packer modules on the stack. Each one must come from
``packer.lane``, directly or through ``packer.fsutil`` called by it: a raw write anywhere else
(``open(ws.registry_path, "w")`` in the API, say) fails here whatever name the path goes by.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import text_asset

WAIT_S = 120.0

# argv: EVENTS ROOT MODULE ARGS... Runs ``python -m MODULE ARGS`` in this process with the
# hook installed, and writes the registry writes it saw to EVENTS as JSON when it exits.
HOOKED = r"""
import atexit, json, os, runpy, sys

events_file, root, module, *args = sys.argv[1:]
real_root = os.path.realpath(root)
NAME = "registry.json"
TEMP = "." + NAME + ".tmp-"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
events = []
inside = False


def is_registry(path, dir_fd=None):
    if isinstance(path, int):
        return False  # a descriptor: its open was checked
    path = os.fsdecode(path)
    if dir_fd is not None and dir_fd >= 0:  # AT_FDCWD (negative): relative to the cwd
        path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    folder, name = os.path.split(os.path.abspath(path))
    return (name == NAME or name.startswith(TEMP)) and os.path.realpath(folder) == real_root


def packer_callers():
    chain, frame = [], sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if (name == "packer" or name.startswith("packer.")) and chain[-1:] != [name]:
            chain.append(name)
        frame = frame.f_back
    return chain


def targets(event, args):
    if event == "open":
        path, _, flags = args
        return [(path, None)] if flags & WRITE_FLAGS else []
    if event in ("os.rename", "os.link"):
        return [(args[0], args[2]), (args[1], args[3])]
    if event == "os.symlink":
        return [(args[1], args[2])]
    if event in ("os.remove", "os.rmdir"):
        return [(args[0], args[1])]
    if event == "os.truncate":
        return [(args[0], None)]
    return []


def hook(event, args):
    global inside
    if inside:
        return
    inside = True
    try:
        if any(is_registry(path, fd) for path, fd in targets(event, args)):
            events.append({"event": event, "callers": packer_callers()})
    except Exception as err:
        # Never break the command, never pass silently: a failed check fails the test.
        events.append({"event": f"{event}: the hook failed: {err!r}", "callers": []})
    finally:
        inside = False


def save():
    with open(events_file, "w") as out:
        json.dump(events, out)


atexit.register(save)
sys.addaudithook(hook)
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_hooked(tmp_path: Path, root: Path, module: str, *args: str, cwd: Path) -> list[Any]:
    """Run ``python -m module args`` under the hook; the registry writes it made."""
    events = tmp_path / "events.json"
    events.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", HOOKED, str(events), str(root), module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0, (module, args, done.stdout, done.stderr)
    seen: list[Any] = json.loads(events.read_text())
    return seen


def from_the_lane(callers: list[str]) -> bool:
    return callers[:1] == ["packer.lane"] or callers[:2] == ["packer.fsutil", "packer.lane"]


def _registry_writing_commands(tmp_path: Path, root: Path) -> list[tuple[str, list[Any]]]:
    """Every command that writes a registry, run in turn on one workspace (made by the first)."""
    ran: list[tuple[str, list[Any]]] = []

    def run(label: str, module: str, *args: str, cwd: Path = root) -> None:
        ran.append((label, run_hooked(tmp_path, root, module, *args, cwd=cwd)))

    run("init", "packer", "init", str(root), "--name", "game", cwd=tmp_path)
    text_asset(root, "assets/hero", "hero")
    run("sync", "packer", "sync")
    run("mv", "packer", "mv", "assets/hero", "assets/heroes/hero")
    text_asset(root, "assets/tree", "tree")
    run("packer build (its sync)", "packer", "build")
    text_asset(root, "assets/rock", "rock")
    run("doit (its sync)", "doit")
    # git hands the merge driver temp files in the work tree; %A is not the registry.
    registry = (root / "registry.json").read_text()
    for side in ("base", "ours", "theirs"):
        (root / f".merge_file_{side}").write_text(registry)
    run(
        "merge-registry",
        "packer",
        "merge-registry",
        *(f".merge_file_{s}" for s in ("base", "ours", "theirs")),
    )
    return ran


def test_every_registry_write_comes_from_the_lane(tmp_path: Path) -> None:
    root = tmp_path / "game"
    ran = _registry_writing_commands(tmp_path, root)
    for label, events in ran:
        strays = [e for e in events if not from_the_lane(e["callers"])]
        assert strays == [], f"{label} wrote the registry outside the lane: {strays}"
        commits = [e for e in events if e["event"] == "os.rename"]
        if label == "merge-registry":
            assert events == [], "the merge driver writes git's %A file, not the registry"
        else:
            assert commits, f"{label} committed no registry (the hook saw nothing to check)"
    assert sorted(
        e["asset_name"] for e in json.loads((root / "registry.json").read_text())["assets"]
    ) == ["hero", "rock", "tree"]


@pytest.mark.parametrize(
    "callers, allowed",
    [
        (["packer.lane", "packer.api", "packer.cli"], True),
        (["packer.fsutil", "packer.lane", "packer.api"], True),
        (["packer.fsutil", "packer.api", "packer.cli"], False),
        (["packer.api", "packer.cli"], False),
        (["packer.fsutil", "packer.doit"], False),
        ([], False),
    ],
)
def test_the_rule_names_the_lane_as_the_only_writer(callers: list[str], allowed: bool) -> None:
    assert from_the_lane(callers) is allowed
