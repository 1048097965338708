"""Reading a pack: ``PackReader`` (memory-mapped lookups) and ``PackFile`` (``pread``).

This is the path a game-side tool or a runtime loader imports, so it stays light: the standard
library, xxhash, and the pack's ``format``. Writing, the pair's commit and verifying live in
their own modules, imported only by those who use them; zstandard loads on the first zstd
entry read (``codec``).
Imports: stdlib, xxhash, packer.errors, packer.fsutil, packer.pack.codec, packer.pack.format.
"""

from __future__ import annotations

import mmap
import os
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

import xxhash

from packer.errors import PackError
from packer.fsutil import MIB, open_regular
from packer.pack.codec import CODEC_ZSTD, Decoder
from packer.pack.format import HEADER_SIZE, IndexEntry, decode_header, decode_index


class EntryNotFound(PackError, KeyError):
    """The pack has no entry with the asset_id (or asset_name) asked for.

    A ``PackError``, so one ``except PackError`` catches every fault of a pack, and a
    ``KeyError``, as the absent key of a lookup always was. ``key`` is what was looked up;
    ``str()`` is packer's one line (``PATH: message``), not KeyError's quoted key.
    """

    def __init__(self, path: str, field: str, key: str) -> None:
        super().__init__(f"no entry has {field} {key!r}", path)
        self.key = key


class _ClosedOnExit(ABC):
    """``with`` support for the pack's handles: leaving the block calls ``close``."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class PackFile(_ClosedOnExit):
    """An open pack read with ``os.pread``: a file truncated under the reader gives a short
    read, which is a ``PackError``, where touching a mapped page past the end is SIGBUS.

    Attributes: ``path`` (as given), ``fd`` (-1 once closed), ``size`` (bytes when opened),
    ``format_version`` (the header's, once ``read_index`` has read it; 0 before).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = open_regular(path)  # a FIFO or device is refused without blocking
        except OSError as err:
            raise PackError(f"cannot open the pack: {err.strerror or err}", path) from err
        self.size = os.fstat(self.fd).st_size
        self.format_version = 0

    def read_into(self, buffer: memoryview, offset: int) -> None:
        """Fill ``buffer`` from ``offset``; a file now shorter than that is truncated."""
        done = 0
        while done < len(buffer):
            try:
                count = os.preadv(self.fd, [buffer[done:]], offset + done)
            except OSError as err:
                raise PackError(f"cannot read the pack: {err.strerror or err}", self.path) from err
            if not count:
                raise PackError(
                    f"truncated: the file ends at byte {offset + done} while reading up to "
                    f"byte {offset + len(buffer)}",
                    self.path,
                )
            done += count

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``; callers bound ``size`` by the file's size first."""
        buffer = bytearray(size)
        self.read_into(memoryview(buffer), offset)
        return bytes(buffer)

    def digest(self, start: int, end: int) -> bytes:
        """xxh3_128 of a range, read in 1 MiB chunks (blobs may be gigabytes)."""
        hasher = xxhash.xxh3_128()
        with memoryview(bytearray(min(MIB, end - start))) as buffer:
            for offset in range(start, end, len(buffer) or 1):
                with buffer[: min(len(buffer), end - offset)] as part:
                    self.read_into(part, offset)
                    hasher.update(part)
        return hasher.digest()

    def read_index(self) -> tuple[IndexEntry, ...]:
        """Check the header and the index (format.md §1) and return the entries in pack order.

        Every size is checked against the file's size before it is read, so a header field
        never drives an allocation; the blobs are not read.
        """
        if self.size < HEADER_SIZE:
            raise PackError(
                f"truncated: {self.size} bytes, a pack header needs {HEADER_SIZE}", self.path
            )
        header = decode_header(self.read(0, HEADER_SIZE), self.size, self.path)
        index = self.read(header.index_offset, header.index_size)
        if xxhash.xxh3_128_digest(index) != header.index_checksum:
            raise PackError("index is damaged (checksum mismatch)", self.path)
        entries = decode_index(index, header, self.path)
        self.format_version = header.version
        return entries

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class PackReader(_ClosedOnExit):
    """A pack opened read-only: lookups by id or name, checked on every read.

    Opening checks the header and the index (magic, version, checksums, order, layout) with
    ``pread``, but not the blobs, so opening a large pack stays cheap; each blob is checked when
    it is read, and ``verify_pack`` checks them all. Blobs are read from a memory map. A
    compressed entry (format 2) is checked as stored, then decoded and checked again (its
    frame's size and content checksum): ``get`` always returns the original bytes.

    **SIGBUS**: a file truncated in place while a reader has it mapped makes the kernel kill the
    process with SIGBUS when a page past the new end is touched. packer never truncates a pack
    (it replaces one by rename, and a reader keeps reading the file it opened), so only another
    program can. ``get`` checks the file's current size before touching the map, so a pack that
    is already truncated raises ``PackError``; only a truncation racing a ``get`` in progress can
    still end in SIGBUS. Code that must survive that reads with ``verify_pack``'s ``pread``.

    Attributes: ``path`` (as given), ``size`` (bytes when opened), ``format_version`` (1 or
    2), ``entries`` (IndexEntry tuple in pack order) and ``asset_ids`` (the same order: sorted
    by the UTF-8 bytes of the id).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = PackFile(path)
        try:
            self.size = self._file.size
            self.entries = self._file.read_index()
            try:
                self._view = mmap.mmap(self._file.fd, self.size, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as err:  # ValueError: now shorter than it was
                raise PackError(f"cannot map the pack: {err}", path) from err
        except BaseException:
            self._file.close()
            raise
        self.format_version = self._file.format_version
        self._decoder = Decoder(path)
        self.asset_ids = tuple(entry.asset_id for entry in self.entries)
        self._by_id = {entry.asset_id: entry for entry in self.entries}
        self._by_name = {entry.asset_name: entry for entry in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._by_id

    def get(self, asset_id: str) -> bytes:
        """The bytes of ``asset_id``, checked against the index; ``EntryNotFound`` when absent."""
        entry = self._by_id.get(asset_id)
        if entry is None:
            raise EntryNotFound(self.path, "asset_id", asset_id)
        return self._read(entry)

    def get_by_name(self, asset_name: str) -> bytes:
        """The bytes of the entry named ``asset_name``, checked; ``EntryNotFound`` when absent."""
        entry = self._by_name.get(asset_name)
        if entry is None:
            raise EntryNotFound(self.path, "asset_name", asset_name)
        return self._read(entry)

    def _read(self, entry: IndexEntry) -> bytes:
        if self._file.fd < 0:
            raise ValueError("the pack reader is closed")
        end = entry.offset + entry.size
        current = os.fstat(self._file.fd).st_size
        if current < end:  # touching the map past the end would be SIGBUS
            raise PackError(
                f"truncated to {current} bytes since it was opened (the entry ends at {end})",
                self.path,
                entry.asset_id,
            )
        data = self._view[entry.offset : end]
        if xxhash.xxh3_128_hexdigest(data) != entry.xxh3_128:
            raise PackError("data is damaged (checksum mismatch)", self.path, entry.asset_id)
        if entry.codec == CODEC_ZSTD:
            return self._decoder.decode(data, entry.raw_size, entry.asset_id)
        return data

    def close(self) -> None:
        self._view.close()
        self._file.close()
