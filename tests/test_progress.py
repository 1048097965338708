"""`packer build`'s progress: a live count and a summary on a terminal (a real pty), what ran when
piped; plain doit keeps doit's own lines."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ids_by_name, run_doit, run_packer, text_asset

DEADLINE_S = 120


def populate(root: Path, count: int) -> None:
    for i in range(count):
        text_asset(root, f"assets/t{i}", f"text/t{i}", f"line {i}\n")


def on_a_terminal(root: Path, *args: str) -> tuple[int, str]:
    """``packer build ARGS`` with its stdout and stderr on a pseudo-terminal: exit code and
    everything it wrote there."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once, nothing else
        os.chdir(root)
        os.execv(sys.executable, [sys.executable, "-m", "packer", "build", *args])
    chunks: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    else:
        os.kill(pid, 9)
        pytest.fail("packer build on a pty did not finish")
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


SUMMARY = re.compile(r"^(?P<counts>.+) in \d+\.\d s$")


def test_terminal_shows_a_live_count_and_one_summary(workspace: Path) -> None:
    populate(workspace, 5)
    code, out = on_a_terminal(workspace)
    assert code == 0, out
    assert "\r\x1b[K[" in out  # the status line, redrawn in place
    assert re.search(r"\[\d+/6\] text/t\d", out)  # done/total and the asset being built
    assert re.search(r"\d+/s", out)  # the rate
    assert ".  asset:" not in out and "-- " not in out
    last = out.split("\r\x1b[K")[-1].strip()
    match = SUMMARY.match(last)
    assert match, out
    assert match["counts"] == "built 5"

    (workspace / "assets/t3/data.txt").write_text("changed\n")
    (workspace / "assets/t1/asset.json").write_text(  # new bytes, same content: from the cache
        '{"asset_name": "text/t1", "kind": "text", "inputs": ["data.txt"]}'
    )
    code, out = on_a_terminal(workspace)
    assert code == 0, out
    counts = SUMMARY.match(out.split("\r\x1b[K")[-1].strip())
    assert counts and counts["counts"] == "built 1, from cache 1, up to date 3"


def test_piped_prints_only_what_ran(workspace: Path) -> None:
    populate(workspace, 3)
    assert run_packer("build", cwd=workspace).code == 0
    (workspace / "assets/t2/data.txt").write_text("changed\n")
    result = run_packer("build", cwd=workspace)
    assert result.code == 0, result.err
    changed = ids_by_name(workspace)["text/t2"]
    lines = result.out.splitlines()
    assert lines[:2] == [f".  asset:{changed}  text/t2", ".  pack"]
    assert SUMMARY.match(lines[2]) and lines[2].startswith("built 1, up to date 2 in ")
    assert len(lines) == 3  # no "-- NAME" for the up-to-date ones, no terminal codes
    assert "\x1b" not in result.out


def test_a_failure_is_one_error_line_and_counted(workspace: Path) -> None:
    populate(workspace, 2)
    assert run_packer("build", cwd=workspace).code == 0
    (workspace / "assets/t0/data.txt").write_bytes(b"\xff\xfe bad utf-8")
    result = run_packer("build", cwd=workspace)
    assert result.code == 1
    assert result.err.startswith("error: assets/t0/")
    # doit stops at the first failure: the other asset is checked first or never (ids are random).
    assert re.match(r"(up to date 1, )?failed 1 in ", result.out.splitlines()[-1])


def test_plain_doit_keeps_doits_reporter(workspace: Path) -> None:
    populate(workspace, 2)
    first = run_doit(workspace)
    assert len(first.executed) == 3
    again = run_doit(workspace)
    assert sorted(again.up_to_date) == sorted(first.executed)
    assert "up to date" not in again.out  # doit's "-- NAME" lines only, no summary
