"""What packer prints and how it waits (SPEC §6 "Names are data", the lane's timeout, a full disk).

Through the CLI on real workspaces: names holding newlines, ANSI escapes and bidi overrides are
printed escaped by every command, in text and in --json; PACKER_LANE_TIMEOUT takes finite
seconds only; a lane whose recorded holder is dead says so; and on a real full disk (a small
tmpfs) `sync` ends with one error line naming the file while `status` and `ls` still answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import xxhash
from conftest import Result, ids_by_name, run_packer, text_asset, write_asset

from packer import api
from packer.pack import PackEntry, write_pack

Cli = Callable[..., Result]

WAIT_S = 60.0
FORGED = "x\nnew        assets/fake  (fake)"
FORGED_SHOWN = "new        assets/one  (x\\nnew        assets/fake  (fake))"
ANSI = "\x1b[31mred\x1b[0m"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _only_error(result: Result) -> str:
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err, result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    return lines[0]


# --- names are data ------------------------------------------------------------------------------


def test_a_newline_in_an_asset_name_cannot_forge_a_status_or_sync_line(
    workspace: Path, cli: Cli
) -> None:
    text_asset(workspace, "assets/one", FORGED)
    status = cli("-C", str(workspace), "status")
    assert status.code == 1  # not in sync: one new asset
    assert status.out.splitlines() == [
        "new        assets/one  (x\\nnew        assets/fake  (fake))"
    ]

    synced = cli("-C", str(workspace), "sync")
    assert synced.code == 0, synced.err
    one = ids_by_name(workspace)["x\nnew        assets/fake  (fake)"]
    assert synced.out.splitlines() == [
        f"registered {one}  assets/one  (x\\nnew        assets/fake  (fake))"
    ]
    listed = cli("-C", str(workspace), "ls")
    assert len(listed.out.splitlines()) == 1
    assert "x\\nnew" in listed.out


def test_an_ansi_escape_in_a_folder_name_is_shown_escaped(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, f"assets/{ANSI}", "red")
    status = cli("-C", str(workspace), "status")
    assert "\x1b" not in status.out + status.err
    assert status.out.splitlines() == ["new        assets/\\x1b[31mred\\x1b[0m  (red)"]


def test_a_broken_asset_json_in_a_hostile_folder_is_one_escaped_error_line(
    workspace: Path, cli: Cli
) -> None:
    write_asset(workspace, "assets/a\nb\u202e", "{not json")
    status = cli("-C", str(workspace), "status")
    line = _only_error(status)
    assert line.startswith("error: assets/a\\nb\\u202e/asset.json:1:2: invalid JSON")


def test_json_output_escapes_what_a_terminal_would_interpret(workspace: Path, cli: Cli) -> None:
    name = "c1\x9b31m del\x7f bidi\u202e ok é"
    text_asset(workspace, "assets/one", name)
    assert cli("-C", str(workspace), "sync").code == 0
    listed = cli("-C", str(workspace), "ls", "--json")
    assert listed.code == 0
    assert listed.out.isascii() or all(c.isprintable() or c in "\n " for c in listed.out)
    assert "\\u009b" in listed.out and "\\u202e" in listed.out and "é" in listed.out
    assert json.loads(listed.out)["assets"][0]["asset_name"] == name  # the same value


def test_verify_names_a_damaged_entry_escaped(tmp_path: Path, cli: Cli) -> None:
    blob = tmp_path / "blob.bin"
    data = b"payload" * 10
    blob.write_bytes(xxhash.xxh3_128_digest(data) + data)
    pack = tmp_path / "p.pack"
    write_pack(
        str(pack),
        str(tmp_path / "p.manifest.json"),
        "0" * 32,
        [PackEntry("id\n\x1b[2J", "name", "raw", str(blob))],
    )
    raw = bytearray(pack.read_bytes())
    raw[64 + 3] ^= 0xFF  # inside the one blob, which starts after the 64-byte header
    pack.write_bytes(bytes(raw))
    line = _only_error(cli("verify", str(pack)))
    assert "\x1b" not in line
    assert "entry id\\n\\x1b[2J: data is damaged" in line


# --- the lane's timeout --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "abc", "1e999"])
def test_a_lane_timeout_that_is_not_finite_seconds_is_refused(workspace: Path, value: str) -> None:
    text_asset(workspace, "assets/one", "one")
    before = _sha(workspace / "registry.json")
    result = run_packer("sync", cwd=workspace, env={"PACKER_LANE_TIMEOUT": value}, timeout=WAIT_S)
    line = _only_error(result)
    assert line == (
        f"error: PACKER_LANE_TIMEOUT: must be a finite number of seconds, 0 or more (got {value!r})"
    )
    assert _sha(workspace / "registry.json") == before


def test_a_lane_timeout_of_zero_tries_once(workspace: Path) -> None:
    text_asset(workspace, "assets/one", "one")
    result = run_packer("sync", cwd=workspace, env={"PACKER_LANE_TIMEOUT": "0"}, timeout=WAIT_S)
    assert result.code == 0, result.err


# A process that takes the lane's lock without recording itself (as a holder whose sidecar
# write failed would), leaving the sidecar of a holder that was killed earlier.
_SILENT_HOLDER = r"""
import sys, time
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_stale_holder_record_is_not_reported_as_the_holder(workspace: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=WAIT_S)
    (workspace / ".packer" / "lane.holder").write_text(
        json.dumps({"pid": dead.pid, "host": os.uname().nodename, "command": "packer sync"})
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", _SILENT_HOLDER, str(workspace / ".packer" / "lane.lock")],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        result = run_packer(
            "sync", cwd=workspace, env={"PACKER_LANE_TIMEOUT": "0.2"}, timeout=WAIT_S
        )
    finally:
        holder.kill()
        holder.wait(timeout=WAIT_S)
        assert holder.stdout is not None
        holder.stdout.close()
    line = _only_error(result)
    assert f"the recorded holder, pid {dead.pid}, has exited" in line
    assert f"held by pid {dead.pid} " not in line


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs, unmounted afterwards; skipped only where mount is refused."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    if done.returncode != 0:
        pytest.skip(f"mount refused here ({done.stderr.strip()}): no real full disk to test on")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=WAIT_S)


def _fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` to the last byte (big writes, then small)."""
    for name, chunk in (("filler", b"\0" * 65536), ("filler-tail", b"\0")):
        try:
            with open(folder / name, "wb", buffering=0) as handle:
                while True:
                    handle.write(chunk)
        except OSError:
            pass


def _unfill(folder: Path) -> None:
    for name in ("filler", "filler-tail"):
        (folder / name).unlink(missing_ok=True)


def test_a_full_disk_fails_sync_with_one_line_and_loses_nothing(small_disk: Path) -> None:
    root = small_disk / "game"
    api.init(str(root), "game")
    for number in range(3):
        text_asset(root, f"assets/a{number}", f"a{number}")
    assert run_packer("sync", cwd=root, timeout=WAIT_S).code == 0
    before = _sha(root / "registry.json")
    for number in range(40):  # a registry write that needs a few KiB more
        text_asset(root, f"assets/more/b{number:02}", f"more/b{number:02}")
    _fill(small_disk)

    synced = run_packer("sync", cwd=root, timeout=WAIT_S)
    line = _only_error(synced)
    assert line.startswith("error: registry.json: No space left on device"), line
    assert _sha(root / "registry.json") == before
    assert [p.name for p in root.iterdir() if ".tmp-" in p.name] == []

    # Reads still answer on a full disk: the lane's holder record is best-effort.
    status = run_packer("status", cwd=root, timeout=WAIT_S)
    assert status.code == 1 and "Traceback" not in status.err  # 40 new assets, not in sync
    assert status.out.count("new        ") == 40
    listed = run_packer("ls", cwd=root, timeout=WAIT_S)
    assert listed.code == 0, listed.err
    assert len(listed.out.splitlines()) == 3

    _unfill(small_disk)
    assert run_packer("sync", cwd=root, timeout=WAIT_S).code == 0
    assert run_packer("status", cwd=root, timeout=WAIT_S).code == 0
