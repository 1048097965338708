"""Readers never wait on writers (SPEC §1 "Reads see one coherent snapshot"): real processes.

``packer status``, ``packer ls`` and a build's snapshot read the registry and scan without the
write lane, so they answer while another process holds it; a build that must sync still commits
through the lane. Racing a stream of real ``packer sync`` and ``packer mv`` processes, a reader
only ever reports a registry state some writer produced, paired with the folders as they were
with that registry. Every subprocess and every wait is bounded in time.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import registry_json, run_packer, text_asset

from packer.hashing import hash_bytes

WAIT_S = 60.0
"""Upper bound for any one process or group of processes to finish."""

ANSWER_S = 30.0
"""Bound on a reader's whole run (process start, imports, a build) while the lane is held:
far below the default lane timeout (60 s) a waiting reader would sit through."""

# argv: ROOT. Holds the write lane until killed.
HOLDER = r"""
import sys, time
from packer.lane import Lane
from packer.workspace import open_workspace

with Lane(open_workspace(sys.argv[1], search_up=False)).hold():
    print("held", flush=True)
    time.sleep(300)
"""

# argv: ROOT LOG STOP. Reads the workspace as status, ls and a frozen build's snapshot do, in a
# loop, one JSON line per result, until the file STOP exists.
READER = r"""
import json, os, sys
from packer import api
from packer.errors import RegistryError
from packer.workspace import open_workspace

root, log, stop = sys.argv[1:4]
ws = open_workspace(root, search_up=False)
with open(log, "w") as out:
    print("reading", flush=True)
    while not os.path.exists(stop):
        listed = [[a.asset_id, a.asset_name, a.path, a.kind] for a in api.ls(ws)]
        st = api.status(ws)
        status = {
            "moved": [m.asset_id for m in st.moved],
            "renamed": [r.asset_id for r in st.renamed],
            "ambiguous": [a.asset_name for a in st.ambiguous],
            "new": [n.path for n in st.new],
            "missing": [m.path for m in st.missing],
            "invalid": [str(p) for p in st.invalid],
            "registered": st.registered,
        }
        try:
            snap = api.snapshot(ws, frozen=True)
        except RegistryError as err:
            frozen = {"drift": str(err)}
        else:
            frozen = {
                "registry_hash": snap.registry_hash,
                "registered": sorted(snap.registry.by_path),
                "declared": sorted(d.path for d in snap.scan.decls),
            }
        out.write(json.dumps({"ls": listed, "status": status, "frozen": frozen}) + "\n")
        out.flush()
"""


def _wait_for_line(proc: subprocess.Popen[bytes], expected: bytes) -> None:
    """Until ``proc`` prints the line ``expected`` (bounded: select, then one readline)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], WAIT_S)
    assert ready, f"no {expected!r} from {proc.args!r} within {WAIT_S}s"
    line = proc.stdout.readline()
    assert line.strip() == expected, f"{proc.args!r} printed {line!r} (exit {proc.poll()})"


@contextmanager
def started(
    script: str, *args: str, ready: bytes, errors: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A ``python -c script`` process, once it printed ``ready``; killed when the block ends.

    Its stderr goes to the file ``errors`` (a pipe nobody reads could fill and block it).
    """
    with open(errors, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=stderr
        )
    try:
        _wait_for_line(proc, ready)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=WAIT_S)
        assert proc.stdout is not None
        proc.stdout.close()


def _synced_workspace(root: Path, *names: str) -> None:
    for name in names:
        text_asset(root, f"assets/{name}", name)
    result = run_packer("sync", cwd=root, timeout=WAIT_S)
    assert result.code == 0, result.err


# --- readers answer while the lane is held -------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [("status",), ("ls",), ("ls", "--json"), ("build", "--frozen"), ("build",)],
    ids=" ".join,
)
def test_readers_answer_while_another_process_holds_the_lane(
    workspace: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    _synced_workspace(workspace, "hero", "tree")
    with started(HOLDER, str(workspace), ready=b"held", errors=tmp_path / "holder.err") as holder:
        result = run_packer(*command, cwd=workspace, timeout=ANSWER_S)
        assert holder.poll() is None, "the holder must still hold the lane"
    assert result.code == 0, result.out + result.err
    assert "waiting" not in result.err and "busy" not in result.err
    if command[0] == "ls":
        assert "hero" in result.out and "tree" in result.out
    if command[0] == "build":
        assert (workspace / "build" / "game.pack").is_file()


def test_a_build_that_must_sync_commits_through_the_lane(workspace: Path, tmp_path: Path) -> None:
    _synced_workspace(workspace, "hero")
    text_asset(workspace, "assets/tree", "tree")  # a new asset: the build must register it
    before = (workspace / "registry.json").read_bytes()
    with started(HOLDER, str(workspace), ready=b"held", errors=tmp_path / "holder.err") as holder:
        busy = run_packer(
            "build", cwd=workspace, env={"PACKER_LANE_TIMEOUT": "0.5"}, timeout=ANSWER_S
        )
        assert holder.poll() is None
    assert busy.code == 1, busy.out + busy.err
    assert (
        f"error: .packer/lane.lock: write lane busy for 0.5s: "
        f"held by pid {holder.pid} on {socket.gethostname()} "
    ) in busy.err
    assert (workspace / "registry.json").read_bytes() == before
    assert not (workspace / "build" / "game.pack").exists()

    built = run_packer("build", cwd=workspace, timeout=WAIT_S)
    assert built.code == 0, built.out + built.err
    assert sorted(e["asset_name"] for e in registry_json(workspace)["assets"]) == ["hero", "tree"]


def test_a_frozen_build_reports_drift_without_the_lane(workspace: Path, tmp_path: Path) -> None:
    _synced_workspace(workspace, "hero")
    text_asset(workspace, "assets/tree", "tree")
    with started(HOLDER, str(workspace), ready=b"held", errors=tmp_path / "holder.err") as holder:
        result = run_packer("build", "--frozen", cwd=workspace, timeout=ANSWER_S)
        assert holder.poll() is None
    assert result.code == 1
    assert "asset 'tree' is not registered" in result.err
    assert "busy" not in result.err


# --- readers racing writers ----------------------------------------------------------------------


def _add(root: Path, name: str) -> None:
    """An asset folder appearing at once, as an editor that saves atomically makes it."""
    staging = text_asset(root, f"assets/.staging-{name}", name)
    os.rename(staging, root / "assets" / name)


def _delete(root: Path, name: str) -> None:
    """An asset folder disappearing at once (moved out of the scan, then removed)."""
    trash = root / "assets" / f".trash-{name}"
    os.rename(root / "assets" / name, trash)
    shutil.rmtree(trash)


def _write(root: Path, *args: str) -> None:
    result = run_packer(*args, cwd=root, env={"PACKER_LANE_TIMEOUT": "30"}, timeout=WAIT_S)
    assert result.code == 0, (args, result.err)


def _entries(text: bytes) -> frozenset[tuple[str, str, str]]:
    data: dict[str, Any] = json.loads(text)
    return frozenset((e["asset_id"], e["asset_name"], e["path"]) for e in data["assets"])


def test_readers_racing_sync_and_mv_see_only_states_the_writers_made(
    workspace: Path, tmp_path: Path
) -> None:
    root = workspace
    _synced_workspace(root, "hero", "tree", "rock")
    texts = [(root / "registry.json").read_bytes()]
    added: set[str] = set()
    deleted: set[str] = set()
    log, stop = tmp_path / "reads.jsonl", tmp_path / "stop"
    errors = tmp_path / "reader.err"
    with started(READER, str(root), str(log), str(stop), ready=b"reading", errors=errors) as reader:
        for i in range(6):
            moves = ("assets/hero", "assets/far/hero")
            _write(root, "mv", *(moves if i % 2 == 0 else reversed(moves)))
            texts.append((root / "registry.json").read_bytes())
            _add(root, f"new{i}")
            added.add(f"assets/new{i}")
            _write(root, "sync")
            texts.append((root / "registry.json").read_bytes())
            if i % 2 == 1:
                _delete(root, f"new{i - 1}")
                deleted.add(f"assets/new{i - 1}")
                _write(root, "sync")
                texts.append((root / "registry.json").read_bytes())
        stop.touch()
        reader.wait(timeout=WAIT_S)
        assert reader.returncode == 0, errors.read_text()

    states = {_entries(text) for text in texts}
    hashes = {hash_bytes(text) for text in texts}
    reads = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(reads) >= 10, f"only {len(reads)} reads raced the writers"
    for read in reads:
        listed = frozenset((a_id, name, path) for a_id, name, path, _ in read["ls"])
        assert listed in states, f"ls listed a registry no writer made: {sorted(listed)}"
        # An entry without a kind has no asset.json at its path: only a deleted folder, not yet
        # retired, may be like that; a moved folder never is (the move is one commit).
        gone = {path for _, _, path, kind in read["ls"] if kind is None}
        assert gone <= deleted, f"ls paired a registry with folders of another state: {gone}"

        status = read["status"]
        assert status["moved"] == status["renamed"] == status["ambiguous"] == [], status
        # A folder removed while the scan reads it is a problem of that folder (the scan is
        # no atomic view of the folders), never of another.
        assert all(p.split("/asset.json")[0] in deleted for p in status["invalid"]), status
        assert set(status["new"]) <= added and set(status["missing"]) <= deleted, status

        frozen = read["frozen"]
        if "drift" in frozen:
            assert " moved from " not in frozen["drift"], frozen
            assert " renamed from " not in frozen["drift"], frozen
        else:
            assert frozen["registry_hash"] in hashes
            # Paired: every registered path declared and the other way round, but for a folder
            # removed while the scan read it (then a problem of its own, as above).
            differ = set(frozen["registered"]) ^ set(frozen["declared"])
            assert differ <= deleted, frozen
