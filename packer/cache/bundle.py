"""Bundles: many cache entries in one remote object, so that thousands of small outputs cost a
few requests instead of one each (a request costs milliseconds of client CPU whatever its size).

A build that uploads packs the entries (``packer.cache.entry``) of what it built into bundles of
about ``BUNDLE_BYTES``, each stored once as ``bundles/<id>``, where ``id`` is the xxh3_128 (hex)
of the bundle's bytes, with an index beside it, ``index/<id>``: where each entry lies in the
bundle, by output key. A reader lists ``index/``, reads every index, and fetches the entries it
needs with ranged reads, one request for each run of entries that lie close together
(``fetch_runs``). An index only says where to look: every entry read is verified by its own
header (``decode_entry``: its key, size, checksum and signature), so a wrong, stale or forged
index costs a miss, never a wrong byte.

Index bytes:

    MAGIC "PKRI" | format (1 byte, 1) | count (4 bytes, big-endian)
    | xxh3_128 of the records (16 bytes) | count records of: key (16 bytes: its 32 hex digits)
    | offset in the bundle (8 bytes, big-endian) | size of the entry (8 bytes, big-endian)

Imports: stdlib, xxhash.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import xxhash

BUNDLE_BYTES = 4 << 20
"""A bundle is sealed once its entries reach this size: a few requests for a build's small
outputs, yet little to read again when a bundle holds mostly outputs a reader does not need. An
entry larger than this is a bundle of its own."""

RUN_GAP_BYTES = 64 << 10
"""Wanted entries this close together are read in one request, the bytes between them too: a
request costs more than reading that many bytes more."""

INDEX_PREFIX = "index/"
BUNDLE_PREFIX = "bundles/"
INDEX_MAGIC = b"PKRI"
INDEX_FORMAT = 1
_INDEX_HEADER = struct.Struct(">4sBI16s")
_RECORD = struct.Struct(">16sQQ")


class BadIndex(Exception):
    """An index that must not be used: truncated, corrupt or of another format."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where one entry lies: in which bundle (its id), from which byte, how many bytes."""

    bundle: str
    offset: int
    size: int


@dataclass(frozen=True)
class SealedBundle:
    """A bundle and its index, ready to store (``bundle_name``, ``index_name`` of ``bundle_id``)."""

    bundle_id: str
    data: bytes
    index: bytes
    keys: tuple[str, ...]


class BundleFiller:
    """Entries gathered into bundles of about ``BUNDLE_BYTES``, in the order they come."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, bytes]] = []
        self._size = 0

    def add(self, key: str, entry: bytes) -> list[tuple[str, bytes]] | None:
        """Add one entry; returns the entries of the bundle it filled, if it filled one."""
        self._entries.append((key, entry))
        self._size += len(entry)
        if self._size < BUNDLE_BYTES:
            return None
        return self.rest()

    def rest(self) -> list[tuple[str, bytes]]:
        """The entries of the bundle being filled (maybe none), which starts over empty."""
        full, self._entries, self._size = self._entries, [], 0
        return full


def bundle_name(bundle_id: str) -> str:
    return f"{BUNDLE_PREFIX}{bundle_id}"


def index_name(bundle_id: str) -> str:
    return f"{INDEX_PREFIX}{bundle_id}"


def seal_bundle(entries: Sequence[tuple[str, bytes]]) -> SealedBundle:
    """The bundle of ``entries`` (output key, encoded entry), in their order, and its index."""
    records = bytearray()
    offset = 0
    for key, entry in entries:
        records += _RECORD.pack(bytes.fromhex(key), offset, len(entry))
        offset += len(entry)
    data = b"".join(entry for _, entry in entries)
    header = _INDEX_HEADER.pack(
        INDEX_MAGIC, INDEX_FORMAT, len(entries), xxhash.xxh3_128_digest(records)
    )
    keys = tuple(key for key, _ in entries)
    return SealedBundle(xxhash.xxh3_128_hexdigest(data), data, header + bytes(records), keys)


def decode_index(bundle_id: str, index: bytes) -> list[tuple[str, Location]]:
    """The entries an index places (output key, where), in bundle order, all of it checked."""
    if len(index) < _INDEX_HEADER.size:
        raise BadIndex("truncated header")
    magic, version, count, digest = _INDEX_HEADER.unpack_from(index)
    if magic != INDEX_MAGIC or version != INDEX_FORMAT:
        raise BadIndex("not a packer cache index of this format")
    records = memoryview(index)[_INDEX_HEADER.size :]
    if len(records) != count * _RECORD.size:
        raise BadIndex(f"{len(records)} bytes of records, header says {count}")
    if xxhash.xxh3_128_digest(records) != digest:
        raise BadIndex("checksum does not match")
    return [
        (key.hex(), Location(bundle_id, offset, size))
        for key, offset, size in _RECORD.iter_unpack(records)
    ]


@dataclass(frozen=True)
class Run:
    """One ranged read: ``size`` bytes of a bundle from ``start``, holding ``members``."""

    bundle: str
    start: int
    size: int
    members: tuple[tuple[str, Location], ...]

    def entry(self, data: bytes, location: Location) -> bytes:
        """The bytes of the member at ``location`` within ``data``, what the read returned (a
        short read gives a short entry, which fails verification)."""
        start = location.offset - self.start
        return data[start : start + location.size]


def fetch_runs(wanted: Iterable[tuple[str, Location]]) -> list[Run]:
    """The ranged reads that fetch ``wanted`` (output key, where): per bundle, entries in offset
    order, neighbours less than ``RUN_GAP_BYTES`` apart in one read."""
    by_bundle: dict[str, list[tuple[str, Location]]] = {}
    for key, location in wanted:
        by_bundle.setdefault(location.bundle, []).append((key, location))
    runs: list[Run] = []
    for bundle, members in by_bundle.items():
        members.sort(key=lambda member: member[1].offset)
        group: list[tuple[str, Location]] = []
        start = end = 0
        for key, location in members:
            if group and location.offset - end >= RUN_GAP_BYTES:
                runs.append(Run(bundle, start, end - start, tuple(group)))
                group = []
            if not group:
                start = location.offset
            group.append((key, location))
            end = max(end, location.offset + location.size)
        runs.append(Run(bundle, start, end - start, tuple(group)))
    return runs


__all__ = [
    "BUNDLE_BYTES",
    "BUNDLE_PREFIX",
    "INDEX_PREFIX",
    "BadIndex",
    "BundleFiller",
    "Location",
    "Run",
    "SealedBundle",
    "bundle_name",
    "decode_index",
    "fetch_runs",
    "index_name",
    "seal_bundle",
]
