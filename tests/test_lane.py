"""The write lane (SPEC §1 "Writes go through one lane", §6): real processes, real locks, kill -9.

Every test here runs packer in separate processes that contend for one workspace's lane and
checks what a user relies on: no lost update, no torn registry.json, identity kept across
concurrent moves and crashes, a held lane reported with its holder, a corrupt registry never
overwritten. Every subprocess and every wait is bounded in time.
"""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Result, ids_by_name, registry_json, run_packer, text_asset

from packer.cli import main as cli_main
from packer.registry import parse, render

WAIT_S = 60.0
"""Upper bound for any one group of processes to finish."""

LANE_ENV = {"PACKER_LANE_TIMEOUT": "30"}

# Creates an asset folder the way an editor that saves atomically would: built under a dot-folder
# (never scanned), then renamed into place, so a concurrent scan never sees a half-written folder.
_ADD_SOURCE = r"""
import json, os, sys

def add(root, folder, name):
    staging = os.path.join(root, "assets", ".staging-" + folder.replace("/", "_"))
    os.makedirs(staging)
    with open(os.path.join(staging, "data.txt"), "w") as handle:
        handle.write(name + "\n")
    with open(os.path.join(staging, "asset.json"), "w") as handle:
        json.dump({"asset_name": name, "kind": "text", "inputs": ["data.txt"]}, handle)
    target = os.path.join(root, *folder.split("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(staging, target)
"""

# argv: ROOT PREFIX COUNT. Adds COUNT assets one by one, syncing through the lane after each.
ADDER = (
    _ADD_SOURCE
    + r"""
from packer import api
from packer.workspace import open_workspace

root, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
ws = open_workspace(root, search_up=False)
for i in range(count):
    add(root, f"assets/{prefix}/{i}", f"{prefix}/{i}")
    api.sync(ws)
"""
)

# argv: ROOT FOLDER NAME. Creates its own asset folder, then becomes `python -m packer sync`.
ADD_THEN_SYNC = (
    _ADD_SOURCE
    + r"""
root, folder, name = sys.argv[1:4]
add(root, folder, name)
os.execv(sys.executable, [sys.executable, "-m", "packer", "-C", root, "sync"])
"""
)

# argv: ROOT K COUNT. COUNT read-modify-write commits straight on the lane, one own entry each.
LANE_WRITER = r"""
import sys
from packer.lane import Lane
from packer.model import RegistryEntry
from packer.workspace import open_workspace

root, k, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ws = open_workspace(root, search_up=False)
for j in range(count):
    entry = RegistryEntry(
        asset_id=f"{k:08x}{j:08x}", asset_name=f"w{k}/{j}", path=f"assets/w{k}/{j}"
    )
    with Lane(ws).hold() as lane:
        registry, _ = lane.read()
        lane.write(registry.replace(upsert=[entry]))
"""

# argv: ROOT TAG. Loops lane commits (add + sync, then a mv back and forth) until killed; says
# "ready" once its first round of commits is done, so every kill lands amid later ones.
CRASHER = (
    _ADD_SOURCE
    + r"""
from packer import api
from packer.workspace import open_workspace

root, tag = sys.argv[1], sys.argv[2]
ws = open_workspace(root, search_up=False)
here = os.path.join(root, "assets", "mover", "here")
there = os.path.join(root, "assets", "mover", "there")
i = 0
while True:
    add(root, f"assets/crash/{tag}-{i}", f"crash/{tag}-{i}")
    api.sync(ws)
    api.mv(ws, here, there) if os.path.isdir(here) else api.mv(ws, there, here)
    if i == 0:
        print("ready", flush=True)
    i += 1
"""
)

# argv: ROOT. Holds the lane and sleeps until killed.
HOLDER = r"""
import sys, time
from packer.lane import Lane
from packer.workspace import open_workspace

with Lane(open_workspace(sys.argv[1], search_up=False)).hold():
    print("held", flush=True)
    time.sleep(120)
"""

# argv: ROOT. Registers a new asset but dies (SIGKILL) at the os.replace of the registry, with
# the temp file written and the lane held: the worst moment for a crash.
DIE_AT_REPLACE = r"""
import os, signal, sys
from packer import api
from packer.workspace import open_workspace

real_replace = os.replace

def replace(src, dst):
    if os.path.basename(dst) == "registry.json":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)

os.replace = replace
api.sync(open_workspace(sys.argv[1], search_up=False))
"""


# --- helpers ------------------------------------------------------------------------------------


def spawn(args: Sequence[str], log_dir: Path, label: str) -> subprocess.Popen[bytes]:
    """Start a process with stdout and stderr in files (no pipe can fill up and block it)."""
    out = open(log_dir / f"{label}.out", "wb")  # noqa: SIM115 - closed below; the child has its copy
    err = open(log_dir / f"{label}.err", "wb")  # noqa: SIM115
    try:
        return subprocess.Popen(list(args), stdout=out, stderr=err, env={**os.environ, **LANE_ENV})
    finally:
        out.close()
        err.close()


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def packer_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "packer", *args]


@contextmanager
def reaped(procs: list[subprocess.Popen[bytes]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Kill whatever is still running when the block ends (a failing test leaves no orphan)."""
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(timeout=WAIT_S)


def read_while_running(registry: Path, procs: Sequence[subprocess.Popen[bytes]]) -> int:
    """Re-read registry.json until every process ended; every read must parse. Returns reads."""
    deadline = time.monotonic() + WAIT_S
    reads = 0
    while any(proc.poll() is None for proc in procs):
        assert time.monotonic() < deadline, "processes did not finish in time"
        text = registry.read_bytes()
        parse(text)  # a torn or half-written file raises RegistryError here
        reads += 1
    return reads


def assert_exit_ok(procs: Sequence[subprocess.Popen[bytes]], log_dir: Path) -> None:
    for proc in procs:
        code = proc.wait(timeout=WAIT_S)
        if code != 0:
            logs = "\n".join(
                f"{p.name}: {p.read_text(errors='replace')}" for p in sorted(log_dir.iterdir())
            )
            pytest.fail(f"process {proc.args!r} exited {code}\n{logs}")


def asset_folders(root: Path) -> set[str]:
    """Workspace-relative paths of every scanned asset folder (dot-folders are not scanned)."""
    found = set()
    for path in (root / "assets").rglob("asset.json"):
        rel = path.parent.relative_to(root)
        if not any(part.startswith(".") for part in rel.parts):
            found.add(rel.as_posix())
    return found


def check_registry(root: Path) -> dict[str, str]:
    """registry.json is whole and canonical, and registers each folder exactly once.

    Returns asset_name -> asset_id.
    """
    text = (root / "registry.json").read_bytes()
    registry = parse(text)
    assert render(registry) == text, "registry.json is not in canonical form"
    paths = [e.path for e in registry.entries]
    ids = [e.asset_id for e in registry.entries]
    assert len(set(paths)) == len(paths), "a path is registered twice"
    assert len(set(ids)) == len(ids), "an asset_id is listed twice"
    assert not set(ids) & registry.retired, "an id is both active and retired"
    assert set(paths) == asset_folders(root)
    return {e.asset_name: e.asset_id for e in registry.entries}


def stale_temps(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".registry.json.tmp-"))


def wait_for_line(proc: subprocess.Popen[bytes], expected: bytes, timeout: float = 30) -> None:
    """Block until ``proc`` prints ``expected`` on its stdout pipe (bounded)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no {expected!r} from {proc.args!r} within {timeout}s"
    line = proc.stdout.readline()
    if not line and proc.wait(timeout=WAIT_S) is not None and proc.stderr is not None:
        pytest.fail(f"{proc.args!r} exited {proc.returncode}: {proc.stderr.read()!r}")
    assert line.strip() == expected, line


def sync_in_process(root: Path) -> int:
    return cli_main(["-C", str(root), "sync"])


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_syncs_moves_and_adds_keep_one_coherent_registry(
    workspace: Path, tmp_path: Path
) -> None:
    root = workspace
    logs = tmp_path / "logs"
    logs.mkdir()
    movers = [f"mv{i}" for i in range(4)]
    for name in movers:
        text_asset(root, f"assets/movers/{name}", f"movers/{name}")
    assert sync_in_process(root) == 0
    ids_before = ids_by_name(root)
    for i in range(40):
        text_asset(root, f"assets/bulk/b{i:02d}", f"bulk/b{i:02d}", f"bulk {i}\n")

    procs: list[subprocess.Popen[bytes]] = []
    with reaped(procs):
        for i in range(6):
            procs.append(spawn(packer_cmd("-C", str(root), "sync"), logs, f"sync{i}"))
        for name in movers:
            src, dst = root / "assets/movers" / name, root / "assets/moved" / name
            procs.append(spawn(packer_cmd("-C", str(root), "mv", str(src), str(dst)), logs, name))
        for i in range(3):
            procs.append(spawn(python(ADDER, str(root), f"added{i}", "4"), logs, f"adder{i}"))
        reads = read_while_running(root / "registry.json", procs)
        assert_exit_ok(procs, logs)
    assert reads > 0

    ids_after = check_registry(root)
    assert len(ids_after) == len(movers) + 40 + 3 * 4
    assert registry_json(root)["retired"] == []
    for name in movers:
        assert ids_after[f"movers/{name}"] == ids_before[f"movers/{name}"]
        entry = next(
            e for e in registry_json(root)["assets"] if e["asset_name"] == f"movers/{name}"
        )
        assert entry["path"] == f"assets/moved/{name}"
    status = run_packer("status", cwd=root, timeout=WAIT_S)
    assert status.code == 0, status.out + status.err
    assert f"in sync: {len(ids_after)} assets registered" in status.out


def test_no_lost_update_when_each_process_registers_its_own_asset(
    workspace: Path, tmp_path: Path
) -> None:
    root = workspace
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 8
    procs: list[subprocess.Popen[bytes]] = []
    with reaped(procs):
        for k in range(n):
            args = python(ADD_THEN_SYNC, str(root), f"assets/own/p{k}", f"own/p{k}")
            procs.append(spawn(args, logs, f"p{k}"))
        read_while_running(root / "registry.json", procs)
        assert_exit_ok(procs, logs)
    ids = check_registry(root)
    assert sorted(ids) == sorted(f"own/p{k}" for k in range(n))


def test_no_lost_update_on_raw_lane_read_modify_write(workspace: Path, tmp_path: Path) -> None:
    # No scan can rescue a lost write here: each entry exists only in the commit that wrote it.
    root = workspace
    logs = tmp_path / "logs"
    logs.mkdir()
    n, per = 6, 8
    procs: list[subprocess.Popen[bytes]] = []
    with reaped(procs):
        for k in range(n):
            procs.append(spawn(python(LANE_WRITER, str(root), str(k), str(per)), logs, f"w{k}"))
        read_while_running(root / "registry.json", procs)
        assert_exit_ok(procs, logs)
    text = (root / "registry.json").read_bytes()
    registry = parse(text)
    assert render(registry) == text
    assert {e.asset_id for e in registry.entries} == {
        f"{k:08x}{j:08x}" for k in range(n) for j in range(per)
    }


# --- crashes ------------------------------------------------------------------------------------


def test_kill_9_during_lane_commits_leaves_a_whole_registry(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = workspace
    # A lock left by the dead process would make the in-process sync fail fast, not hang.
    monkeypatch.setenv("PACKER_LANE_TIMEOUT", "5")
    text_asset(root, "assets/mover/here", "mover")
    for i in range(10):
        text_asset(root, f"assets/base/{i}", f"base/{i}")
    assert sync_in_process(root) == 0
    known = check_registry(root)
    mover_id = known["mover"]
    rng = random.Random(20240611)
    rounds, saw_temp, crash_assets = 15, 0, 0
    for round_no in range(rounds):
        proc = subprocess.Popen(
            python(CRASHER, str(root), f"r{round_no}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **LANE_ENV},
        )
        try:
            wait_for_line(proc, b"ready")
            time.sleep(rng.uniform(0.0, 0.15))
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=WAIT_S)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

        # Old or new content, whole: parses, canonical, and no identity was lost or changed.
        text = (root / "registry.json").read_bytes()
        registry = parse(text)
        assert render(registry) == text
        assert not registry.retired
        now = {e.asset_name: e.asset_id for e in registry.entries}
        assert {name: now.get(name) for name in known} == known

        saw_temp += bool(stale_temps(root))
        (root / ".registry.json.tmp-planted").write_bytes(b'{"format": 1, "ass')
        # The dead process held the lane: the next command must not wait for it.
        assert sync_in_process(root) == 0
        assert stale_temps(root) == []
        assert list((root / ".packer").glob(".lane.holder.tmp-*")) == []
        ids = check_registry(root)
        assert not registry_json(root)["retired"]
        assert ids["mover"] == mover_id
        assert {name: ids[name] for name in known} == known
        crash_assets = sum(name.startswith("crash/") for name in ids)
        known = ids

    assert crash_assets >= rounds
    final = run_packer("status", cwd=root, env={"PACKER_LANE_TIMEOUT": "5"}, timeout=WAIT_S)
    assert final.code == 0, final.out + final.err
    print(f"{rounds} kills, {saw_temp} left a temp file, {crash_assets} assets registered")


def test_kill_9_between_temp_write_and_replace(workspace: Path) -> None:
    root = workspace
    text_asset(root, "assets/one", "one")
    assert sync_in_process(root) == 0
    before = (root / "registry.json").read_bytes()
    text_asset(root, "assets/two", "two")

    done = subprocess.run(
        python(DIE_AT_REPLACE, str(root)), capture_output=True, timeout=WAIT_S, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (root / "registry.json").read_bytes() == before  # the old file, whole
    temps = stale_temps(root)
    assert len(temps) == 1
    assert parse((root / temps[0]).read_bytes())  # the new text was complete, just not in place

    result = run_packer("sync", cwd=root, env={"PACKER_LANE_TIMEOUT": "2"}, timeout=WAIT_S)
    assert result.code == 0, result.err
    assert stale_temps(root) == []
    ids = check_registry(root)
    assert sorted(ids) == ["one", "two"]


# --- a busy lane --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["sync", "mv"])
def test_busy_lane_names_its_holder_and_changes_nothing(workspace: Path, command: str) -> None:
    root = workspace
    text_asset(root, "assets/one", "one")
    assert sync_in_process(root) == 0
    text_asset(root, "assets/two", "two")  # something a sync would register
    before = (root / "registry.json").read_bytes()

    holder = subprocess.Popen(
        python(HOLDER, str(root)), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for_line(holder, b"held")
        args = ["sync"] if command == "sync" else ["mv", "assets/one", "assets/moved"]
        started = time.monotonic()
        result = run_packer(*args, cwd=root, env={"PACKER_LANE_TIMEOUT": "0.5"}, timeout=WAIT_S)
        waited = time.monotonic() - started
        assert holder.poll() is None, "the holder must still hold the lane"
    finally:
        holder.kill()
        holder.wait(timeout=WAIT_S)
        for stream in (holder.stdout, holder.stderr):
            if stream is not None:
                stream.close()

    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: .packer/lane.lock: ")
    assert f"held by pid {holder.pid} on {socket.gethostname()} " in lines[0]
    assert waited < 30  # gave up after about PACKER_LANE_TIMEOUT, not the default 60 s
    assert (root / "registry.json").read_bytes() == before
    assert (root / "assets/one/asset.json").is_file()
    assert not (root / "assets/moved").exists()

    # Once the holder is gone (killed: the kernel dropped its lock) the lane is free again.
    after = run_packer("sync", cwd=root, env={"PACKER_LANE_TIMEOUT": "2"}, timeout=WAIT_S)
    assert after.code == 0, after.err
    assert sorted(check_registry(root)) == ["one", "two"]


# --- a corrupt registry -------------------------------------------------------------------------

CORRUPT = {
    "truncated": b'{\n  "format": 1,\n  "assets": [\n    {\n      "asset_id": "0123',
    "not_json": b"<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n",
    "not_utf8": b'{"format": 1, "assets": [], "retired": ["\xff"]}\n',
    "wrong_format": b'{"format": 2, "assets": [], "retired": []}\n',
    "duplicate_id": (
        b'{"format": 1, "assets": ['
        b'{"asset_id": "00000000000000aa", "asset_name": "x", "path": "assets/x"},'
        b'{"asset_id": "00000000000000aa", "asset_name": "y", "path": "assets/y"}'
        b'], "retired": []}\n'
    ),
    "active_and_retired": (
        b'{"format": 1, "assets": ['
        b'{"asset_id": "00000000000000aa", "asset_name": "x", "path": "assets/x"}'
        b'], "retired": ["00000000000000aa"]}\n'
    ),
    "empty": b"",
}


@pytest.mark.parametrize("corruption", sorted(CORRUPT))
@pytest.mark.parametrize("command", ["sync", "mv"])
def test_corrupt_registry_is_never_overwritten(
    workspace: Path, cli: Callable[..., Result], command: str, corruption: str
) -> None:
    root = workspace
    text_asset(root, "assets/one", "one")
    assert sync_in_process(root) == 0
    text_asset(root, "assets/two", "two")
    bad = CORRUPT[corruption]
    (root / "registry.json").write_bytes(bad)

    if command == "sync":
        result = cli("-C", str(root), "sync")
    else:
        result = cli("-C", str(root), "mv", str(root / "assets/one"), str(root / "assets/moved"))

    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert result.err.startswith("error: registry.json"), result.err
    assert (root / "registry.json").read_bytes() == bad
    assert (root / "assets/one/asset.json").is_file()
    assert not (root / "assets/moved").exists()
    assert stale_temps(root) == []
