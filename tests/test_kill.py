"""``kill -9`` at random instants of real builds that rewrite a pack of over 100 MB (SPEC §5).

Every round changes one small asset (so the build rewrites the whole pack), starts a real build
(plain ``doit`` and ``packer build`` in turn) in a workspace made by ``packer.api.init``, and
SIGKILLs it after a random delay. Then ``verify_pack`` must pass at once (it completes a commit
the kill interrupted), leaving the previous pair or the new one, and after the next complete
build no ``.tmp-`` file is left in build/ and the pack verifies.

``PACKER_KILL_ROUNDS`` sets the number of rounds (the suite's 12 take about 20 s on two cores;
``doit fuzz_pack`` runs 40), ``PACKER_KILL_SEED`` the random delays,
``PACKER_KILL_STATS`` a JSON file that receives the figures.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import xxhash
from conftest import pack_bytes, run_packer, write_asset

from packer import api
from packer.pack import commit_record_path, verify_pack

ROUNDS = int(os.environ.get("PACKER_KILL_ROUNDS", "12"))
SEED = int(os.environ.get("PACKER_KILL_SEED", "0")) or random.randrange(1, 2**31)
BIG_ASSETS = 4
BIG_SIZE = 26 << 20  # four of them: a pack of 104 MiB
TIMEOUT = 120  # seconds for any one build or wait


def _pair_digest(root: Path) -> str:
    pack, manifest = pack_bytes(root)
    return xxhash.xxh3_128_hexdigest(pack) + xxhash.xxh3_128_hexdigest(manifest)


def _build_command(round_number: int) -> list[str]:
    if round_number % 2:
        return [sys.executable, "-m", "packer", "build"]
    return [sys.executable, "-m", "doit"]


def _complete_build(root: Path, round_number: int) -> float:
    start = time.monotonic()
    done = subprocess.run(
        _build_command(round_number), cwd=root, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - start


def _wait_for_pack_temp(build: Path, process: subprocess.Popen[bytes]) -> None:
    """Return once the build's new pack has a temp file (or the build has ended)."""
    deadline = time.monotonic() + TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        if any(name.startswith(".game.pack.tmp-") for name in os.listdir(build)):
            return
        time.sleep(0.002)


def _timed_build(root: Path) -> tuple[float, float]:
    """Run a build that rewrites the pack to its end: its whole length, and how long it ran
    after the new pack's temp file appeared (writing the pack, committing the pair)."""
    start = time.monotonic()
    process = subprocess.Popen(
        _build_command(0), cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_for_pack_temp(root / "build", process)
    writing_from = time.monotonic()
    assert process.wait(timeout=TIMEOUT) == 0
    end = time.monotonic()
    return end - start, end - writing_from


def _temps(build: Path) -> list[str]:
    return sorted(name for name in os.listdir(build) if ".tmp-" in name)


def test_kill_9_at_random_instants_leaves_a_pair_verify_accepts(tmp_path: Path) -> None:
    root = tmp_path / "game"
    api.init(str(root), "game")
    for number in range(BIG_ASSETS):
        decl = {"asset_name": f"big/{number}", "kind": "raw", "inputs": ["data.bin"]}
        write_asset(root / "assets", f"big/{number}", decl, {"data.bin": os.urandom(BIG_SIZE)})
    small = {"asset_name": "counter", "kind": "raw", "inputs": ["count.txt"]}
    counter = write_asset(root / "assets", "counter", small, {"count.txt": "0\n"}) / "count.txt"
    build = root / "build"
    _complete_build(root, 0)
    assert (build / "game.pack").stat().st_size > 100_000_000

    rng = random.Random(SEED)
    counter.write_text("calibrate\n", encoding="utf-8")
    duration, writing = _timed_build(root)
    outcomes = {"finished before the kill": 0, "old pair": 0, "mid-commit": 0, "new pair": 0}
    start = time.monotonic()
    for round_number in range(ROUNDS):
        counter.write_text(f"round {round_number}\n", encoding="utf-8")
        previous = _pair_digest(root)
        process = subprocess.Popen(
            _build_command(round_number),
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if round_number % 4 < 2:  # any instant of the build's own length
            time.sleep(rng.uniform(0, 1.05) * duration)
        else:  # any instant once the pack is being written: the phase where a kill can tear
            _wait_for_pack_temp(build, process)
            time.sleep(rng.uniform(0, 1.1) * writing)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=TIMEOUT)

        if process.returncode == 0:
            outcome = "finished before the kill"
        elif os.path.exists(commit_record_path(str(build / "game.pack"))):
            outcome = "mid-commit"
        elif _pair_digest(root) == previous:
            outcome = "old pair"
        else:
            outcome = "new pair"
        outcomes[outcome] += 1

        verify_pack(str(build / "game.pack"))  # completes an interrupted commit first
        assert not os.path.exists(commit_record_path(str(build / "game.pack")))
        if outcome == "mid-commit":
            assert _pair_digest(root) != previous  # rolled forward, never back
        _complete_build(root, round_number + 1)
        assert _temps(build) == []
        verify_pack(str(build / "game.pack"))
    elapsed = time.monotonic() - start

    result = run_packer("verify", cwd=root, timeout=TIMEOUT)
    assert result.code == 0, result.err
    figures = {
        "rounds": ROUNDS,
        "seed": SEED,
        "pack_bytes": (build / "game.pack").stat().st_size,
        "build_seconds": round(duration, 2),
        "pack_writing_seconds": round(writing, 2),
        "outcomes": outcomes,
        "seconds": round(elapsed, 1),
    }
    print(f"kill rounds: {json.dumps(figures)}")
    if os.environ.get("PACKER_KILL_STATS"):
        Path(os.environ["PACKER_KILL_STATS"]).write_text(json.dumps(figures, indent=2))


def test_a_killed_builds_temp_files_do_not_outlive_the_next_no_op_build(
    workspace: Path,
) -> None:
    write_asset(
        workspace,
        "assets/one",
        {"asset_name": "one", "kind": "raw", "inputs": ["a"]},
        {"a": b"one"},
    )
    assert run_packer("build", cwd=workspace, timeout=TIMEOUT).code == 0
    build = workspace / "build"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=TIMEOUT)
    live = f".game.pack.tmp-{os.getpid()}-work"  # a live writer's work in progress: kept
    for command in (["build"], ["build", "-n", "2"]):  # the shortcut, then through doit
        debris = [f".game.pack.tmp-{dead.pid}-x", f".game.manifest.json.tmp-{dead.pid}-y"]
        for name in [*debris, live]:
            (build / name).write_bytes(b"half a pack")
        result = run_packer(*command, cwd=workspace, timeout=TIMEOUT)
        assert result.code == 0, result.err
        assert _temps(build) == [live], command
    (build / live).unlink()
    verify_pack(str(build / "game.pack"))
