"""Hostile packs and manifests, truncation under a reader, and the pair's recoverable commit.

SPEC §5 (outputs replaced as a pair, a killed build's temps removed) and §6 (special files,
size limits, nesting and long numbers: one ``error:`` line, exit 1, never a hang). Everything
runs on real files: real FIFOs, real links to /dev/zero, a real truncation under a mapped
reader in a child process, the on-disk states a commit killed at each step leaves, and a
child process holding the commit lock. The fuzz of the reader runs here with a small budget
(``PACKER_PACK_FUZZ_CASES``); ``doit fuzz_pack`` runs a large one (tests/fuzz.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    Result,
    built_template,
    copy_built,
    pack_bytes,
    run_doit,
    run_packer,
    write_asset,
)
from fuzz import PACK_FUZZ_CASES_DEFAULT, limit_memory, run_pack_fuzz

from packer.artifact import write_artifact
from packer.errors import PackError
from packer.pack import (
    HEADER_SIZE,
    MANIFEST_LIMIT,
    PackEntry,
    PackReader,
    commit_record_path,
    complete_commit,
    verify_pack,
    write_pack,
)

CHILD_TIMEOUT = 60  # seconds; every child process here finishes in well under one


def populate(root: Path) -> None:
    write_asset(
        root / "assets",
        "a",
        {"asset_name": "a", "kind": "raw", "inputs": ["a.bin"]},
        {"a.bin": b"first asset\n" * 100},
    )
    write_asset(
        root / "assets",
        "b",
        {"asset_name": "b", "kind": "raw", "inputs": ["b.bin"]},
        {"b.bin": bytes(range(256)) * 40},
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, result = built_template(tmp_path_factory, populate)
    assert result.code == 0, result.err
    return root


@pytest.fixture
def built(template: Path, tmp_path: Path) -> Path:
    return copy_built(template, tmp_path)


def one_error_line(result: Result, path: str) -> str:
    """The single ``error:`` line of a failed command, which must name ``path``."""
    assert result.code == 1, (result.code, result.out, result.err)
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert path in lines[0], (path, lines[0])
    return lines[0]


def verify_bounded(root: Path) -> Result:
    """``packer verify`` as a child bounded in time and memory (RLIMIT_AS, as the fuzz child):
    a hang, or reading a device or a huge file into memory, fails the test instead of the box."""
    done = subprocess.run(
        [sys.executable, "-m", "packer", "verify"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        preexec_fn=limit_memory,
    )
    return Result(done.returncode, done.stdout, done.stderr)


# --- hostile manifests --------------------------------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _huge(path: Path) -> None:
    with path.open("wb") as handle:  # sparse: no disk used
        handle.truncate(MANIFEST_LIMIT + 1)


def _text(text: str | bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return write


MANIFEST_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "a FIFO, not a regular file"),
    "dev-zero": (_zero, "a character device"),
    "huge": (_huge, "larger than the limit of 1 GiB"),
    "deep": (_text("[" * 100_000 + "]" * 100_000), "nested more than"),
    "long-number": (_text('{"format": ' + "9" * 5000 + "}"), "number too long"),
    "nan": (_text('{"format": NaN}'), "not a JSON number"),
    "duplicate-key": (_text('{"format": 1, "format": 1}'), "duplicate key"),
    "bom": (_text(b'\xef\xbb\xbf{"format": 1}'), "byte-order mark"),
    "latin-1": (_text(b'{"pack": "\xe9"}'), "not UTF-8"),
    "huge-value": (
        _text('{"format": "' + "x" * 10_000 + '", "pack": 1, "snapshot": 1, "assets": []}'),
        "manifest format is 'xxx",
    ),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_hostile_manifest_is_one_error_line(built: Path, case: str) -> None:
    make, words = MANIFEST_CASES[case]
    manifest = built / "build/game.manifest.json"
    manifest.unlink()
    make(manifest)
    result = verify_bounded(built)
    line = one_error_line(result, "game.manifest.json")
    assert words in line
    assert len(line) < 300  # a hostile value is shown cut short


# --- special files and truncation as the pack -----------------------------------------------


def _child(code: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )


@pytest.mark.parametrize("make", [_fifo, _zero], ids=["fifo", "dev-zero"])
def test_special_file_as_pack_is_refused_without_blocking(
    built: Path, make: Callable[[Path], None]
) -> None:
    pack = built / "build/game.pack"
    pack.unlink()
    make(pack)
    line = one_error_line(verify_bounded(built), "game.pack")
    assert "not a regular file" in line
    child = _child(
        """
        import sys
        from packer.errors import PackError
        from packer.pack import PackReader
        try:
            PackReader(sys.argv[1])
        except PackError as err:
            print(err)
        """,
        str(pack),
    )
    assert child.returncode == 0, child.stderr
    assert "cannot open the pack" in child.stdout and "not a regular file" in child.stdout


def _big_pack(folder: Path, size: int = 4 << 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "big.bin"
    write_artifact(str(source), os.urandom(size))
    pack = folder / "big.pack"
    write_pack(
        str(pack),
        str(folder / "big.manifest.json"),
        "s",
        [PackEntry("big", "big", "raw", str(source))],
    )
    return pack


def test_pack_truncated_under_an_open_reader_is_an_error_not_sigbus(tmp_path: Path) -> None:
    pack = _big_pack(tmp_path)
    # The child opens the reader (the pack is mapped), waits for the parent to truncate the
    # file, then reads: the fstat check turns what would be SIGBUS into a PackError.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys
            from packer.errors import PackError
            from packer.pack import PackReader
            reader = PackReader(sys.argv[1])
            print("open", flush=True)
            sys.stdin.readline()
            try:
                reader.get("big")
            except PackError as err:
                print(err, flush=True)
            """),
            str(pack),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline() == "open\n"
    os.truncate(pack, HEADER_SIZE + 100)
    out, err = child.communicate("go\n", timeout=CHILD_TIMEOUT)
    assert child.returncode == 0, (child.returncode, err)  # -SIGBUS (-7) before the check
    assert "entry big: truncated to 164 bytes since it was opened" in out


def test_pack_truncated_during_verify_is_an_error_not_sigbus(tmp_path: Path) -> None:
    pack = _big_pack(tmp_path, 32 << 20)
    # The child verifies again and again; the parent truncates the pack while it does. verify
    # reads with pread, so wherever the truncation lands the child sees a PackError.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys, time
            from packer.errors import PackError
            from packer.pack import verify_pack
            print("verifying", flush=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    verify_pack(sys.argv[1])
                except PackError as err:
                    print(err, flush=True)
                    break
            """),
            str(pack),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "verifying\n"
    time.sleep(0.2)
    os.truncate(pack, (16 << 20) + 3)
    out, err = child.communicate(timeout=CHILD_TIMEOUT)
    assert child.returncode == 0, (child.returncode, err)
    assert "truncated" in out and str(pack) in out


# --- the pair's commit: every state a killed commit leaves ----------------------------------


def _dead_pid() -> int:
    """A pid that no live process has: one that just exited (and was reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=True,
    )
    return int(done.stdout)


@pytest.fixture(scope="module")
def changed(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with one asset changed and built, its pack task then forgotten: a killed
    pack task is not recorded as done either, so the next build runs it again."""
    root = copy_built(template, tmp_path_factory.mktemp("changed"))
    (root / "assets/a/a.bin").write_bytes(b"changed\n")
    assert run_doit(root).code == 0
    assert run_doit(root, "forget", "pack").code == 0
    assert pack_bytes(root) != pack_bytes(template)
    return root


# What a writer killed after its commit record leaves, step by step (docs/pack-format.md §3).
KILLED_AT = [
    "record written",
    "pack set aside",
    "pack moved in",
    "manifest set aside",
    "both moved in",
    "old pack removed",
    "old files removed",
]


def _killed_commit(template: Path, changed: Path, folder: Path, step: int) -> Path:
    """A copy of ``changed`` holding the old pair (the template's) and the new one as a writer
    killed after ``KILLED_AT[step]`` leaves them, built from the documented protocol alone."""
    root = folder / "game"
    shutil.copytree(changed, root, symlinks=True)
    build = root / "build"
    new = pack_bytes(root)
    for name in ("game.pack", "game.manifest.json"):
        shutil.copyfile(template / "build" / name, build / name)
    pid = _dead_pid()
    files = [
        ("game.pack", f".game.pack.tmp-{pid}-k1"),
        ("game.manifest.json", f".game.manifest.json.tmp-{pid}-k2"),
    ]
    for (_name, temp), data in zip(files, new, strict=True):
        (build / temp).write_bytes(data)
    record = {"commit": 1, "files": [{"path": name, "new": temp} for name, temp in files]}
    Path(commit_record_path(str(build / "game.pack"))).write_text(json.dumps(record))
    moves = [
        (build / "game.pack", build / ".game.pack.old"),
        (build / files[0][1], build / "game.pack"),
        (build / "game.manifest.json", build / ".game.manifest.json.old"),
        (build / files[1][1], build / "game.manifest.json"),
    ]
    for source, target in moves[:step]:
        source.rename(target)
    for old in [build / ".game.pack.old", build / ".game.manifest.json.old"][: max(0, step - 4)]:
        old.unlink()
    return root


def _assert_committed(root: Path, changed: Path) -> None:
    assert pack_bytes(root) == pack_bytes(changed)
    assert sorted(name for name in os.listdir(root / "build") if name.startswith(".")) == []
    verify_pack(str(root / "build/game.pack"))


@pytest.mark.parametrize("step", range(len(KILLED_AT)), ids=KILLED_AT)
def test_a_killed_commit_is_rolled_forward_by_verify(
    template: Path, changed: Path, tmp_path: Path, step: int, cli: Callable[..., Result]
) -> None:
    root = _killed_commit(template, changed, tmp_path, step)
    result = cli("-C", str(root), "verify")
    assert result.code == 0, result.err
    _assert_committed(root, changed)


@pytest.mark.parametrize("step", range(len(KILLED_AT)), ids=KILLED_AT)
def test_a_killed_commit_is_rolled_forward_by_complete_commit(
    template: Path, changed: Path, tmp_path: Path, step: int
) -> None:
    root = _killed_commit(template, changed, tmp_path, step)
    assert complete_commit(str(root / "build/game.pack"))
    assert not complete_commit(str(root / "build/game.pack"))
    _assert_committed(root, changed)


@pytest.mark.parametrize("step", [0, 2], ids=[KILLED_AT[0], KILLED_AT[2]])
def test_a_killed_commit_is_rolled_forward_by_the_next_build(
    template: Path, changed: Path, tmp_path: Path, step: int
) -> None:
    root = _killed_commit(template, changed, tmp_path, step)
    result = run_packer("build", cwd=root, timeout=CHILD_TIMEOUT)
    assert result.code == 0, result.err
    _assert_committed(root, changed)


def test_lone_surrogate_in_the_manifest_snapshot_is_a_pack_error(built: Path) -> None:
    manifest = built / "build/game.manifest.json"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(re.sub(r'"snapshot": "[^"]*"', r'"snapshot": "\\ud800"', text))
    with pytest.raises(PackError, match="snapshot is not valid Unicode text"):
        verify_pack(str(built / "build/game.pack"))


def test_build_removes_dead_writers_temps_and_keeps_live_ones(built: Path) -> None:
    build = built / "build"
    dead = _dead_pid()
    debris = [
        f".game.pack.tmp-{dead}-x",
        f".game.manifest.json.tmp-{dead}-y",
        f"..game.pack.commit.tmp-{dead}-z",
    ]
    live = f".game.pack.tmp-{os.getpid()}-working"  # this test process is a live writer
    for name in [*debris, live]:
        (build / name).write_bytes(b"partial")
    (built / "assets/a/a.bin").write_bytes(b"changed again\n")
    result = run_packer("build", cwd=built, timeout=CHILD_TIMEOUT)
    assert result.code == 0, result.err
    left = sorted(name for name in os.listdir(build) if ".tmp-" in name)
    assert left == [live]
    verify_pack(str(build / "game.pack"))


@pytest.mark.parametrize(
    "record",
    [
        "{not json",
        '{"commit": 2, "files": []}',
        '{"commit": 1, "files": [{"path": "game.pack", "new": "../../etc/passwd"}]}',
        '{"commit": 1, "files": [{"path": "/etc/passwd", "new": ".passwd.tmp-1-x"}]}',
        '{"commit": 1, "files": [{"path": "other.pack", "new": ".other.pack.tmp-1-x"}]}',
    ],
    ids=["not-json", "format", "new-outside", "absolute", "another-pack"],
)
def test_damaged_commit_record_is_one_error_line_and_touches_nothing(
    built: Path, record: str
) -> None:
    before = pack_bytes(built)
    record_path = Path(commit_record_path(str(built / "build/game.pack")))
    record_path.write_text(record)
    line = one_error_line(
        run_packer("verify", cwd=built, timeout=CHILD_TIMEOUT), ".game.pack.commit"
    )
    assert "commit record is damaged" in line and "delete it" in line
    assert pack_bytes(built) == before
    record_path.unlink()
    verify_pack(str(built / "build/game.pack"))


def test_verify_waits_for_a_commit_in_progress(built: Path) -> None:
    """A process holding the folder's commit lock (as a writer does while it commits) holds
    ``packer verify`` back until it lets go."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import fcntl, os, sys, time
            fd = os.open(sys.argv[1], os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(1.0)
            """),
            str(built / "build"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    start = time.monotonic()
    result = run_packer("verify", cwd=built, timeout=CHILD_TIMEOUT)
    waited = time.monotonic() - start
    holder.wait(timeout=CHILD_TIMEOUT)
    assert result.code == 0, result.err
    assert waited >= 0.5  # the child took about 0.3 s to start, then waited for the lock
    # The lock is a flock on the folder: nothing else holds it now.
    fd = os.open(built / "build", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_read_only_pack_folder_verifies(built: Path) -> None:
    build = built / "build"
    build.chmod(0o555)
    try:
        verify_pack(str(build / "game.pack"))
        with PackReader(str(build / "game.pack")) as reader:
            assert len(reader) == 2
    finally:
        build.chmod(0o755)


def test_write_into_a_missing_folder_is_a_pack_error(tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        write_pack(
            str(tmp_path / "nowhere/x.pack"), str(tmp_path / "nowhere/x.manifest.json"), "s", []
        )
    assert "nowhere" in str(caught.value)


# --- fuzz -------------------------------------------------------------------------------------


def test_fuzz_reader_and_verify_over_mutated_packs_and_manifests(tmp_path: Path) -> None:
    cases = int(os.environ.get("PACKER_PACK_FUZZ_CASES", PACK_FUZZ_CASES_DEFAULT))
    stats = run_pack_fuzz(
        cases, seed=int(os.environ.get("PACKER_PACK_FUZZ_SEED", "1")), folder=tmp_path
    )
    assert stats["failures"] == [], stats["failures"][:5]
    assert stats["cases"] >= cases
    assert stats["returncode"] == 0
