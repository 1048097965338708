"""The stat cache: content hashes of files whose stat has not changed since they were hashed.

Keyed by workspace-relative path; an entry holds (size, mtime_ns, ctime_ns, inode, xxh3_128).
It never decides alone: ctime changes whenever a file's content or mtime is written (so a content
change with size and mtime put back is still seen), a file touched within ``RACY_NS`` of the
scan is never recorded (git's "racily clean" rule: a write in the same clock tick as the
recording could otherwise go unseen), and deleting the cache only costs hashing again.
Imports: stdlib, packer.hashing, packer.fsutil.
"""

from __future__ import annotations

import marshal
import os
import time
from typing import NamedTuple

from packer.fsutil import atomic_write
from packer.hashing import hash_file

_VERSION = 2
RACY_NS = 2_000_000_000

_Entry = tuple[int, int, int, int, str]


class FileStat(NamedTuple):
    """What the stat cache compares: a change in any of these means "hash again".

    A named tuple, not a dataclass: one is made per file on every run, so it must be cheap.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StatCache:
    """One run's view of the stat cache: look hashes up, record new ones, save once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._old = self._load(path)
        self._new: dict[str, _Entry] = {}
        self._racy_after = time.time_ns() - RACY_NS

    @staticmethod
    def _load(path: str) -> dict[str, _Entry]:
        try:
            with open(path, "rb") as handle:
                version, entries = marshal.load(handle)
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return entries if version == _VERSION and isinstance(entries, dict) else {}

    def cached(self, rel: str, st: FileStat) -> str | None:
        """The recorded hash of ``rel`` if its stat is unchanged, else None."""
        entry = self._old.get(rel)
        if entry is not None and entry[:4] == st:
            self._keep(rel, st, entry[4])
            return entry[4]
        return None

    def record(self, rel: str, st: FileStat, digest: str) -> None:
        """Remember that ``rel`` with stat ``st`` hashed to ``digest``."""
        self._keep(rel, st, digest)

    def _keep(self, rel: str, st: FileStat, digest: str) -> None:
        if st.mtime_ns < self._racy_after and st.ctime_ns < self._racy_after:
            self._new[rel] = (*st, digest)

    def hash(self, rel: str, abspath: str, st: FileStat) -> str:
        """The hash of a file: from the cache when its stat is unchanged, else read and hashed."""
        digest = self.cached(rel, st)
        if digest is None:
            digest = hash_file(abspath)
            self._keep(rel, st, digest)
        return digest

    def save(self) -> None:
        """Write the entries used or recorded in this run (files gone since are dropped)."""
        if self._new != self._old:
            atomic_write(self.path, marshal.dumps((_VERSION, self._new)), durable=False)
