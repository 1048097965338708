"""The pack: one binary file of asset bytes ordered by ``asset_id``, its manifest, and their checks.

Owns the on-disk format (docs/pack-format.md is its contract), the streaming writer, the
memory-mapped reader and the verifier. The format is fixed and little-endian, and every byte
is a function of the entries alone (no clock, path, host or dict order), so the same
content gives the same pack on every machine.
Imports: stdlib, xxhash, packer.artifact, packer.errors, packer.fsutil.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import TracebackType
from typing import BinaryIO, Self

import xxhash

from packer.artifact import HEADER_SIZE as ARTIFACT_HEADER_SIZE
from packer.errors import PackError
from packer.fsutil import atomic_outputs

FORMAT_VERSION = 1

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

_CHUNK = 1 << 20
"""Copy buffer: the writer's memory does not grow with the size of a blob or of the pack."""


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One entry to write: its identity and the file that holds its bytes."""

    asset_id: str
    asset_name: str
    kind: str
    source: str
    """Path of the asset's artifact (``packer.artifact``): its data becomes the entry's blob."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One entry as the pack's index records it."""

    asset_id: str
    asset_name: str
    kind: str
    offset: int
    """Absolute byte offset of the blob in the pack."""
    size: int
    xxh3_128: str
    """Checksum of the blob: 32 lowercase hex digits, as in the manifest."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``verify_pack`` checked, for the caller to report."""

    entry_count: int
    pack_size: int
    manifest_path: str


def default_manifest_path(pack_path: str) -> str:
    """``build/x.pack`` -> ``build/x.manifest.json``: the manifest sits beside its pack."""
    return pack_path.removesuffix(".pack") + ".manifest.json"


def _aligned(position: int) -> int:
    return position + (-position % ALIGN)


def _id_key(asset_id: str) -> bytes:
    # SPEC orders by the byte order of the id; for valid UTF-8 that equals code point order,
    # but saying bytes keeps the rule identical to what a reader in another language checks.
    return asset_id.encode("utf-8")


def _encode_text(value: str, what: str, path: str, entry: str) -> bytes:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise PackError(f"{what} is not valid Unicode text: {value!r}", path, entry) from None
    if len(raw) > 0xFFFFFFFF:
        raise PackError(f"{what} is too long for the pack index", path, entry)
    return _LEN.pack(len(raw)) + raw


def _sorted_entries(pack_path: str, entries: Sequence[PackEntry]) -> list[PackEntry]:
    """Sort by id and refuse duplicates: a reader looks entries up by id and by name."""
    for entry in entries:  # up front: a bad text found after streaming gigabytes wastes them
        for what in ("asset_id", "asset_name", "kind"):
            _encode_text(getattr(entry, what), what, pack_path, entry.asset_id)
    ordered = sorted(entries, key=lambda entry: _id_key(entry.asset_id))
    for previous, entry in pairwise(ordered):
        if previous.asset_id == entry.asset_id:
            raise PackError("duplicate asset_id", pack_path, entry.asset_id)
    names: dict[str, str] = {}
    for entry in ordered:
        if entry.asset_name in names:
            other = names[entry.asset_name]
            raise PackError(
                f"duplicate asset_name {entry.asset_name!r} (also entry {other})",
                pack_path,
                entry.asset_id,
            )
        names[entry.asset_name] = entry.asset_id
    return ordered


def _copy_source(entry: PackEntry, out: BinaryIO, buffer: memoryview) -> tuple[int, str]:
    """Append the data of the entry's artifact to ``out`` in chunks; return its size and
    xxh3_128 hex, refusing an artifact whose data does not match its recorded checksum."""
    hasher = xxhash.xxh3_128()
    size = 0
    try:
        source = open(entry.source, "rb")  # noqa: SIM115 - closed below; open errors differ
    except OSError as err:
        raise PackError(
            f"cannot read source: {err.strerror}", entry.source, entry.asset_id
        ) from err
    with source:
        recorded = source.read(ARTIFACT_HEADER_SIZE)
        while True:
            try:
                count = source.readinto(buffer)
            except OSError as err:
                raise PackError(
                    f"cannot read source: {err.strerror}", entry.source, entry.asset_id
                ) from err
            if not count:
                break
            chunk = buffer[:count]
            hasher.update(chunk)
            out.write(chunk)
            size += count
    if hasher.digest() != recorded:
        raise PackError(
            "artifact damaged (its data does not match its checksum); "
            f"rebuild it: doit forget asset:{entry.asset_id}",
            entry.source,
            entry.asset_id,
        )
    return size, hasher.hexdigest()


def _index_record(entry: IndexEntry, path: str) -> bytes:
    return b"".join(
        (
            _encode_text(entry.asset_id, "asset_id", path, entry.asset_id),
            _encode_text(entry.asset_name, "asset_name", path, entry.asset_id),
            _encode_text(entry.kind, "kind", path, entry.asset_id),
            _PLACE.pack(entry.offset, entry.size, bytes.fromhex(entry.xxh3_128)),
        )
    )


def _header(entry_count: int, index_offset: int, index_size: int, index_digest: bytes) -> bytes:
    head = _HEADER.pack(
        MAGIC, FORMAT_VERSION, 0, entry_count, index_offset, index_size, index_digest
    )
    return head + _HEADER_CHECK.pack(xxhash.xxh3_64_intdigest(head))


def _write_pack_file(
    out: BinaryIO, pack_path: str, ordered: Sequence[PackEntry]
) -> list[IndexEntry]:
    """Stream blobs, then the index, then patch the header (``out`` is a temp file)."""
    placed: list[IndexEntry] = []
    buffer = memoryview(bytearray(_CHUNK))
    out.write(bytes(HEADER_SIZE))  # placeholder: counts and the index checksum come last
    position = HEADER_SIZE
    for entry in ordered:
        size, digest = _copy_source(entry, out, buffer)
        placed.append(
            IndexEntry(entry.asset_id, entry.asset_name, entry.kind, position, size, digest)
        )
        end = position + size
        position = _aligned(end)
        out.write(bytes(position - end))
    index_hasher = xxhash.xxh3_128()
    index_size = 0
    for record in placed:
        raw = _index_record(record, pack_path)
        index_hasher.update(raw)
        out.write(raw)
        index_size += len(raw)
    out.seek(0)
    out.write(_header(len(placed), position, index_size, index_hasher.digest()))
    return placed


def _manifest_chunks(
    pack_name: str, snapshot: str, entries: Sequence[IndexEntry]
) -> Iterator[bytes]:
    """The manifest's one canonical text, one asset at a time.

    The text is exactly ``json.dumps(document, indent=2, ensure_ascii=False) + "\n"``, but
    rendered per asset: dumping 100,000 assets at once peaks at several times the manifest's
    size. ``verify_pack`` compares a manifest against these chunks byte for byte.
    """

    def text(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    head = (
        f'{{\n  "format": {FORMAT_VERSION},\n  "pack": {text(pack_name)},\n'
        f'  "snapshot": {text(snapshot)},\n  "assets": '
    )
    if not entries:
        yield (head + "[]\n}\n").encode("utf-8")
        return
    yield (head + "[\n    ").encode("utf-8")
    for number, entry in enumerate(entries):
        asset = {
            "asset_id": entry.asset_id,
            "asset_name": entry.asset_name,
            "kind": entry.kind,
            "offset": entry.offset,
            "size": entry.size,
            "xxh3_128": entry.xxh3_128,
        }
        # Strings escape their own newlines, so every newline here is structure to indent.
        rendered = json.dumps(asset, indent=2, ensure_ascii=False).replace("\n", "\n    ")
        yield ((",\n    " if number else "") + rendered).encode("utf-8")
    yield b"\n  ]\n}\n"


def write_pack(
    pack_path: str, manifest_path: str, snapshot: str, entries: Sequence[PackEntry]
) -> None:
    """Write the pack and its manifest from entries whose bytes live in files.

    Entries may come in any order; they are sorted by ``asset_id``. Blobs are streamed in
    fixed-size chunks, so memory does not grow with the pack. Both files are written in full to
    temp files first and then replaced back to back, pack first: any failure while writing (an
    unreadable source, a full disk, a kill) leaves both previous files untouched. Only a kill
    between the two renames leaves the new pack beside the old manifest, which ``verify_pack``
    reports and the next build repairs.
    """
    if os.path.abspath(manifest_path) == os.path.abspath(pack_path):
        raise PackError("the manifest path is the pack path", manifest_path)
    ordered = _sorted_entries(pack_path, entries)
    try:
        with atomic_outputs([pack_path, manifest_path]) as (pack_out, manifest_out):
            placed = _write_pack_file(pack_out, pack_path, ordered)
            for chunk in _manifest_chunks(os.path.basename(pack_path), snapshot, placed):
                manifest_out.write(chunk)
    except OSError as err:
        raise PackError(f"cannot write the pack: {err.strerror or err}", pack_path) from err


def _digest(view: mmap.mmap, start: int, end: int) -> bytes:
    """xxh3_128 of a mapped range without copying it (blobs may be gigabytes)."""
    with memoryview(view) as whole, whole[start:end] as part:
        return xxhash.xxh3_128_digest(part)


def _is_zero(view: mmap.mmap, start: int, end: int) -> bool:
    return view[start:end].count(0) == end - start


class _IndexParser:
    """Reads the index records one by one, refusing anything that would read past the index."""

    def __init__(self, view: mmap.mmap, start: int, end: int, path: str) -> None:
        self._view = view
        self._position = start
        self._end = end
        self._path = path

    def _take(self, size: int, record: int) -> int:
        start = self._position
        if start + size > self._end:
            raise PackError(f"index is damaged: record {record} runs past the index", self._path)
        self._position = start + size
        return start

    def _text(self, what: str, record: int) -> str:
        (length,) = _LEN.unpack_from(self._view, self._take(_LEN.size, record))
        start = self._take(length, record)
        try:
            return self._view[start : start + length].decode("utf-8")
        except UnicodeDecodeError:
            raise PackError(
                f"index is damaged: {what} of record {record} is not UTF-8", self._path
            ) from None

    def record(self, number: int) -> IndexEntry:
        asset_id = self._text("asset_id", number)
        asset_name = self._text("asset_name", number)
        kind = self._text("kind", number)
        offset, size, digest = _PLACE.unpack_from(self._view, self._take(_PLACE.size, number))
        return IndexEntry(asset_id, asset_name, kind, offset, size, digest.hex())

    def at_end(self) -> bool:
        return self._position == self._end


def _parse_header(view: mmap.mmap, file_size: int, path: str) -> tuple[int, int, int]:
    """Check the header; return entry count, index offset and index size."""
    magic, version, reserved, count, index_offset, index_size, index_digest = _HEADER.unpack_from(
        view, 0
    )
    if magic != MAGIC:
        raise PackError("not a packer pack (bad magic)", path)
    if version != FORMAT_VERSION:
        raise PackError(
            f"unsupported pack format version {version} (this packer reads {FORMAT_VERSION})", path
        )
    (header_check,) = _HEADER_CHECK.unpack_from(view, _HEADER.size)
    if header_check != xxhash.xxh3_64_intdigest(view[: _HEADER.size]):
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
    if _digest(view, index_offset, index_end) != index_digest:
        raise PackError("index is damaged (checksum mismatch)", path)
    return count, index_offset, index_size


def _parse_index(view: mmap.mmap, file_size: int, path: str) -> tuple[IndexEntry, ...]:
    """Check the header and the index: order, bounds and the canonical, non-overlapping layout."""
    count, index_offset, index_size = _parse_header(view, file_size, path)
    parser = _IndexParser(view, index_offset, index_offset + index_size, path)
    entries: list[IndexEntry] = []
    previous: IndexEntry | None = None
    previous_end = HEADER_SIZE  # the header counts as the first occupied range
    names: dict[str, str] = {}
    for number in range(count):
        entry = parser.record(number)
        name = entry.asset_id
        end = entry.offset + entry.size
        if previous is not None and _id_key(previous.asset_id) >= _id_key(name):
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
        if entry.offset != _aligned(previous_end):
            raise PackError(
                f"blob at {entry.offset}, expected at {_aligned(previous_end)}", path, name
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
    if not parser.at_end():
        raise PackError(f"index is damaged: it holds more than the {count} entries", path)
    if _aligned(previous_end) != index_offset:
        raise PackError(
            f"data area ends at {_aligned(previous_end)}, but the index starts at {index_offset}",
            path,
        )
    return tuple(entries)


class PackReader:
    """A pack opened read-only through ``mmap``: lookups by id or name, checked on every read.

    Opening checks the header and the index (magic, version, checksums, order, layout) but not
    the blobs, so opening a large pack stays cheap; each blob is checked when it is read, and
    ``verify_pack`` checks them all.

    Attributes: ``path`` (as given), ``size`` (bytes), ``entries`` (IndexEntry tuple in pack
    order) and ``asset_ids`` (the same order: sorted by the UTF-8 bytes of the id).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path, "rb") as handle:
                file_size = os.fstat(handle.fileno()).st_size
                if file_size < HEADER_SIZE:  # also keeps mmap away from an empty file
                    raise PackError(
                        f"truncated: {file_size} bytes, a pack header needs {HEADER_SIZE}", path
                    )
                # The map keeps its own reference to the file; the handle can close.
                self._view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as err:
            raise PackError(f"cannot open the pack: {err.strerror or err}", path) from err
        self.size = len(self._view)
        try:
            self.entries = _parse_index(self._view, self.size, path)
        except BaseException:
            self._view.close()
            raise
        self.asset_ids = tuple(entry.asset_id for entry in self.entries)
        self._by_id = {entry.asset_id: entry for entry in self.entries}
        self._by_name = {entry.asset_name: entry for entry in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._by_id

    def get(self, asset_id: str) -> bytes:
        """The bytes of ``asset_id``, checked against the index; KeyError when absent."""
        return self._read(self._by_id[asset_id])

    def get_by_name(self, asset_name: str) -> bytes:
        """The bytes of the entry named ``asset_name``, checked; KeyError when absent."""
        return self._read(self._by_name[asset_name])

    def _read(self, entry: IndexEntry) -> bytes:
        data = self._view[entry.offset : entry.offset + entry.size]
        if xxhash.xxh3_128_hexdigest(data) != entry.xxh3_128:
            raise PackError("data is damaged (checksum mismatch)", self.path, entry.asset_id)
        return data

    def _check_blob(self, entry: IndexEntry) -> None:
        """Check one blob and the padding after it in place, without copying it out."""
        end = entry.offset + entry.size
        if _digest(self._view, entry.offset, end).hex() != entry.xxh3_128:
            raise PackError("data is damaged (checksum mismatch)", self.path, entry.asset_id)
        if not _is_zero(self._view, end, _aligned(end)):
            raise PackError("padding after the blob is not zero", self.path, entry.asset_id)

    def close(self) -> None:
        self._view.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


_MANIFEST_KEYS = ("format", "pack", "snapshot", "assets")
_ASSET_KEYS = ("asset_id", "asset_name", "kind", "offset", "size", "xxh3_128")


def _load_manifest(path: str) -> tuple[bytes, dict[str, object]]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise PackError("manifest not found", path) from None
    except OSError as err:
        raise PackError(f"cannot read the manifest: {err.strerror or err}", path) from err
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PackError("manifest is not UTF-8", path) from None
    except json.JSONDecodeError as err:
        error = PackError(f"manifest is not valid JSON: {err.msg}", path)
        error.line, error.col = err.lineno, err.colno
        raise error from None
    if not isinstance(document, dict) or tuple(document) != _MANIFEST_KEYS:
        raise PackError(f"manifest must be an object with keys {', '.join(_MANIFEST_KEYS)}", path)
    return raw, document


def _compare_manifest(
    path: str, document: dict[str, object], pack_name: str, entries: Sequence[IndexEntry]
) -> str:
    """Check the manifest against the pack field by field, naming the first entry that differs.

    Returns the manifest's snapshot, which the pack cannot check (it holds no snapshot).
    """
    version = document["format"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise PackError(f"manifest format is {version!r}, expected {FORMAT_VERSION}", path)
    if document["pack"] != pack_name:
        raise PackError(f"manifest is for pack {document['pack']!r}, not {pack_name!r}", path)
    snapshot = document["snapshot"]
    if not isinstance(snapshot, str):
        raise PackError("manifest snapshot must be a string", path)
    assets = document["assets"]
    if not isinstance(assets, list):
        raise PackError("manifest assets must be a list", path)
    for number, (asset, entry) in enumerate(zip(assets, entries, strict=False)):
        if not isinstance(asset, dict) or tuple(asset) != _ASSET_KEYS:
            raise PackError(
                f"manifest asset {number} must be an object with keys {', '.join(_ASSET_KEYS)}",
                path,
            )
        if asset["asset_id"] != entry.asset_id:
            raise PackError(
                f"manifest lists {asset['asset_id']!r} where the pack has this entry",
                path,
                entry.asset_id,
            )
        for key in _ASSET_KEYS[1:]:
            value, actual = asset[key], getattr(entry, key)
            if value != actual or type(value) is not type(actual):
                raise PackError(
                    f"manifest {key} {value!r} does not match the pack ({actual!r})",
                    path,
                    entry.asset_id,
                )
    if len(assets) > len(entries):
        extra = assets[len(entries)]
        named = extra.get("asset_id") if isinstance(extra, dict) else None
        raise PackError(
            "manifest lists an entry the pack does not have",
            path,
            named if isinstance(named, str) else None,
        )
    if len(assets) < len(entries):
        raise PackError("manifest is missing this entry", path, entries[len(assets)].asset_id)
    return snapshot


def verify_pack(pack_path: str, manifest_path: str | None = None) -> VerifyResult:
    """Check a pack completely and its agreement with its manifest; raise on the first fault.

    Checks, in order: the manifest can be read as the documented JSON shape; the pack's header
    and index (magic, version, checksums, order by asset_id, blobs inside the data area and not
    overlapping); every blob's checksum and zero padding; then the manifest against the pack
    (format, pack name, every entry's fields in the same order) and finally that the manifest
    is the exact text packer writes. The default manifest is the pack's sibling
    ``<name>.manifest.json``.
    """
    if not os.path.isfile(pack_path):
        raise PackError("no such pack", pack_path)
    manifest = manifest_path if manifest_path is not None else default_manifest_path(pack_path)
    raw, document = _load_manifest(manifest)
    with PackReader(pack_path) as reader:
        for entry in reader.entries:
            reader._check_blob(entry)
        size = reader.size
    pack_name = os.path.basename(pack_path)
    snapshot = _compare_manifest(manifest, document, pack_name, reader.entries)
    position = 0
    for chunk in _manifest_chunks(pack_name, snapshot, reader.entries):
        if not raw.startswith(chunk, position):
            break
        position += len(chunk)
    if position != len(raw):
        raise PackError("manifest is not in packer's canonical form (edited by hand?)", manifest)
    return VerifyResult(entry_count=len(reader.entries), pack_size=size, manifest_path=manifest)
