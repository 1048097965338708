"""``packer watch`` as a real process on a real workspace: edits rebuild the pack, errors are
reported and recovered from, packer's own writes start nothing, signals end it cleanly."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from packer.pack import PackReader
from tests.conftest import ids_by_name, pack_bytes, run_doit, run_packer, text_asset

LINE_TIMEOUT_S = 30.0
QUIET_S = 1.0
"""How long a watch that has nothing to do is watched for a line it should not print."""


class Watch:
    """A ``python -m packer watch`` process; its stdout and stderr read as one stream of lines."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "packer", "watch", *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout: float = LINE_TIMEOUT_S) -> str:
        line = self.lines.get(timeout=timeout)
        assert line is not None, "packer watch ended"
        return line

    def no_line(self, within: float = QUIET_S) -> None:
        with pytest.raises(queue.Empty):
            extra = self.lines.get(timeout=within)
            pytest.fail(f"unexpected line: {extra!r}")

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=LINE_TIMEOUT_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=LINE_TIMEOUT_S)


@pytest.fixture
def watching(workspace: Path) -> Iterator[tuple[Path, list[Watch]]]:
    started: list[Watch] = []
    yield workspace, started
    for w in started:
        w.kill()


def _start(watching: tuple[Path, list[Watch]], *args: str) -> Watch:
    root, started = watching
    w = Watch(root, *args)
    started.append(w)
    return w


def _entry(root: Path, name: str) -> bytes:
    with PackReader(str(root / "build" / "game.pack")) as reader:
        return reader.get_by_name(name)


def _first_build_line(w: Watch, root: Path, registered: int) -> str:
    """The line of the build at start, after the lines of its sync registering every asset
    (each asset ``NAME`` in ``assets/NAME``)."""
    said = [w.line() for _ in range(registered)]
    ids = ids_by_name(root)
    assert said == [  # sorted by path
        f"registered {ids[name]}  assets/{name}  ({name})" for name in sorted(ids)
    ], said
    return w.line()


def _rebuild_until(w: Watch, done: object, timeout: float = LINE_TIMEOUT_S) -> list[str]:
    """Read rebuild lines until ``done()`` holds; the lines read."""
    lines = []
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        lines.append(w.line(max(0.1, deadline - time.monotonic())))
    return lines


def test_edits_rebuild_the_pack_and_doit_after_has_nothing_to_do(
    watching: tuple[Path, list[Watch]],
) -> None:
    root = watching[0]
    text_asset(root / "assets", "a", "a", "one\n")
    text_asset(root / "assets", "b", "b", "bee\n")
    w = _start(watching)
    assert _first_build_line(w, root, 2).startswith("first build: built 2 in ")

    (root / "assets" / "a" / "data.txt").write_text("two\n", encoding="utf-8")
    line = w.line()
    assert line.startswith("data.txt: built 1, up to date 1 in "), line
    assert _entry(root, "a") == b"two\n"

    # Two quick edits: built together or one after the other, the last pack has both.
    (root / "assets" / "a" / "data.txt").write_text("three\n", encoding="utf-8")
    (root / "assets" / "b" / "data.txt").write_text("bees\n", encoding="utf-8")
    lines = _rebuild_until(
        w, lambda: (_entry(root, "a"), _entry(root, "b")) == (b"three\n", b"bees\n")
    )
    assert all(": built " in line for line in lines), lines

    assert w.stop(signal.SIGINT) == 0
    after = run_doit(root)
    assert after.code == 0, after.err
    assert after.executed == ()
    assert sorted(after.up_to_date) == sorted(
        [*(f"asset:{i}" for i in ids_by_name(root).values()), "pack"]
    )


def test_a_broken_asset_json_is_one_error_line_and_its_fix_rebuilds(
    watching: tuple[Path, list[Watch]],
) -> None:
    root = watching[0]
    folder = text_asset(root / "assets", "a", "a", "one\n")
    w = _start(watching)
    assert _first_build_line(w, root, 1).startswith("first build: built 1 in ")

    decl = (folder / "asset.json").read_text(encoding="utf-8")
    (folder / "asset.json").write_text(decl.replace('"kind"', '"knd"'), encoding="utf-8")
    line = w.line()
    assert line.startswith("error: assets/a/asset.json"), line
    assert "kind" in line

    (folder / "data.txt").write_text("fixed\n", encoding="utf-8")
    (folder / "asset.json").write_text(decl, encoding="utf-8")
    lines = _rebuild_until(w, lambda: _entry(root, "a") == b"fixed\n")
    assert lines[-1].startswith(("asset.json, data.txt: built 1 in ", "data.txt: built 1 in "))
    assert w.stop(signal.SIGINT) == 0


def test_the_registry_write_of_its_own_sync_starts_no_rebuild(
    watching: tuple[Path, list[Watch]],
) -> None:
    root = watching[0]
    text_asset(root / "assets", "a", "a")  # unregistered: the first build's sync writes it
    w = _start(watching, "--json")
    first = json.loads(w.line())
    a_id = ids_by_name(root)["a"]
    assert first == {
        "changed": [],
        "identity_lines": [f"registered {a_id}  assets/a  (a)"],
        "ok": True,
        "pack": str(root / "build" / "game.pack"),
        "processed": 1,
        "cache_local": 0,
        "cache_remote": 0,
        "uploaded": 0,
        "up_to_date": 0,
        "failed": 0,
        "error_lines": [],
        "seconds": first["seconds"],
    }
    w.no_line()

    text_asset(root / "assets", "b", "b")  # registers b: one more registry write
    lines = _rebuild_until(w, lambda: "b" in ids_by_name(root) and _has_entry(root, "b"))
    assert json.loads(lines[-1])["ok"] is True
    said = [entry for line in lines for entry in json.loads(line)["identity_lines"]]
    assert said == [f"registered {ids_by_name(root)['b']}  assets/b  (b)"]
    w.no_line()
    assert w.stop(signal.SIGINT) == 0


def _has_entry(root: Path, name: str) -> bool:
    try:
        _entry(root, name)
    except (OSError, LookupError):
        return False
    return True


def test_sigterm_during_a_rebuild_exits_0_with_a_pack_that_verifies(
    watching: tuple[Path, list[Watch]],
) -> None:
    root = watching[0]
    for i in range(20):
        text_asset(root / "assets", f"t{i}", f"t{i}", f"text {i}\n")
    w = _start(watching)
    assert _first_build_line(w, root, 20).startswith("first build: built 20 in ")
    for i in range(20):
        (root / "assets" / f"t{i}" / "data.txt").write_text(f"new {i}\n", encoding="utf-8")
    time.sleep(0.1)  # within the quiet period or the rebuild: either way it must end cleanly
    assert w.stop(signal.SIGTERM) == 0
    verified = run_packer("verify", cwd=root, timeout=60)
    assert verified.code == 0, verified.err
    assert verified.out.startswith("ok: build/game.pack: 20 entries")
    assert not [p for p in os.listdir(root / "build") if ".tmp-" in p]


def test_without_watchfiles_it_is_one_error_line(workspace: Path) -> None:
    blocked = "import sys; sys.modules['watchfiles'] = None; from packer.cli import entrypoint; "
    done = subprocess.run(
        [sys.executable, "-c", blocked + "entrypoint()", "watch"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "error: .: packer watch needs watchfiles; install it with: pip install 'packer[watch]'\n"
    )


def _clean_build_bytes(root: Path) -> tuple[bytes, bytes]:
    """The pack and manifest a ``packer build`` from nothing gives for the workspace as it is."""
    shutil.rmtree(root / "build")
    shutil.rmtree(root / ".packer")
    built = run_packer("build", cwd=root)
    assert built.code == 0, built.err
    return pack_bytes(root)


def test_after_edits_adds_and_removals_the_pack_is_a_clean_builds(
    watching: tuple[Path, list[Watch]],
) -> None:
    root = watching[0]
    text_asset(root / "assets", "a", "a", "one\n")
    text_asset(root / "assets", "b", "b", "bee\n", deps=["a"])
    text_asset(root / "assets", "c", "c", "sea\n")
    w = _start(watching, "--json")
    assert json.loads(w.line())["processed"] == 3

    # A dep's edit rebuilds what depends on it, though nothing of its own changed.
    (root / "assets" / "a" / "data.txt").write_text("two\n", encoding="utf-8")
    line = json.loads(w.line())
    assert (line["processed"], line["up_to_date"]) == (2, 1), line
    text_asset(root / "assets", "d", "d", "dee\n")
    _rebuild_until(w, lambda: _has_entry(root, "d"))
    shutil.rmtree(root / "assets" / "c")
    _rebuild_until(w, lambda: not _has_entry(root, "c"))
    assert w.stop(signal.SIGINT) == 0
    watched = pack_bytes(root)
    assert run_doit(root).executed == ()
    assert watched == _clean_build_bytes(root)
