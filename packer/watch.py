"""``packer watch``: build once, then rebuild after every change the file system reports.

The watcher (``watchfiles``: inotify, FSEvents or ReadDirectoryChangesW, through a Rust thread
that collects changes while a build runs) watches the workspace folder. Its change set alone
decides whether to rebuild and names what changed: a change counts when it is under an asset
root (not in the output or state folder, not a VCS folder, not an editor's temp file) or is
packer.toml or registry.json. A registry.json whose text is the one the last build read is
that build's own sync (or no change at all), so packer's own writes never start a rebuild.
Changes within ``QUIET_MS`` of each other are built together, and what arrives during a build
is built right after it.

Each build is ``packer build``'s (``packer.doit.build_workspace``): the build lock, the same
snapshot, tasks, doit record and pack commit, so a ``doit`` afterwards has nothing to do and no
pack is ever torn. The plan of the last build that succeeded is kept: the next build leaves the
asset tasks unchanged since out of doit's graph (``build_workspace``'s ``since``).
Each build prints one line on stdout (``--json``: one JSON object), or its
``error:`` lines on stderr. SIGINT or SIGTERM ends the watch with exit 0 once the build under
way (if any) has finished; a second signal abandons it, which is safe as a kill is: the pack
and manifest are committed as a pair.
Imports: stdlib, watchfiles (only here, so no other command imports it), packer.api,
packer.doit, packer.plan, packer.progress, packer.registry, packer.workspace, packer.errors.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO

from packer.api import ScanMemory
from packer.doit import BuildOutcome, build_workspace
from packer.errors import PackerError, shown
from packer.plan import BuildPlan
from packer.progress import summary, summary_json
from packer.registry import read_registry_hash
from packer.workspace import CONFIG_FILE, REGISTRY_FILE, Workspace, open_workspace

QUIET_MS = 50
"""A change set is built once no new change has come for this long."""
LONGEST_GROUP_MS = 1_600
"""Changes that keep coming (a branch switch) are built in groups at most this long."""
WAKE_MS = 250
"""The watcher answers at least this often, changes or not (to start, and to see a stop)."""
_VCS_FOLDERS = frozenset({".git", ".hg", ".svn"})
_EDITOR_TEMP = re.compile(
    r"\.sw[a-p]$"  # vim's swap files
    r"|~$"  # backups (vim, emacs, many others)
    r"|^\.#"  # emacs's lock links
    r"|^#.*#$"  # emacs's autosaves
    r"|^4913$"  # vim's probe that it may write the folder
    r"|\.___jb_\w+___$"  # JetBrains' safe-write copies
)
_LISTED = 3
"""Up to this many changed files are named in a rebuild's line; more are counted."""


@dataclass(frozen=True)
class _Scope:
    """Which changed paths can change a build, for one state of packer.toml. Paths are under
    the real path of the root, as the watcher reports them."""

    root: str
    top_files: frozenset[str]
    roots: tuple[str, ...]
    skipped: tuple[str, ...]

    @classmethod
    def of(cls, ws: Workspace, root: str) -> _Scope:
        def real(path: str) -> str:
            return os.path.normpath(os.path.join(root, os.path.relpath(path, ws.root)))

        return cls(
            root,
            frozenset(os.path.join(root, name) for name in (CONFIG_FILE, REGISTRY_FILE)),
            tuple(real(ws.abspath(rel)) for rel in ws.asset_roots),
            (real(ws.out_dir), real(ws.state_dir)),
        )

    def counts(self, path: str) -> bool:
        if path in self.top_files:
            return True
        if not any(_within(path, folder) for folder in self.roots):
            return False
        if any(_within(path, folder) for folder in self.skipped):
            return False
        rel = os.path.relpath(path, self.root).split(os.sep)
        return not _VCS_FOLDERS.intersection(rel[:-1]) and not _EDITOR_TEMP.search(rel[-1])


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


class _Stop:
    """The SIGINT and SIGTERM handler: the first signal asks the watch to end after the build
    under way; a second one during a build abandons it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.building = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set() and self.building:
            raise KeyboardInterrupt
        self.event.set()


@dataclass
class _Watch:
    root: str
    """The workspace root, as the watcher reports paths under it."""
    ws: Workspace
    frozen: bool
    json_lines: bool
    out: TextIO
    sink: TextIO
    """Where the build's own reporter writes (nowhere: the watch prints one line per build)."""
    registry_hash: str | None = None
    """The registry text the last build read (after its own sync); None before one did."""
    memory: ScanMemory = field(default_factory=ScanMemory)
    """The last snapshot and its scan, and what changed since: a build rescans only that."""
    last_plan: BuildPlan | None = None
    """The plan of the last build that succeeded in full: the next build leaves the tasks
    unchanged since out of doit's graph (``build_workspace``'s ``since``)."""

    def changed(self, changes: Iterable[tuple[Any, str]]) -> list[str]:
        """The workspace-relative paths in a change set that can change the build."""
        scope = _Scope.of(self.ws, self.root)
        state = self.memory.state
        paths = {
            path
            for _, path in changes
            if scope.counts(path) or (state is not None and state.reads(self._rel(path)))
        }
        registry = os.path.join(self.root, REGISTRY_FILE)
        if registry in paths and self._registry_unchanged():
            paths.discard(registry)
        return sorted(self._rel(p) for p in paths)

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def _tell(self, changed: Sequence[str]) -> None:
        """Add ``changed`` to what the next snapshot rescans; packer.toml or a registry.json
        that another process wrote makes it scan in full (``api.ScanMemory``)."""
        if self.memory.changed is None or {CONFIG_FILE, REGISTRY_FILE} & set(changed):
            self.memory.changed = None
        else:
            self.memory.changed = (*self.memory.changed, *changed)

    def _registry_unchanged(self) -> bool:
        try:
            return read_registry_hash(self.ws.registry_path) == self.registry_hash
        except PackerError:
            return False  # unreadable now: let the build say why

    def build(self, changed: Sequence[str]) -> None:
        started = time.monotonic()
        outcome: BuildOutcome | None = None
        identity: list[str] = []
        self._tell(changed)
        try:
            self.ws = open_workspace(self.ws.root, search_up=False)  # packer.toml may change
            outcome = build_workspace(
                self.ws,
                (),
                frozen=self.frozen,
                out=self.sink,
                since=self.last_plan,
                memory=self.memory,
                on_change=identity.append,
            )
        except PackerError as err:
            errors: tuple[str, ...] = (str(err),)
            sys.stderr.write(f"error: {err}\n")
        else:
            self.registry_hash = outcome.registry_hash
            if outcome.plan is not None:
                self.last_plan = outcome.plan
            errors = outcome.errors
            if outcome.code != 0 and not errors:
                errors = ("the build failed; `packer build` shows doit's report",)
                sys.stderr.write(f"error: {errors[0]}\n")
        sys.stderr.flush()
        self._report(changed, identity, outcome, errors, time.monotonic() - started)

    def _report(
        self,
        changed: Sequence[str],
        identity: Sequence[str],
        outcome: BuildOutcome | None,
        errors: tuple[str, ...],
        seconds: float,
    ) -> None:
        counts = outcome.counts if outcome is not None else {}
        if self.json_lines:
            ok = outcome is not None and outcome.code == 0
            line = {
                "changed": list(changed),
                "identity_lines": list(identity),
                **summary_json(counts, ok=ok, pack=self.ws.pack_path if ok else None),
                "error_lines": list(errors),
                "seconds": round(seconds, 3),
            }
            self.out.write(json.dumps(line) + "\n")
        else:
            # What the build's sync registered, moved, renamed or retired, before its line.
            for said in identity:
                self.out.write(shown(said) + "\n")
            if not errors:
                what = _what_changed(changed) if changed else "first build"
                self.out.write(shown(f"{what}: {summary(counts, seconds, places=2)}") + "\n")
        self.out.flush()


def _what_changed(changed: Sequence[str]) -> str:
    if len(changed) > _LISTED:
        return f"{len(changed):,} files"
    return ", ".join(path.rpartition("/")[2] for path in changed)


def watch(ws: Workspace, *, frozen: bool, json_lines: bool, out: TextIO | None = None) -> int:
    """Build ``ws``, then rebuild after every change that can change the build, until SIGINT or
    SIGTERM (exit 0)."""
    try:
        from watchfiles import watch as watch_changes
    except ImportError:
        raise PackerError(
            "packer watch needs watchfiles; install it with: pip install 'packer[watch]'"
        ) from None

    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = os.path.realpath(ws.root)
    try:
        with open(os.devnull, "w", encoding="utf-8") as sink:
            session = _Watch(root, ws, frozen, json_lines, sys.stdout if out is None else out, sink)
            change_sets: Iterator[set[tuple[Any, str]]] = watch_changes(
                root,
                watch_filter=None,
                debounce=LONGEST_GROUP_MS,
                step=QUIET_MS,
                stop_event=stop.event,
                rust_timeout=WAKE_MS,
                yield_on_timeout=True,
                raise_interrupt=False,
            )
            # The first answer comes once the watcher is in place: from then on nothing is
            # missed, and what changes during the first build is built after it.
            if next(change_sets, None) is None:
                return 0
            pending: Sequence[str] = ()
            while True:
                stop.building = True
                try:
                    session.build(pending)
                except KeyboardInterrupt:
                    return 0  # a second signal: abandoned, as a kill would
                finally:
                    stop.building = False
                pending = ()
                while not pending:
                    changes = next(change_sets, None)
                    if changes is None or stop.event.is_set():
                        return 0
                    pending = session.changed(changes)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["watch"]
