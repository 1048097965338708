"""``packer build``'s reporter: a live count on a terminal, what ran when piped, one summary line.

Plain ``doit`` keeps doit's own reporter (SPEC §4); ``packer build`` hands doit an instance of
``BuildReporter`` instead. On a terminal it rewrites one status line (done/total, the asset
being built, the rate), at most every ``REFRESH_S``, and ends with the summary, such as
``built 12, from cache 3, up to date 9,985 in 1.2 s``. Not on a terminal it prints doit's line
``.  NAME`` for each task that ran (with the asset_name), never the ``-- NAME`` of the up-to-date
ones, and the same summary.

How an asset task ended comes from its action's return value, which doit keeps as the task's
values (it travels back from ``doit -n N`` workers too): ``{"outcome": OUTCOME}``, where
OUTCOME is ``built`` (the kind ran), ``cache_local`` or ``cache_remote`` (the local cache served
an output that this build fetched from the remote, ``packer.cache.remote``). Uploads happen
after doit, so the build counts them itself (``UPLOADED``) before the summary. A task
that failed as packer's actions fail (``TaskFailed``: a bad input, a full disk) is one ``error:
PATH: message`` line on stderr, as every other packer command reports; any other failure keeps
doit's full report.
Imports: stdlib, doit, packer.errors.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Any, TextIO

from doit.exceptions import TaskFailed, UnmetDependency
from doit.reporter import ConsoleReporter

from packer.errors import shown

OUTCOME = "outcome"
"""The key of an asset task's values that says how it ended."""
BUILT = "built"
CACHE_LOCAL = "cache_local"
CACHE_REMOTE = "cache_remote"
UP_TO_DATE = "up_to_date"
FAILED = "failed"
UPLOADED = "uploaded"
SUMMARY_ORDER = (
    (BUILT, "built"),
    (CACHE_LOCAL, "from cache"),
    (CACHE_REMOTE, "from remote cache"),
    (UP_TO_DATE, "up to date"),
    (FAILED, "failed"),
    (UPLOADED, "uploaded"),
)
"""The summary's counts, in order, with their words; a count of zero is left out."""
PACK_TASK = "pack"
"""The pack task's name in ``packer build``'s graph (no prefix there)."""
REFRESH_S = 0.1
"""The live line is redrawn at most this often: a terminal is slow at 10,000 lines a second."""


def asset_outcome(*, built: bool, fetched: bool = False) -> dict[str, Any]:
    """What an asset task's action returns on success (doit keeps it as the task's values);
    ``fetched``: the local cache's entry came from the remote in this build."""
    return {OUTCOME: BUILT if built else CACHE_REMOTE if fetched else CACHE_LOCAL}


def summary(counts: Mapping[str, int], seconds: float, *, places: int = 1) -> str:
    """``built 12, from cache 3, up to date 9,985 in 1.2 s`` (``places`` digits of seconds)."""
    parts = [f"{words} {counts[key]:,}" for key, words in SUMMARY_ORDER if counts.get(key)]
    return f"{', '.join(parts) or 'nothing to build'} in {seconds:.{places}f} s"


def summary_json(counts: Mapping[str, int], *, ok: bool, pack: str | None) -> dict[str, Any]:
    """``packer build --json``'s object (SPEC §7, docs/cli.md): ``processed`` is kinds run."""
    return {
        "ok": ok,
        "pack": pack,
        "processed": counts.get(BUILT, 0),
        CACHE_LOCAL: counts.get(CACHE_LOCAL, 0),
        CACHE_REMOTE: counts.get(CACHE_REMOTE, 0),
        UPLOADED: counts.get(UPLOADED, 0),
        UP_TO_DATE: counts.get(UP_TO_DATE, 0),
        FAILED: counts.get(FAILED, 0),
    }


class BuildReporter(ConsoleReporter):  # type: ignore[misc]  # doit ships no types
    """doit reporter of ``packer build``. ``asset_names`` maps each asset task's name to its
    asset_name (other tasks, the pack, count in done/total but not in the summary); ``started``
    is the build's start on ``time.monotonic``'s clock; ``live`` draws the status line (a
    terminal) instead of printing what ran; ``deferred`` leaves the summary to the caller
    (``write_summary``), which has work after doit (uploads) to count in it; ``unchanged``
    asset tasks were left out of doit's graph as known up to date, and count so."""

    desc = "packer build's progress: a live count on a terminal, else what ran; one summary"

    def __init__(
        self,
        outstream: TextIO,
        asset_names: Mapping[str, str],
        *,
        started: float,
        live: bool,
        deferred: bool = False,
        fetched: Collection[str] = (),
        unchanged: int = 0,
    ) -> None:
        super().__init__(outstream, {})
        self.asset_names = asset_names
        self.started = started
        self.live = live
        self.deferred = deferred
        self.fetched = fetched
        """Asset tasks whose output the build fetched from the remote and recorded as done:
        doit finds them up to date, and they count as ``cache_remote``."""
        self.on_built: Callable[[str], None] | None = None
        """Called with an asset task's name as soon as its kind has run (to upload it)."""
        self.counts: Counter[str] = Counter({UP_TO_DATE: unchanged} if unchanged else {})
        self.pack_done = False
        """The pack task succeeded or was up to date."""
        self.errors: list[str] = []
        """The text of each ``error:`` line printed for a failed task."""
        self.total = 0
        self.done = 0
        self.current = ""
        self._drawn_at = 0.0
        self._line_shown = False

    def initialize(self, tasks: Mapping[str, Any], selected_tasks: Any) -> None:
        self.total = len(tasks)

    def execute_task(self, task: Any) -> None:
        name = self.asset_names.get(task.name)
        if self.live:
            self.current = task.name if name is None else name
            self._draw()
        elif task.actions:
            self.write(shown(f".  {task.name}" + ("" if name is None else f"  {name}")) + "\n")

    def add_success(self, task: Any) -> None:
        if task.name in self.asset_names:
            outcome = task.values.get(OUTCOME, BUILT)
            self.counts[outcome] += 1
            if outcome == BUILT and self.on_built is not None:
                self.on_built(task.name)
        self.pack_done = self.pack_done or task.name == PACK_TASK
        self._finished()

    def skip_uptodate(self, task: Any) -> None:
        if task.name in self.asset_names:
            self.counts[CACHE_REMOTE if task.name in self.fetched else UP_TO_DATE] += 1
        self.pack_done = self.pack_done or task.name == PACK_TASK
        self._finished()

    def skip_ignore(self, task: Any) -> None:
        self._finished()

    def add_failure(self, task: Any, fail: Any) -> None:
        self._clear()
        if task.name in self.asset_names:
            self.counts[FAILED] += 1
        if isinstance(fail, TaskFailed):
            self.errors.append(fail.message)
            sys.stderr.write(f"error: {fail.message}\n")
        elif not isinstance(fail, UnmetDependency):  # those add nothing to the error line
            super().add_failure(task, fail)
        self._finished()

    def complete_run(self) -> None:
        self._clear()
        super().complete_run()
        if not self.deferred:
            self.write_summary()

    def write_summary(self) -> None:
        self.write(summary(self.counts, time.monotonic() - self.started) + "\n")

    def _finished(self) -> None:
        self.done += 1
        if self.live:
            self._draw()

    def _draw(self) -> None:
        now = time.monotonic()
        if now - self._drawn_at < REFRESH_S and self.done < self.total:
            return
        self._drawn_at = now
        rate = self.done / max(now - self.started, 1e-3)
        line = shown(f"[{self.done:,}/{self.total:,}] {self.current}  {rate:,.0f}/s")
        width = shutil.get_terminal_size().columns - 1
        self.write("\r\x1b[K" + line[:width])
        self.outstream.flush()
        self._line_shown = True

    def _clear(self) -> None:
        if self._line_shown:
            self.write("\r\x1b[K")
            self.outstream.flush()
            self._line_shown = False


__all__ = ["BuildReporter", "asset_outcome", "summary", "summary_json"]
