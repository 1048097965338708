"""A full disk during a build (SPEC §6): one line naming the file, exit 1, nothing left behind.

The workspace sits on a real tmpfs of a few MiB, mounted for the test (the test skips, saying
why, only where ``mount`` is refused). A filler file outside the workspace leaves too little
room for what the build writes next: an asset's output, or the pack. ``packer build`` and plain
``doit`` run as real processes. Each must exit 1 with one line naming the file that could not be
written (``error: PATH: ...`` for ``packer build``; doit's own report for plain doit, without a
traceback), leave the previous pack, manifest and registry.json byte for byte, the output cache
intact, and no partial artifact or temp file; once the filler is gone the next build succeeds.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_doit, run_packer, text_asset, write_asset

from packer import api
from packer.artifact import read_artifact
from packer.pack import verify_pack

DISK_SIZE = 8 << 20
BIG = 1 << 20
"""The new asset's input; its artifact is as large, and the pack larger still."""
NO_SPACE = "No space left on device"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a fresh tmpfs of DISK_SIZE bytes, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as err:
        pytest.skip(f"cannot run mount, so no small disk to fill: {err}")
    if done.returncode != 0:
        pytest.skip(f"mount refused, so no small disk to fill: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], timeout=30, check=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` with one file until ``leave`` bytes are free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))
    return filler


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


@pytest.fixture
def game(disk: Path) -> Path:
    """A built, registered workspace on the small disk, plus a registered asset ``big`` whose
    input is BIG bytes, not built yet."""
    root = disk / "game"
    api.init(str(root), "game")
    text_asset(root / "assets", "text/intro", "intro", "hello\n")
    assert run_doit(root, timeout=60).code == 0
    decl = {"asset_name": "big", "kind": "raw", "inputs": ["big.bin"]}
    write_asset(root / "assets", "raw/big", decl, {"big.bin": os.urandom(BIG)})
    assert run_packer("sync", cwd=root, timeout=60).code == 0
    return root


# What stays free when the build starts: too little for the artifact (BIG plus its header), or
# enough for the artifact but not for the pack that copies it.
LEAVE = {"asset-output": BIG // 2, "pack": BIG + BIG // 2}
FAILED_FILE = {
    "asset-output": r"build/assets/[0-9a-f]+\.bin",
    "pack": r"build/game\.(pack|manifest\.json)",
}


@pytest.mark.parametrize("case", sorted(LEAVE))
def test_a_full_disk_fails_the_build_with_one_line_and_leaves_nothing_behind(
    case: str, disk: Path, game: Path
) -> None:
    kept = {name: _sha256(game / name) for name in ("registry.json", "build/game.pack")}
    kept["build/game.manifest.json"] = _sha256(game / "build/game.manifest.json")
    artifacts = sorted(p.name for p in (game / "build/assets").iterdir())
    filler = _fill(disk, LEAVE[case])
    line = rf"{FAILED_FILE[case]}: [^\n]*{NO_SPACE}"

    packer = run_packer("build", cwd=game, timeout=60)
    assert packer.code == 1, packer.out + packer.err
    assert re.fullmatch(rf"error: {line}\n", packer.err), packer.err
    plain = run_doit(game, timeout=60)
    assert plain.code == 1, plain.out + plain.err
    assert re.search(rf"^{line}$", plain.out, re.MULTILINE), plain.out
    assert "Traceback" not in plain.out + plain.err

    assert {name: _sha256(game / name) for name in kept} == kept
    verify_pack(str(game / "build/game.pack"))
    # No partial artifact: only complete ones (the pack case's new one is whole and checked).
    for artifact in (game / "build/assets").iterdir():
        assert read_artifact(str(artifact)) is not None, artifact
    if case == "asset-output":
        assert sorted(p.name for p in (game / "build/assets").iterdir()) == artifacts
    for entry in (game / ".packer/cache").rglob("*"):
        assert entry.is_dir() or read_artifact(str(entry)) is not None, entry
    assert _temps(game) == []

    filler.unlink()
    again = run_packer("build", cwd=game, timeout=60)
    assert again.code == 0, again.out + again.err
    verify_pack(str(game / "build/game.pack"))
    assert run_doit(game, timeout=60).executed == ()
    assert _temps(game) == []
