"""doit's record of a workspace (``.packer/doit.json``): who may open it, and how it is stored.

doit reads its record when a command starts and rewrites it when the command ends, so two builds
of one workspace at once would read each other's half-written file and lose each other's
results. Every process that builds a workspace therefore holds the workspace's build lock
(``packer.lane.build_lock``) from before doit opens the record until it has written it back:
``hold_until_exit`` for a dodo.py (doit opens the record after importing it, and writes it just
before the process ends), ``holding`` for ``packer build``.

The record is a cache of which task keys last succeeded, never an authority, so the backend
``RecordDB`` (doit backend ``packer-json``, an entry point in the ``doit.BACKEND`` group) treats a
missing, torn, invalid or special file as an empty record, which costs a rebuild of what it
forgot and never a failure, and replaces the file atomically, only when it changed.
Imports: stdlib, doit, packer.errors, packer.fsutil, packer.lane, packer.workspace.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from doit.dependency import JsonDB

from packer.errors import shown
from packer.fsutil import atomic_write, open_regular, remove_stale_temps
from packer.lane import build_lock
from packer.workspace import Workspace

BACKEND = "packer-json"
"""The name doit knows ``RecordDB`` by (pyproject.toml: the ``doit.BACKEND`` entry points)."""

_HELD: dict[str, object] = {}
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


def _key(ws: Workspace) -> str:
    return os.path.realpath(ws.state_dir)


def hold_until_exit(ws: Workspace) -> None:
    """Take ``ws``'s build lock unless this process holds it already, and keep it: the kernel
    drops it when the process ends, after doit has written its record back."""
    key = _key(ws)
    if key not in _HELD:
        _HELD[key] = build_lock(ws, on_wait=_say_waiting(ws))


@contextmanager
def holding(ws: Workspace) -> Iterator[None]:
    """Hold ``ws``'s build lock for the block (``packer build``, which may run again in the same
    process under ``packer watch``); nothing to take if this process holds it already."""
    key = _key(ws)
    if key in _HELD:
        yield
        return
    lock = build_lock(ws, on_wait=_say_waiting(ws))
    _HELD[key] = lock
    try:
        yield
    finally:
        del _HELD[key]
        lock.release()


class RecordDB(JsonDB):  # type: ignore[misc]  # doit ships no type information
    """doit's JSON backend, made safe for a cache: a damaged record reads as empty, and a new
    one replaces the old atomically, only when something changed (a no-op build writes
    nothing, which at 10,000 tasks also spares encoding a few MB of JSON)."""

    desc = "JSON file, replaced atomically; a damaged one is an empty record"

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        self.name = name
        self.codec = codec
        self._db: dict[str, dict[str, Any]] = self._load()
        self._changed = False

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            fd = open_regular(self.name)
        except OSError:  # missing, a FIFO, a device, a folder: nothing remembered
            return {}
        try:
            with os.fdopen(fd, "rb") as handle:
                record = self.codec.decode(handle.read().decode("utf-8"))
        except (OSError, ValueError):  # unreadable, torn or not JSON (UnicodeError is a ValueError)
            return {}
        if not (isinstance(record, dict) and all(isinstance(v, dict) for v in record.values())):
            return {}
        return record

    def dump(self) -> None:
        if not self._changed:
            return
        folder, name = os.path.split(self.name)
        remove_stale_temps(folder or ".", name)
        try:
            atomic_write(self.name, self.codec.encode(self._db).encode("utf-8"), durable=False)
        except OSError as err:
            # doit writes its record after the build's outputs: they are whole, and losing the
            # record only makes the tasks that ran now run again (from the output cache). A
            # raise here would end doit in a traceback; the old record stays as it was.
            where = os.path.relpath(self.name)
            sys.stderr.write(
                shown(
                    f"packer: warning: {where}: doit's record not saved ({err.strerror}); "
                    "the tasks built now will run again next time"
                )
                + "\n"
            )
            return
        self._changed = False

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        entry = self._db.setdefault(task_id, {})
        if dependency not in entry or entry[dependency] != value:
            entry[dependency] = value
            self._changed = True

    def remove(self, task_id: str) -> None:
        if self._db.pop(task_id, None) is not None:
            self._changed = True

    def remove_all(self) -> None:
        if self._db:
            self._db = {}
            self._changed = True


__all__ = ["BACKEND", "RecordDB", "hold_until_exit", "holding"]
