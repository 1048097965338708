"""The write lane (the one and only writer of registry.json) and the build lock.

Every registry change goes through ``Lane.hold()``: a cross-process file lock under ``.packer/``,
the registry re-read inside the lock (so a change computed from an older read is never written),
the new canonical text written to a temp file in the same folder, fsynced, ``os.replace``d, and
the folder fsynced. A crash at any instant leaves the old or the new file, whole.

Readers never take the lock: ``read_coherently`` reads the registry, lets the caller scan, and
checks that no commit happened meanwhile (no live writer's temp file beside registry.json, and
the same hash of its text), retrying, and only after several misses taking the lane once. So
``packer status`` answers while a writer holds the lane.

Builds of one workspace serialize on a second lock of the same shape (``hold_build_until_exit``
for a dodo.py, ``holding_build`` for ``packer build``): doit reads its record when a command
starts and rewrites it when it ends, so two builds at once would lose each other's results.

While a process holds either lock it writes a sidecar naming itself (pid, host, command), so a
process that waits, or gives up waiting, can say who holds the lock and where. The sidecar is
best-effort: on a full disk the lock still works and the holder is reported as unknown.
Imports: stdlib, filelock, packer.registry, packer.fsutil, packer.workspace, packer.errors.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TypeVar

from filelock import FileLock, Timeout

from packer.errors import ConfigError, LaneBusy, PackerError, shown
from packer.fsutil import (
    KIB,
    FileTooLarge,
    atomic_output,
    atomic_write,
    read_regular,
    remove_stale_temps,
    temp_prefix,
)
from packer.jsontext import JsonTextError, parse_json
from packer.registry import Registry, read_registry, read_registry_hash, render
from packer.workspace import (
    BUILD_HOLDER,
    BUILD_LOCK,
    LANE_HOLDER,
    LANE_LOCK,
    REGISTRY_FILE,
    Workspace,
)

DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "PACKER_LANE_TIMEOUT"
_HOLDER_LIMIT = 64 * KIB
_UNKNOWN_HOLDER = "another process"
_HOLDER_RETRIES = 10
_HOLDER_RETRY_S = 0.02


def lane_timeout() -> float:
    """Seconds to wait for the lane: ``PACKER_LANE_TIMEOUT``, default 60.

    The rule is explicit because the failure modes are bad both ways: a finite number of
    seconds ≥ 0 (0 means try once); anything else (text, a negative number, ``inf``, ``nan``) is
    an error rather than a silent default or a wait that never ends.
    """
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"must be a finite number of seconds, 0 or more (got {text!r})", TIMEOUT_ENV
        )
    return value


def _holder_text() -> bytes:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}
    return json.dumps(holder).encode()


def _pid_exited(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def describe_holder(path: str) -> str:
    """Who holds a lock, from its sidecar: ``pid N on HOST (COMMAND)``, or why it is unknown."""
    try:
        holder = parse_json(read_regular(path, _HOLDER_LIMIT))
        pid, host, command = holder["pid"], holder["host"], holder["command"]
    except (OSError, JsonTextError, KeyError, TypeError):
        return f"{_UNKNOWN_HOLDER} (no holder recorded)"
    if not (isinstance(pid, int) and isinstance(host, str) and isinstance(command, str)):
        return f"{_UNKNOWN_HOLDER} (no holder recorded)"
    if host == socket.gethostname() and _pid_exited(pid):
        # A holder killed with -9 leaves its sidecar; its lock died with it, so the lock is now
        # held by a process that could not record itself.
        return f"{_UNKNOWN_HOLDER} (the recorded holder, pid {pid}, has exited)"
    return f"pid {pid} on {host} ({command})"


class _WorkspaceLock:
    """A cross-process lock under a workspace's state folder, with a holder sidecar."""

    def __init__(self, ws: Workspace, lock_name: str, holder_name: str) -> None:
        self.ws = ws
        self.lock_path = ws.state_path(lock_name)
        self.holder_path = ws.state_path(holder_name)
        self.lock = FileLock(self.lock_path)

    def acquire(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (-1: as long as it takes).

        ``on_wait`` is told who holds the lock when it is not free at once. Raises Timeout.
        """
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait(self._current_holder())
            if timeout == 0:
                raise
            self.lock.acquire(timeout=timeout)
        # Only the holder writes the sidecar: any temp file of it left now is a dead writer's.
        remove_stale_temps(
            self.ws.state_dir, os.path.basename(self.holder_path), dead_writers_only=False
        )
        try:
            atomic_write(self.holder_path, _holder_text(), durable=False)
        except OSError:
            # The sidecar only serves error messages: a full disk must not stop the command.
            with suppress(OSError):
                os.unlink(self.holder_path)

    def _current_holder(self) -> str:
        # A new holder records itself just after it takes the lock, and a dodo's build lock is
        # dropped by the kernel with no chance to remove its record: a record read at once may
        # name the previous holder. Give the new one a moment to say who it is.
        description = describe_holder(self.holder_path)
        for _ in range(_HOLDER_RETRIES):
            if not description.startswith(_UNKNOWN_HOLDER):
                break
            time.sleep(_HOLDER_RETRY_S)
            description = describe_holder(self.holder_path)
        return description

    def release(self) -> None:
        with suppress(OSError):
            os.unlink(self.holder_path)
        self.lock.release()


@dataclass
class LaneSession:
    """The lane while held: read the current registry, write a new one."""

    ws: Workspace

    def read(self) -> tuple[Registry, str]:
        """The registry as it is now, and the hash of its text (refuses a corrupt file)."""
        return read_registry(self.ws.registry_path)

    def current_hash(self) -> str:
        """The hash ``read`` would give now, without parsing: is it still the one a change
        was computed from?"""
        return read_registry_hash(self.ws.registry_path)

    def write(self, registry: Registry) -> bool:
        """Replace registry.json with the canonical text of ``registry``; False if unchanged."""
        text = render(registry)
        # A file longer than the new text differs from it: the size limit answers that unread.
        with suppress(FileNotFoundError, FileTooLarge):
            if read_regular(self.ws.registry_path, len(text)) == text:
                return False
        atomic_write(self.ws.registry_path, text)
        return True

    @contextmanager
    def committing(self, registry: Registry) -> Iterator[None]:
        """Replace registry.json with ``registry`` when the block ends without error.

        For a change to the folders that goes with the registry's (``packer mv``): the new text
        waits in a temp file beside registry.json through the whole block, and a reader that
        sees a live writer's temp file counts a commit as under way (``read_coherently``), so
        no reader pairs the folders as the block left them with the registry before it.
        """
        path = self.ws.registry_path
        try:
            with atomic_output(path) as handle:
                handle.write(render(registry))
                yield
        except OSError as err:
            # A full disk fails the temp file's write or fsync, which name no file.
            if err.filename is None:
                err.filename = path
            raise


class Lane:
    """The project-scoped write lane of one workspace."""

    def __init__(self, ws: Workspace, timeout: float | None = None) -> None:
        self.ws = ws
        self.timeout = lane_timeout() if timeout is None else timeout

    @contextmanager
    def hold(self) -> Iterator[LaneSession]:
        lock = _WorkspaceLock(self.ws, LANE_LOCK, LANE_HOLDER)
        try:
            lock.acquire(self.timeout)
        except Timeout:
            raise LaneBusy(
                describe_holder(lock.holder_path),
                self.ws.relpath(lock.lock_path),
                self.timeout,
                TIMEOUT_ENV,
            ) from None
        try:
            # A writer killed between mkstemp and os.replace leaves its temp file; inside the
            # lock no other writer can own one, so any that remain are debris.
            remove_stale_temps(self.ws.root, REGISTRY_FILE, dead_writers_only=False)
            yield LaneSession(self.ws)
        finally:
            lock.release()


Seen = TypeVar("Seen")

LOCK_FREE_READS = 4
"""How many times ``read_coherently`` reads without the lock before it takes the lane."""


def read_coherently(
    ws: Workspace,
    observe: Callable[[Registry, str], Seen],
    known: tuple[Registry, str] | None = None,
) -> Seen:
    """``observe(registry, registry_hash)`` on one registry state, without taking the lane.

    registry.json is only ever replaced whole, so a read without the lock gets one version of
    it. ``observe`` (a scan, say) runs next; if the file still has the same hash afterwards,
    no writer committed in between and what ``observe`` saw belongs with that registry. If it
    changed, the read and ``observe`` are done again; so is an ``observe`` that failed (a
    ``PackerError`` or ``OSError``: a file moved or removed under it). After
    ``LOCK_FREE_READS`` attempts that each overlapped a commit or failed, the lane is taken
    once so writers wait for this one read (as long as ``PACKER_LANE_TIMEOUT`` allows, then
    ``LaneBusy``). ``known``: a registry read
    before and its hash, not parsed again while the file has that hash (``read_registry``).
    """
    lane = Lane(ws)
    # The fallback needs the state folder: refuse one packer cannot use now, not only on the
    # rare read that falls back.
    ws.state_path(LANE_LOCK)
    for _ in range(LOCK_FREE_READS):
        registry, registry_hash = read_registry(ws.registry_path, known=known)
        try:
            seen = observe(registry, registry_hash)
        except (PackerError, OSError):
            # A file that vanished between the scan's stat and its read (``packer mv`` renaming
            # a folder, a folder deleted) means the workspace moved under this read: read again.
            # A fault that stays is raised by the last read, inside the lane.
            continue
        if _settled(ws, registry_hash):
            return seen
    with lane.hold() as session:
        return observe(*session.read())


def _settled(ws: Workspace, registry_hash: str) -> bool:
    """Whether no writer committed, or is committing, since registry.json had this hash. In
    this order: a commit whose temp file is gone by the first check has replaced the registry
    before the second."""
    return not _commit_under_way(ws) and read_registry_hash(ws.registry_path) == registry_hash


def _commit_under_way(ws: Workspace) -> bool:
    """Whether a live process has a temp file of registry.json: a commit it has not finished
    (a dead writer's temp file is debris, which the next writer removes)."""
    prefix = temp_prefix(REGISTRY_FILE)
    try:
        names = os.listdir(ws.root)
    except OSError:
        return False
    pids = (name[len(prefix) :].partition("-")[0] for name in names if name.startswith(prefix))
    return any(not pid.isdigit() or not _pid_exited(int(pid)) for pid in pids)


_HELD_BUILD_LOCKS: dict[str, _WorkspaceLock] = {}
"""The build locks this process holds, by state folder. Kept referenced here because a lock that
is garbage-collected is released. A forked ``doit -n N`` worker inherits them and never releases
them: an flock belongs to every process that shares its descriptor."""


def _say_waiting(ws: Workspace) -> Callable[[str], None]:
    where = os.path.relpath(ws.root)
    what = "this workspace" if where == "." else f"the workspace {where}"

    def on_wait(holder: str) -> None:
        sys.stderr.write(shown(f"packer: waiting for {holder}, which is building {what}") + "\n")
        sys.stderr.flush()

    return on_wait


def _take_build_lock(ws: Workspace) -> _WorkspaceLock:
    # Waits as long as another build runs: a build is not a hang, and a dead holder's flock is
    # gone with it. The wait is announced once, naming the holder.
    lock = _WorkspaceLock(ws, BUILD_LOCK, BUILD_HOLDER)
    lock.acquire(-1, _say_waiting(ws))
    return lock


def hold_build_until_exit(ws: Workspace) -> None:
    """Take ``ws``'s build lock unless this process holds it already, and keep it: the kernel
    drops it when the process ends, after doit has written its record back (a dodo.py: doit
    opens its record after importing the dodo, and writes it just before the process ends)."""
    key = os.path.realpath(ws.state_dir)
    if key not in _HELD_BUILD_LOCKS:
        _HELD_BUILD_LOCKS[key] = _take_build_lock(ws)


@contextmanager
def holding_build(ws: Workspace) -> Iterator[None]:
    """Hold ``ws``'s build lock for the block (``packer build``, which may run again in the same
    process); nothing to take if this process holds it already."""
    key = os.path.realpath(ws.state_dir)
    if key in _HELD_BUILD_LOCKS:
        yield
        return
    lock = _HELD_BUILD_LOCKS[key] = _take_build_lock(ws)
    try:
        yield
    finally:
        del _HELD_BUILD_LOCKS[key]
        lock.release()
