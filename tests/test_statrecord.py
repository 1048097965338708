"""A plain ``packer build`` answered from the stat record: only when nothing it read or left
changed, and never in place of a build that has something to do.

Real ``python -m packer build`` processes on a real workspace; whether the record answered is
read from ``-X importtime`` (the answer imports neither pydantic nor doit). The record keeps no
path written within ``RACY_NS`` of a build's start, so the test waits that long before each
build that must write one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import ids_by_name, pack_bytes, text_asset

from packer.statcache import RACY_NS

UP_TO_DATE = "-- 2 assets and the pack are up to date\n"


def build(root: Path, **env: str) -> tuple[bool, str]:
    """One ``packer build``: whether the stat record answered it, and its stdout."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "packer", "build"],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return "pydantic" not in done.stderr, done.stdout


def recorded(root: Path) -> None:
    """Let every change age past the racy window, then build: the build leaves a record."""
    time.sleep(RACY_NS / 1e9 + 0.5)
    build(root)
    assert (root / ".packer" / "stats").is_file()


def test_the_record_answers_only_while_nothing_changed(workspace: Path) -> None:
    root = workspace
    text_asset(root, "assets/a", "a", "hello\n")
    text_asset(root, "assets/b", "b", "world\n")
    (root / "assets" / "docs").mkdir()
    (root / "assets" / "docs" / "README").write_text("not an asset\n")
    build(root)  # registers both: registry.json is written now, too fresh for a record
    assert not (root / ".packer" / "stats").exists()
    recorded(root)
    answered, out = build(root)
    assert answered and out == UP_TO_DATE
    before = pack_bytes(root)

    # New bytes of the same size, the old mtime put back: the ctime still moved.
    data = root / "assets" / "a" / "data.txt"
    st = data.stat()
    data.write_text("jello\n")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert build(root)[0] is False
    assert b"jello" in pack_bytes(root)[0] and pack_bytes(root) != before

    # A new asset in a folder that holds none yet: that folder's stat tells.
    recorded(root)
    assert build(root)[0]
    text_asset(root, "assets/docs/c", "c", "new\n")
    assert build(root)[0] is False
    assert set(ids_by_name(root)) == {"a", "b", "c"}
    up_three = "-- 3 assets and the pack are up to date\n"

    # An artifact removed: the outputs' stats tell, and the build puts it back.
    recorded(root)
    assert build(root) == (True, up_three)
    artifact = root / "build" / "assets" / f"{ids_by_name(root)['a']}.bin"
    artifact.unlink()
    assert build(root)[0] is False
    assert artifact.is_file()

    # Another setting in the environment: a full pass, which finds nothing to do (and records
    # its own environment, so the next plain build takes one too).
    recorded(root)
    assert build(root, PACKER_FROZEN="1") == (False, up_three)
    assert build(root) == (False, up_three)
    assert build(root) == (True, up_three)

    # A change just before a build: the build takes it and leaves no record behind.
    (root / "assets" / "b" / "data.txt").write_text("earth\n")
    assert build(root)[0] is False
    assert not (root / ".packer" / "stats").exists()
    assert b"earth" in pack_bytes(root)[0]
    assert build(root)[0] is False


def test_no_record_when_an_asset_reads_through_a_link(workspace: Path) -> None:
    root = workspace
    shared = root / "shared.txt"
    shared.write_text("shared\n")
    folder = text_asset(root, "assets/a", "a")
    (folder / "data.txt").unlink()
    (folder / "data.txt").symlink_to(shared)
    recorded_dir = root / ".packer" / "stats"
    time.sleep(RACY_NS / 1e9 + 0.5)
    build(root)
    time.sleep(RACY_NS / 1e9 + 0.5)
    assert build(root)[0] is False
    # A change at the link's target is not under any folder the scan lists.
    assert not recorded_dir.exists()
