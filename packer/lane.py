"""The write lane (the one and only writer of registry.json) and the build lock.

Every registry change goes through ``Lane.hold()``: a cross-process file lock under ``.packer/``,
the registry re-read inside the lock (so a change computed from an older read is never written),
the new canonical text written to a temp file in the same folder, fsynced, ``os.replace``d, and
the folder fsynced. A crash at any instant leaves the old or the new file, whole.

Builds of one workspace serialize on a second lock of the same shape, ``build_lock``: doit keeps
its record in one file that it rewrites in place, so two builds at once would tear it.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from filelock import FileLock, Timeout

from packer.errors import ConfigError, LaneBusy
from packer.fsutil import KIB, FileTooLarge, atomic_write, read_regular, remove_stale_temps
from packer.jsontext import JsonTextError, parse_json
from packer.registry import Registry, read_registry, render
from packer.workspace import REGISTRY_FILE, Workspace

LOCK_FILE = "lane.lock"
HOLDER_FILE = "lane.holder"
BUILD_LOCK_FILE = "build.lock"
BUILD_HOLDER_FILE = "build.holder"
DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "PACKER_LANE_TIMEOUT"
_HOLDER_LIMIT = 64 * KIB


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
        return "another process (no holder recorded)"
    if not (isinstance(pid, int) and isinstance(host, str) and isinstance(command, str)):
        return "another process (no holder recorded)"
    if host == socket.gethostname() and _pid_exited(pid):
        # A holder killed with -9 leaves its sidecar; its lock died with it, so the lock is now
        # held by a process that could not record itself.
        return f"another process (the recorded holder, pid {pid}, has exited)"
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
                on_wait(describe_holder(self.holder_path))
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

    def write(self, registry: Registry) -> bool:
        """Replace registry.json with the canonical text of ``registry``; False if unchanged."""
        text = render(registry)
        # A file longer than the new text differs from it: the size limit answers that unread.
        with suppress(FileNotFoundError, FileTooLarge):
            if read_regular(self.ws.registry_path, len(text)) == text:
                return False
        atomic_write(self.ws.registry_path, text)
        return True


class Lane:
    """The project-scoped write lane of one workspace."""

    def __init__(self, ws: Workspace, timeout: float | None = None) -> None:
        self.ws = ws
        self.timeout = lane_timeout() if timeout is None else timeout

    @contextmanager
    def hold(self) -> Iterator[LaneSession]:
        lock = _WorkspaceLock(self.ws, LOCK_FILE, HOLDER_FILE)
        try:
            lock.acquire(self.timeout)
        except Timeout:
            raise LaneBusy(
                f"write lane busy for {self.timeout:g}s: held by "
                f"{describe_holder(lock.holder_path)}; "
                f"wait for it to finish, or set {TIMEOUT_ENV} to wait longer",
                self.ws.relpath(lock.lock_path),
            ) from None
        try:
            # A writer killed between mkstemp and os.replace leaves its temp file; inside the
            # lock no other writer can own one, so any that remain are debris.
            remove_stale_temps(self.ws.root, REGISTRY_FILE, dead_writers_only=False)
            yield LaneSession(self.ws)
        finally:
            lock.release()


def build_lock(ws: Workspace, on_wait: Callable[[str], None] | None = None) -> _WorkspaceLock:
    """Take the build lock of ``ws``, waiting as long as another build runs.

    ``on_wait`` is told who holds it when it is busy (to say which process the build waits
    for). The caller releases it, or keeps it until the process ends (the kernel then drops it,
    as after a kill).
    """
    lock = _WorkspaceLock(ws, BUILD_LOCK_FILE, BUILD_HOLDER_FILE)
    lock.acquire(-1, on_wait)
    return lock
