"""The pack's layout: constants, the index entry, and the header and index as bytes.

docs/pack-format.md §1 is the contract. Encoding (for the writer) and decoding (for the reader
and the verifier) sit side by side so the two can never drift apart. Everything here works on
bytes already read: the modules that read and write files are ``reader`` and ``writer``.
Imports: stdlib, xxhash, packer.errors, packer.pack.codec (its names only: zstandard loads
there on use).
"""

from __future__ import annotations

import reprlib
import struct
from dataclasses import dataclass
from typing import NamedTuple

import xxhash

from packer.errors import PackError
from packer.pack.codec import CODEC_IDS, CODEC_NAMES, CODEC_NONE, MAX_RATIO

FORMAT_VERSION = 1
"""A pack whose entries are stored as they are; what a build writes without compression."""
FORMAT_COMPRESSED = 2
"""A pack whose index records each entry's codec and original size (``[pack] compression``)."""
FORMAT_VERSIONS = (FORMAT_VERSION, FORMAT_COMPRESSED)

MAGIC = b"\x89PACKER\n"
"""Like PNG's: the high-bit first byte and the newline expose text-mode or 7-bit mangling."""

ALIGN = 16
"""Blobs and the index start on 16-byte boundaries so a reader can map data in place."""

# magic, version, reserved (0), entry count, index offset, index size, index xxh3_128,
# then the header's own xxh3_64 over the 56 bytes before it.
_HEADER = struct.Struct("<8sIIQQQ16s")
_HEADER_CHECK = struct.Struct("<Q")
HEADER_SIZE = _HEADER.size + _HEADER_CHECK.size  # 64: a multiple of ALIGN

_LEN = struct.Struct("<I")
_PLACE = struct.Struct("<QQ16s")  # offset, size, xxh3_128 of the blob
_CODING = struct.Struct("<IQ")  # format 2 only: codec number, raw_size


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One entry as the pack's index records it."""

    asset_id: str
    asset_name: str
    kind: str
    offset: int
    """Absolute byte offset of the blob in the pack."""
    size: int
    """Length of the blob: the stored bytes."""
    xxh3_128: str
    """Checksum of the blob (the stored bytes): 32 lowercase hex digits, as in the manifest."""
    codec: str
    """How the blob holds the entry: ``none`` (as it is; always so in format 1) or ``zstd``."""
    raw_size: int
    """Length of the entry's original bytes (``size`` when the codec is ``none``)."""


class Header(NamedTuple):
    """The header's fields that locate the index, checked against the file's size.

    A named tuple, not a dataclass like ``IndexEntry``: one class fewer to generate on import.
    """

    entry_count: int
    index_offset: int
    index_size: int
    index_checksum: bytes
    """xxh3_128 of the index, in its canonical 16 bytes."""
    version: int = FORMAT_VERSION


def aligned(position: int) -> int:
    """``position`` rounded up to the next multiple of ``ALIGN``: where the next blob starts."""
    return position + (-position % ALIGN)


def id_key(asset_id: str) -> bytes:
    """The sort key of the pack's order."""
    # SPEC orders by the byte order of the id; for valid UTF-8 that equals code point order,
    # but saying bytes keeps the rule identical to what a reader in another language checks.
    return asset_id.encode("utf-8")


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def cut_short(value: object) -> str:
    """``repr`` cut short: a hostile manifest or commit record must not turn one error line
    into megabytes."""
    return _SHORT.repr(value)


# --- Encoding (the writer) -------------------------------------------------------------------


def encode_text(value: str, what: str, path: str, entry: str) -> bytes:
    """A text field of an index record (length, then UTF-8); ``PackError`` if it has none."""
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise PackError(f"{what} is not valid Unicode text: {value!r}", path, entry) from None
    if len(raw) > 0xFFFFFFFF:
        raise PackError(f"{what} is too long for the pack index", path, entry)
    return _LEN.pack(len(raw)) + raw


def encode_index_record(entry: IndexEntry, path: str, version: int) -> bytes:
    parts = [
        encode_text(entry.asset_id, "asset_id", path, entry.asset_id),
        encode_text(entry.asset_name, "asset_name", path, entry.asset_id),
        encode_text(entry.kind, "kind", path, entry.asset_id),
        _PLACE.pack(entry.offset, entry.size, bytes.fromhex(entry.xxh3_128)),
    ]
    if version == FORMAT_COMPRESSED:
        parts.append(_CODING.pack(CODEC_IDS[entry.codec], entry.raw_size))
    return b"".join(parts)


def encode_header(header: Header) -> bytes:
    head = _HEADER.pack(
        MAGIC,
        header.version,
        0,
        header.entry_count,
        header.index_offset,
        header.index_size,
        header.index_checksum,
    )
    return head + _HEADER_CHECK.pack(xxhash.xxh3_64_intdigest(head))


# --- Decoding (the reader and the verifier) --------------------------------------------------


def decode_header(head: bytes, file_size: int, path: str) -> Header:
    """Check the ``HEADER_SIZE`` bytes at the start of a pack of ``file_size`` bytes.

    The index it locates is checked to end exactly at the end of the file before anyone reads
    it, so no header field (an entry count of 2**60, an index of 2**63 bytes) drives an
    allocation.
    """
    magic, version, reserved, count, index_offset, index_size, index_checksum = _HEADER.unpack_from(
        head, 0
    )
    if magic != MAGIC:
        raise PackError("not a packer pack (bad magic)", path)
    if version not in FORMAT_VERSIONS:
        raise PackError(
            f"unsupported pack format version {version} (this packer reads "
            f"{' and '.join(map(str, FORMAT_VERSIONS))})",
            path,
        )
    (header_check,) = _HEADER_CHECK.unpack_from(head, _HEADER.size)
    if header_check != xxhash.xxh3_64_intdigest(head[: _HEADER.size]):
        raise PackError("header is damaged (checksum mismatch)", path)
    if reserved != 0:
        raise PackError("header is damaged (reserved field is not zero)", path)
    index_end = index_offset + index_size
    if index_offset < HEADER_SIZE or index_offset % ALIGN:
        raise PackError(f"header is damaged (index offset {index_offset})", path)
    if index_end > file_size:
        raise PackError(
            f"truncated: the index ends at byte {index_end} but the file has {file_size}", path
        )
    if index_end < file_size:
        raise PackError(f"{file_size - index_end} unexpected bytes after the index", path)
    return Header(count, index_offset, index_size, index_checksum, version)


class _IndexRecords:
    """Reads the index records one by one, refusing anything that would read past the index."""

    def __init__(self, index: bytes, path: str, version: int) -> None:
        self._index = index
        self._position = 0
        self._path = path
        self._version = version

    def _take(self, size: int, record: int) -> int:
        start = self._position
        if start + size > len(self._index):
            raise PackError(f"index is damaged: record {record} runs past the index", self._path)
        self._position = start + size
        return start

    def _text(self, what: str, record: int) -> str:
        (length,) = _LEN.unpack_from(self._index, self._take(_LEN.size, record))
        start = self._take(length, record)
        try:
            return self._index[start : start + length].decode("utf-8")
        except UnicodeDecodeError:
            raise PackError(
                f"index is damaged: {what} of record {record} is not UTF-8", self._path
            ) from None

    def record(self, number: int) -> IndexEntry:
        asset_id = self._text("asset_id", number)
        asset_name = self._text("asset_name", number)
        kind = self._text("kind", number)
        offset, size, digest = _PLACE.unpack_from(self._index, self._take(_PLACE.size, number))
        codec, raw_size = CODEC_NONE, size
        if self._version == FORMAT_COMPRESSED:
            codec_number, raw_size = _CODING.unpack_from(
                self._index, self._take(_CODING.size, number)
            )
            codec = self._codec(codec_number, size, raw_size, asset_id)
        return IndexEntry(asset_id, asset_name, kind, offset, size, digest.hex(), codec, raw_size)

    def _codec(self, number: int, size: int, raw_size: int, asset_id: str) -> str:
        """The codec's name, checked with the sizes it allows (none: equal; zstd: bounded)."""
        codec = CODEC_NAMES.get(number)
        if codec is None:
            raise PackError(f"index is damaged: unknown codec {number}", self._path, asset_id)
        if codec == CODEC_NONE and raw_size != size:
            raise PackError(
                f"index is damaged: raw_size {raw_size} of a stored entry of {size} bytes",
                self._path,
                asset_id,
            )
        if raw_size > size * MAX_RATIO:
            raise PackError(
                f"index is damaged: raw_size {raw_size} from {size} compressed bytes",
                self._path,
                asset_id,
            )
        return codec

    def at_end(self) -> bool:
        return self._position == len(self._index)


def decode_index(index: bytes, header: Header, path: str) -> tuple[IndexEntry, ...]:
    """Check the index's records, order and the canonical, non-overlapping layout (the caller
    has checked the index against ``header.index_checksum``)."""
    count, index_offset = header.entry_count, header.index_offset
    records = _IndexRecords(index, path, header.version)
    entries: list[IndexEntry] = []
    previous: IndexEntry | None = None
    previous_end = HEADER_SIZE  # the header counts as the first occupied range
    names: dict[str, str] = {}
    # Each record takes at least 44 bytes of the index, so a huge count ends at the index's end.
    for number in range(count):
        entry = records.record(number)
        name = entry.asset_id
        end = entry.offset + entry.size
        if previous is not None and id_key(previous.asset_id) >= id_key(name):
            raise PackError(f"out of order after entry {previous.asset_id}", path, name)
        if end > index_offset:
            raise PackError(
                f"blob [{entry.offset}, {end}) lies outside the data area "
                f"[{HEADER_SIZE}, {index_offset})",
                path,
                name,
            )
        if entry.offset < previous_end:
            raise PackError(
                f"blob at {entry.offset} overlaps what precedes it (up to {previous_end})",
                path,
                name,
            )
        # Overlap-free is not enough: the layout is canonical so equal content gives equal bytes.
        if entry.offset != aligned(previous_end):
            raise PackError(
                f"blob at {entry.offset}, expected at {aligned(previous_end)}", path, name
            )
        if entry.asset_name in names:
            raise PackError(
                f"duplicate asset_name {entry.asset_name!r} (also entry {names[entry.asset_name]})",
                path,
                name,
            )
        names[entry.asset_name] = name
        entries.append(entry)
        previous = entry
        previous_end = end
    if not records.at_end():
        raise PackError(f"index is damaged: it holds more than the {count} entries", path)
    if aligned(previous_end) != index_offset:
        raise PackError(
            f"data area ends at {aligned(previous_end)}, but the index starts at {index_offset}",
            path,
        )
    return tuple(entries)
