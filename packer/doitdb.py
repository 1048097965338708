"""doit's record of a workspace (``.packer/doit.json``): how it is stored.

Who may open it is the build lock's business (``packer.lane``): doit reads its record when a
command starts and rewrites it when the command ends, so builds of one workspace serialize.

The record is a cache of which task keys last succeeded, never an authority, so the backend
``RecordDB`` (doit backend ``packer-json``, an entry point in the ``doit.BACKEND`` group) treats a
missing, torn, invalid or special file as an empty record, which costs a rebuild of what it
forgot and never a failure, and replaces the file atomically, only when it changed.
doit imports every ``doit.BACKEND`` entry point when it starts, in every project on the
machine, so this module stays light: stdlib, doit, packer.errors and packer.fsutil only.
Imports: stdlib, doit, packer.errors, packer.fsutil.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from doit.dependency import JSONCodec, JsonDB

from packer.errors import shown
from packer.fsutil import atomic_write, open_regular, remove_stale_temps

VALUES = "_values_:"
"""Where doit keeps a task's saved values in its record (doit.dependency.Dependency)."""
BACKEND = "packer-json"
"""The name doit knows ``RecordDB`` by (pyproject.toml: the ``doit.BACKEND`` entry points)."""


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


def save_values(path: str, values: Mapping[str, Mapping[str, Any]]) -> None:
    """Record each task as having succeeded with these values, as doit's ``save_success`` does
    for a task without file_dep (its values are all its up-to-date check reads). For tasks
    whose outputs packer put in place without running them (fetched from a remote cache)."""
    record = RecordDB(path, JSONCodec())
    for task, task_values in values.items():
        record.set(task, VALUES, dict(task_values))
    record.dump()


__all__ = ["BACKEND", "VALUES", "RecordDB", "save_values"]
