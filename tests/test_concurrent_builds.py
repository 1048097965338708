"""Concurrent builds of one workspace (SPEC §6): they serialize on the workspace's build lock.

Real processes only: ``packer build`` and plain ``python -m doit`` started together in one
workspace, several rounds with an edit between rounds. Every build must exit 0 without a
traceback, the later ones saying which process they wait for; the last pack verifies and holds
the last edit; doit's record is whole, so the next ``doit`` is a no-op. Every process is bounded
in time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import run_doit, run_packer, text_asset

from packer.pack import PackReader

BUILDS_PER_ROUND = 8
ROUNDS = 4
TIMEOUT_S = 90
WAITING = re.compile(
    r"^packer: waiting for pid \d+ on \S+ \(.+\), which is building this workspace$"
)


def _start(command: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"{process.args} did not finish in {TIMEOUT_S}s: {out}{err}")
    return process.returncode, out, err


def _commands(round_no: int) -> list[list[str]]:
    """Half ``packer build``, half plain doit; some with two worker processes."""
    commands = []
    for i in range(BUILDS_PER_ROUND):
        jobs = ["-n", "2"] if (i + round_no) % 3 == 0 else []
        commands.append(["packer", "build", *jobs] if i % 2 else ["doit", *jobs])
    return commands


def test_concurrent_builds_serialize_and_each_ends_with_a_valid_pack(workspace: Path) -> None:
    assets = workspace / "assets"
    for i in range(24):
        text_asset(assets, f"text/t{i:02}", f"t{i:02}", f"round 0, asset {i}\n")
    waits = 0
    for round_no in range(1, ROUNDS + 1):
        # An edit between rounds: changed content, and one new asset (registered by the builds).
        (assets / f"text/t{round_no:02}/data.txt").write_text(f"round {round_no}\n", "utf-8")
        text_asset(assets, f"text/new{round_no}", f"new{round_no}", f"new in {round_no}\n")
        processes = [_start(command, workspace) for command in _commands(round_no)]
        for process in processes:
            code, out, err = _finish(process)
            assert code == 0, (process.args, out, err)
            assert "Traceback" not in out + err, (process.args, out, err)
            # Whichever build syncs first says it registered the new asset; the rest wait.
            lines = [line for line in err.splitlines() if not line.startswith("packer: registered")]
            assert all(WAITING.match(line) for line in lines), (process.args, err)
            waits += len(lines)
        # Builds started together serialize, and the later ones say whom they wait for.
        assert waits > 0

        assert run_packer("verify", cwd=workspace).code == 0
        reader = PackReader(str(workspace / "build/game.pack"))
        assert reader.get_by_name(f"t{round_no:02}") == f"round {round_no}\n".encode()
        assert reader.get_by_name(f"new{round_no}") == f"new in {round_no}\n".encode()

    after = run_doit(workspace, timeout=TIMEOUT_S)
    assert after.code == 0, after.err
    assert after.out.splitlines() and all(
        line.startswith("-- ") for line in after.out.splitlines()
    ), after.out


HOLDER = """\
import sys
from packer.lane import hold_build_until_exit
from packer.workspace import open_workspace

hold_build_until_exit(open_workspace(sys.argv[1]))
print("held", flush=True)
sys.stdin.read()  # hold the lock until the test closes stdin
"""


@pytest.mark.parametrize("command", [["doit"], ["packer", "build"]], ids=["doit", "packer-build"])
def test_a_build_waits_for_the_lock_holder_and_names_it(
    workspace: Path, command: list[str]
) -> None:
    text_asset(workspace / "assets", "text/a", "a", "a\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        build = _start(command, workspace)
        # The build waits, having built nothing, as long as the holder lives.
        time.sleep(1.5)
        assert build.poll() is None
        assert not (workspace / "build/game.pack").exists()
    finally:
        holder.communicate(input="", timeout=TIMEOUT_S)
    code, out, err = _finish(build)
    assert code == 0, out + err
    waiting = [line for line in err.splitlines() if not line.startswith("packer: registered")]
    assert waiting == [
        f"packer: waiting for pid {holder.pid} on {os.uname().nodename} "
        f"(-c {workspace}), which is building this workspace"
    ]
    assert (workspace / "build/game.pack").exists()


HOST_DODO = """\
import subprocess
import sys

from packer.doit import packer_tasks

game = packer_tasks("game")

# Try to take the build lock from another process: it must still be taken.
PROBE = "from filelock import FileLock; FileLock(sys.argv[1]).acquire(timeout=0)"


def probe():
    done = subprocess.run([sys.executable, "-c", "import sys; " + PROBE, "game/.packer/build.lock"])
    with open("probe.txt", "w") as handle:
        handle.write("free" if done.returncode == 0 else "held")


def nothing():
    pass


def task_after_pack():
    # A teardown runs in doit's main process after its worker processes have exited.
    return {"actions": [nothing], "task_dep": ["pack"], "teardown": [probe]}
"""


def test_worker_processes_leave_the_lock_to_the_main_process(workspace: Path) -> None:
    for i in range(6):
        text_asset(workspace / "assets", f"text/t{i}", f"t{i}", f"{i}\n")
    host = workspace.parent
    (host / "dodo.py").write_text(HOST_DODO, encoding="utf-8")
    done = run_doit(host, "-n", "2", "after_pack", timeout=TIMEOUT_S)
    assert done.code == 0, done.out + done.err
    assert (host / "probe.txt").read_text("utf-8") == "held"
