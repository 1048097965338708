"""The write lane: the one and only writer of registry.json.

Every registry change goes through ``Lane.hold()``: a cross-process file lock under ``.packer/``,
the registry re-read inside the lock (so a change computed from an older read is never written),
the new canonical text written to a temp file in the same folder, fsynced, ``os.replace``d, and
the folder fsynced. A crash at any instant leaves the old or the new file, whole.

While it holds the lock the lane writes a sidecar naming its holder (pid, host, command) so that
a process that gives up waiting can say who holds the lane and where.
Imports: stdlib, filelock, packer.registry, packer.fsutil, packer.workspace, packer.errors.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from filelock import FileLock, Timeout

from packer.errors import LaneBusy
from packer.fsutil import atomic_write, remove_stale_temps
from packer.registry import Registry, read_registry, render
from packer.workspace import REGISTRY_FILE, Workspace

LOCK_FILE = "lane.lock"
HOLDER_FILE = "lane.holder"
DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "PACKER_LANE_TIMEOUT"


def _timeout_from_env() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


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
        try:
            with open(self.ws.registry_path, "rb") as handle:
                if handle.read() == text:
                    return False
        except FileNotFoundError:
            pass
        atomic_write(self.ws.registry_path, text)
        return True


class Lane:
    """The project-scoped write lane of one workspace."""

    def __init__(self, ws: Workspace, timeout: float | None = None) -> None:
        self.ws = ws
        self.timeout = _timeout_from_env() if timeout is None else timeout

    @contextmanager
    def hold(self) -> Iterator[LaneSession]:
        lock_path = self.ws.state_path(LOCK_FILE)
        holder_path = self.ws.state_path(HOLDER_FILE)
        lock = FileLock(lock_path, timeout=self.timeout)
        try:
            lock.acquire()
        except Timeout:
            raise LaneBusy(
                f"write lane busy for {self.timeout:g}s: held by {_read_holder(holder_path)}; "
                f"wait for it to finish, or set {TIMEOUT_ENV} to wait longer",
                self.ws.relpath(lock_path),
            ) from None
        try:
            # A writer killed between mkstemp and os.replace leaves its temp file; inside the
            # lock no other writer can own one, so any that remain are debris.
            remove_stale_temps(self.ws.root, REGISTRY_FILE, dead_writers_only=False)
            remove_stale_temps(self.ws.state_dir, HOLDER_FILE, dead_writers_only=False)
            atomic_write(holder_path, _holder_text(), durable=False)
            yield LaneSession(self.ws)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(holder_path)
            lock.release()


def _holder_text() -> bytes:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}
    return json.dumps(holder).encode()


def _read_holder(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            holder = json.loads(handle.read())
        return f"pid {holder['pid']} on {holder['host']} ({holder['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (no holder recorded)"
