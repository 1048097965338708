"""The pair's commit: the pack and its manifest replaced as one recoverable step.

A durable commit record beside the pack is the commit point; from it on, every command rolls
the commit forward (``recover_outputs``, ``complete_commit``, the next write or verify), under
an exclusive ``flock`` on the pack's folder. docs/pack-format.md §3 is the contract.
Imports: stdlib, packer.errors, packer.fsutil, packer.jsontext, packer.pack.format.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from packer.errors import PackError
from packer.fsutil import (
    KIB,
    atomic_write,
    fsync_dir,
    read_regular,
    remove_stale_temps,
    temp_prefix,
)
from packer.jsontext import JsonTextError, parse_json
from packer.pack.format import cut_short

COMMIT_FORMAT = 1
"""Version of the commit record's JSON shape (docs/pack-format.md §3)."""

COMMIT_RECORD_LIMIT = 64 * KIB
"""Largest commit record read: it names two files."""

COMMIT_LOCK_TIMEOUT = 60.0
"""Seconds a command waits for the commit lock. A commit holds it for a few renames and the
unlink of the previous pair, ``verify_pack`` while it opens the pack and reads the manifest."""


def commit_record_path(pack_path: str) -> str:
    """``build/x.pack`` -> ``build/.x.pack.commit``: the record of a commit not yet finished."""
    folder, name = os.path.split(pack_path)
    return os.path.join(folder, f".{name}.commit")


def _set_aside_path(path: str) -> str:
    """Where a commit moves the previous file at ``path`` until the new one is in place."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.old")


@contextmanager
def commit_lock(pack_path: str) -> Iterator[None]:
    """Hold the commit lock of the pack's folder: an exclusive ``flock`` on the folder itself.

    Commits and their recovery take it, and so does ``verify_pack`` while it opens the pair, so
    no reader sees the middle of a commit. Locking the folder creates no file (a read-only
    folder can be verified), and the wait is bounded by ``COMMIT_LOCK_TIMEOUT``.
    """
    folder = os.path.dirname(pack_path) or "."
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise PackError(f"cannot lock the pack's folder: {err.strerror or err}", folder) from err
    try:
        deadline = time.monotonic() + COMMIT_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PackError(
                        "another process has held the pack folder's commit lock for "
                        f"{COMMIT_LOCK_TIMEOUT:.0f} s",
                        folder,
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def commit_files(pack_path: str, moves: Sequence[tuple[str, str]]) -> None:
    """Move complete new files (``(path, new file)`` pairs, the pack first) in as one step.

    The durable commit record is the commit point: before it, nothing was touched and the new
    files are removed on failure; from it on, every command rolls the commit forward.
    """
    folder = os.path.dirname(pack_path) or "."
    record = {
        "commit": COMMIT_FORMAT,
        "files": [
            {"path": os.path.relpath(path, folder), "new": os.path.basename(new)}
            for path, new in moves
        ],
    }
    recorded = False
    try:
        with commit_lock(pack_path):
            finish_commit(pack_path)  # one whose writer was killed while this one streamed
            atomic_write(commit_record_path(pack_path), (json.dumps(record) + "\n").encode())
            recorded = True
            _roll_forward(pack_path, moves)
    except BaseException:
        if not recorded:
            for _, new in moves:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(new)
        raise


def _roll_forward(pack_path: str, moves: Sequence[tuple[str, str]]) -> None:
    """Finish a recorded commit: the writer's own, or one a kill interrupted.

    Every step frees nothing (the previous file gets a second name, then the new one replaces
    it, so the pack's path always names a whole pack) until every new file is in place; then
    what they replaced is unlinked, where a large file's blocks are freed, which takes time.
    Each step checks what is already done, so a commit or a recovery killed at any instant ends
    the same way when run again.
    """
    for path, new in moves:
        if os.path.lexists(new):
            _keep_previous(path)
            os.replace(new, path)
    for folder in sorted({os.path.dirname(path) or "." for path, _ in moves}):
        fsync_dir(folder)
    for path, _ in moves:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_set_aside_path(path))
    os.unlink(commit_record_path(pack_path))
    fsync_dir(os.path.dirname(pack_path) or ".")


def _keep_previous(path: str) -> None:
    """Give the file at ``path`` its set-aside name too, so replacing ``path`` frees nothing."""
    aside = _set_aside_path(path)
    with contextlib.suppress(FileNotFoundError):  # left by a commit killed at this very step
        os.unlink(aside)
    try:
        os.link(path, aside)
    except FileNotFoundError:  # nothing to replace: a first build
        return
    except OSError:  # a file system without hard links: move it aside instead
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, aside)


def _read_commit_record(pack_path: str) -> list[tuple[str, str]] | None:
    """The ``(path, new file)`` pairs of the pack's commit record; None when there is none."""
    record_path = commit_record_path(pack_path)
    try:
        raw = read_regular(record_path, COMMIT_RECORD_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise PackError(
            f"cannot read the commit record: {err.strerror or err}", record_path
        ) from err

    def damaged(why: str) -> PackError:
        return PackError(
            f"commit record is damaged ({why}); delete it and build again", record_path
        )

    try:
        document = parse_json(raw)
    except JsonTextError as err:
        raise damaged(err.message) from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, list) or not files or document.get("commit") != COMMIT_FORMAT:
        raise damaged(f'expected {{"commit": {COMMIT_FORMAT}, "files": [...]}}')
    folder = os.path.dirname(pack_path)
    moves: list[tuple[str, str]] = []
    for item in files:
        path = item.get("path") if isinstance(item, dict) else None
        new = item.get("new") if isinstance(item, dict) else None
        if not isinstance(path, str) or not os.path.basename(path) or os.path.isabs(path):
            raise damaged(f"a file's path is {cut_short(path)}")
        # Only a temp file named as packer names them, beside its target, is ever moved in.
        if not isinstance(new, str) or "/" in new or not new.startswith(temp_prefix(path)):
            raise damaged(f"the new file of {cut_short(path)} is {cut_short(new)}")
        if "\0" in path + new:
            raise damaged("a name holds a NUL byte")
        target = os.path.join(folder, path)
        moves.append((target, os.path.join(os.path.dirname(target), new)))
    if files[0].get("path") != os.path.basename(pack_path):
        raise damaged(f"its first file is not {os.path.basename(pack_path)!r}")
    return moves


def finish_commit(pack_path: str) -> bool:
    """Roll forward the commit recorded beside the pack, if any (the caller holds the lock)."""
    moves = _read_commit_record(pack_path)
    if moves is None:
        return False
    try:
        _roll_forward(pack_path, moves)
    except OSError as err:
        raise PackError(
            f"cannot complete an interrupted commit: {err.strerror or err}",
            commit_record_path(pack_path),
        ) from err
    return True


def recover_outputs(pack_path: str, manifest_path: str) -> None:
    """Finish a commit a killed writer left half done and remove the temp files of writers that
    died (a build calls it before it writes, or when it finds the pack up to date, so a kill's
    debris never outlives the next build)."""
    with commit_lock(pack_path):
        # Under the lock: the temps a commit record names are the recovery's to move in.
        finish_commit(pack_path)
        for path in (pack_path, manifest_path, commit_record_path(pack_path)):
            remove_stale_temps(os.path.dirname(path) or ".", os.path.basename(path))


def complete_commit(pack_path: str) -> bool:
    """Finish a commit of the pack and its manifest that a killed writer left half done.

    Returns True when there was one. ``write_pack`` and ``verify_pack`` call it themselves;
    call it before reading a pack and its manifest as a pair by other means. A lone
    ``PackReader`` needs no call: the pack's path always names a whole pack, old or new.
    """
    with commit_lock(pack_path):
        return finish_commit(pack_path)
