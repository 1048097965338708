"""The stat cache: content hashes of files whose stat has not changed since they were hashed.

Keyed by workspace-relative path; an entry holds (size, mtime_ns, ctime_ns, inode, xxh3_128).
It never decides alone: ctime changes whenever a file's content or mtime is written (so a content
change with size and mtime put back is still seen), a file touched within ``RACY_NS`` of the
scan is never recorded (git's "racily clean" rule: a write in the same clock tick as the
recording could otherwise go unseen), and deleting the cache only costs hashing again. The cache
file is read through ``fsutil.read_regular``: a special, oversized or broken one is ignored.
Inputs are hashed through ``fsutil.open_regular``: one replaced by a FIFO or a device since the
scan statted it is refused, never read.
Imports: stdlib, packer.hashing, packer.fsutil, packer.errors.
"""

from __future__ import annotations

import marshal
import os
import time
from typing import NamedTuple

from packer.errors import InputError
from packer.fsutil import MIB, atomic_write, open_regular, read_regular
from packer.hashing import hash_stream

_VERSION = 2
RACY_NS = 2_000_000_000
CACHE_FILE_LIMIT = 256 * MIB
"""Cache files (this one, the decl cache) larger than this are ignored unread; 100,000 assets
need about 25 MiB."""

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

    def __init__(self, path: str, *, partial: bool = False) -> None:
        self.path = path
        self.partial = partial
        """A partial run (``packer watch``'s, which looks at a few files only) keeps the
        entries it did not use when it saves."""
        self._old = self._load(path)
        self._new: dict[str, _Entry] = {}
        self._racy_after = time.time_ns() - RACY_NS

    @staticmethod
    def _load(path: str) -> dict[str, _Entry]:
        try:
            version, entries = marshal.loads(read_regular(path, CACHE_FILE_LIMIT))
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return entries if version == _VERSION and isinstance(entries, dict) else {}

    def cached(self, rel: str, st: FileStat) -> str | None:
        """The recorded hash of ``rel`` if its stat is unchanged, else None."""
        entry = self._old.get(rel)
        # The type test keeps an entry not of packer's making (a hand-made cache) from being used.
        if type(entry) is tuple and len(entry) == 5 and entry[:4] == st and type(entry[4]) is str:
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
        """The hash of a file: from the cache when its stat is unchanged, else read and hashed.

        A file that cannot be read now (removed since it was statted, or replaced by a FIFO or
        a device, refused unopened) is an InputError naming it.
        """
        digest = self.cached(rel, st)
        if digest is None:
            try:
                with os.fdopen(open_regular(abspath), "rb") as handle:
                    digest = hash_stream(handle)
            except OSError as err:
                raise InputError(f"cannot read input: {err.strerror}", rel) from None
            self._keep(rel, st, digest)
        return digest

    def save(self) -> None:
        """Write the entries used or recorded in this run (files gone since are dropped), and
        in a partial run the others too."""
        entries = {**self._old, **self._new} if self.partial else self._new
        if entries != self._old:
            atomic_write(self.path, marshal.dumps((_VERSION, entries)), durable=False)
