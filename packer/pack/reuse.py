"""The previous pack's bytes reused: an entry whose artifact is as it was when it was packed is
copied from the previous pack instead of being read from its artifact (and, in a compressed
pack, compressed) again.

The record (a file the caller names, under ``.packer/``) lists, for each entry of the pack last
written, its source's path and stat key (size, mtime, ctime, inode; ``statcache.FileStat``)
taken before its data was read and checked, and where its stored bytes sit in that pack, with
their checksum. An entry is reused when its source's stat key is unchanged and the bytes at
the recorded place of the file now at the pack's path still have the recorded checksum, so
the record never decides alone:

- a source edited in place or replaced changes its stat key (ctime moves with every write,
  whatever mtime is put back), so it is read and checked again, and a damaged one is refused
  as before; a stat taken within ``RACY_NS`` of the source's last change is never recorded
  (git's "racily clean" rule: a write in the same clock tick could leave the key as it was);
- the previous pack is never trusted: what is copied from it is checked in the new file (each
  entry against its checksum, the alignment gaps against zeros), so a pack replaced, edited or
  torn since the record was written costs one more pass over the artifacts, never a wrong byte;
- the record names the layout it was written for (the pack format and, compressed, the codec's
  fingerprint): a pack of another format or codec reuses nothing.

Deleting the record costs one pack written from the artifacts alone.
Imports: stdlib, xxhash, packer.fsutil, packer.statcache.
"""

from __future__ import annotations

import marshal
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import xxhash

from packer.fsutil import MIB, atomic_write, open_regular, read_regular
from packer.statcache import CACHE_FILE_LIMIT, RACY_NS, FileStat

_VERSION = 1

# (source, size, mtime_ns, ctime_ns, inode, offset, stored size, stored xxh3_128, codec, raw_size)
_Placed = tuple[str, int, int, int, int, int, int, str, str, int]


@dataclass(frozen=True, slots=True)
class Reused:
    """Where an entry's stored bytes sit in the previous pack (the record says so; the copy
    is checked, ``PreviousPack.copy``)."""

    offset: int
    size: int
    xxh3_128: str
    codec: str
    raw_size: int
    source_stat: FileStat


class StaleRecord(Exception):
    """The previous pack's bytes are not the ones the record describes: write the pack again
    from the artifacts alone."""


class PreviousPack:
    """The previous pack, open for reading, as the record describes it."""

    def __init__(self, placed: dict[str, _Placed], fd: int) -> None:
        self._placed = placed
        self._fd = fd
        self._buffer = memoryview(bytearray(MIB))

    def find(self, asset_id: str, source: str) -> Reused | None:
        """Where the entry's stored bytes sit in the previous pack, when its source is
        unchanged since it was packed; None otherwise."""
        placed = self._placed.get(asset_id)
        if type(placed) is not tuple or len(placed) != 10 or placed[0] != source:
            return None
        _, size, mtime, ctime, ino, offset, stored, digest, codec, raw_size = placed
        try:
            source_stat = FileStat.of(os.stat(source))
        except OSError:
            return None
        if source_stat != (size, mtime, ctime, ino):
            return None
        return Reused(offset, stored, digest, codec, raw_size, source_stat)

    def copy(
        self, start: int, end: int, out: int, at: int, placed: list[tuple[int, Reused]]
    ) -> None:
        """Copy the previous pack's bytes ``start:end`` to ``out`` at ``at`` inside the kernel
        (``os.copy_file_range``: a reflink where the file system shares blocks), then check
        what landed there: each of ``placed`` (its new offset, its entry) against its checksum,
        the gaps between them against zeros. Checking the copy, not the source, leaves no
        moment at which the previous pack could change unseen. ``StaleRecord`` on a mismatch.
        """
        done = 0
        while done < end - start:
            try:
                count = os.copy_file_range(
                    self._fd, out, end - start - done, start + done, at + done
                )
            except OSError:  # a kernel or file system without it: copy through a buffer
                count = self._copy_through(
                    start + done, min(end, start + done + MIB), out, at + done
                )
            if count == 0:
                raise StaleRecord  # the previous pack is shorter than the record says
            done += count
        landed = _Landed(out, at, at + end - start, self._buffer)
        position = at
        for offset, reused in placed:
            if not landed.zeros(offset - position):
                raise StaleRecord
            if landed.digest(reused.size) != reused.xxh3_128:
                raise StaleRecord
            position = offset + reused.size
        if not landed.zeros(at + end - start - position):
            raise StaleRecord

    def _copy_through(self, start: int, end: int, out: int, at: int) -> int:
        count = os.preadv(self._fd, [self._buffer[: end - start]], start)
        return os.pwrite(out, self._buffer[:count], at) if count else 0


class _Landed:
    """The bytes a run copied, read back in order, a buffer at a time (one read per MiB, not
    one per entry)."""

    def __init__(self, fd: int, start: int, end: int, buffer: memoryview) -> None:
        self._fd = fd
        self._next = start
        self._end = end
        self._buffer = buffer
        self._chunk = buffer[:0]

    def _pieces(self, size: int) -> Iterator[memoryview]:
        while size:
            if not self._chunk:
                wanted = min(len(self._buffer), self._end - self._next)
                count = os.preadv(self._fd, [self._buffer[:wanted]], self._next) if wanted else 0
                if count == 0:
                    raise StaleRecord  # the copy came out short
                self._next += count
                self._chunk = self._buffer[:count]
            piece = self._chunk[:size]
            self._chunk = self._chunk[len(piece) :]
            size -= len(piece)
            yield piece

    def digest(self, size: int) -> str:
        hasher = xxhash.xxh3_128()
        for piece in self._pieces(size):
            hasher.update(piece)
        return hasher.hexdigest()

    def zeros(self, size: int) -> bool:
        """Whether the next ``size`` bytes (an alignment gap, under 16) are all zero."""
        return all([not any(piece) for piece in self._pieces(size)])


@contextmanager
def previous_pack(
    record_path: str | None, pack_path: str, layout: str
) -> Iterator[PreviousPack | None]:
    """The previous pack at ``pack_path`` with the record at ``record_path``, for a pack of
    ``layout``; None (reuse nothing) without a record, with one for another layout, or
    without a pack."""
    placed = _load(record_path, layout) if record_path is not None else None
    if not placed:
        yield None
        return
    try:
        fd = open_regular(pack_path)
    except OSError:
        yield None
        return
    try:
        yield PreviousPack(placed, fd)
    finally:
        os.close(fd)


def _load(path: str, layout: str) -> dict[str, _Placed] | None:
    try:
        version, recorded_layout, placed = marshal.loads(read_regular(path, CACHE_FILE_LIMIT))
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if version != _VERSION or recorded_layout != layout or not isinstance(placed, dict):
        return None
    return placed


class PackRecord:
    """What the pack being written holds, for the next writer's ``previous_pack``."""

    def __init__(self) -> None:
        self._placed: dict[str, _Placed] = {}
        self._racy_after = time.time_ns() - RACY_NS
        self.reused = 0
        """Entries copied from the previous pack."""

    def add(
        self,
        asset_id: str,
        source: str,
        source_stat: FileStat,
        offset: int,
        size: int,
        xxh3_128: str,
        codec: str,
        raw_size: int,
    ) -> None:
        """Record an entry whose source had ``source_stat`` before its data was read (or
        reused); a stat too close to the source's last change is left out."""
        if source_stat.mtime_ns < self._racy_after and source_stat.ctime_ns < self._racy_after:
            self._placed[asset_id] = (
                source,
                *source_stat,
                offset,
                size,
                xxh3_128,
                codec,
                raw_size,
            )

    def save(self, path: str, layout: str) -> None:
        atomic_write(path, marshal.dumps((_VERSION, layout, self._placed)), durable=False)


def layout_name(version: int, codec_fingerprint: str | None) -> str:
    """The record's name for a pack's layout: its format and its codec's fingerprint."""
    return f"format {version}" + ("" if codec_fingerprint is None else f", {codec_fingerprint}")


__all__ = ["PackRecord", "PreviousPack", "Reused", "StaleRecord", "layout_name", "previous_pack"]
