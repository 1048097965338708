"""Writing a pack: entries sorted by ``asset_id``, blobs streamed from their artifacts, the
manifest beside it, both committed as a pair.

Uncompressed (format 1), memory does not grow with blob or pack size (1 MiB copy buffer);
compressed (format 2), one entry is held at a time, raw and compressed. Both files are written
in full to temp files first; ``commit`` then moves them in. docs/pack-format.md §3 is the
contract.
Imports: stdlib, xxhash, packer.artifact, packer.errors, packer.fsutil, packer.pack.codec,
packer.pack.commit, packer.pack.format, packer.pack.manifest.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, BinaryIO

import xxhash

from packer.artifact import HEADER_SIZE as ARTIFACT_HEADER_SIZE
from packer.errors import PackError
from packer.fsutil import MIB, temp_prefix
from packer.pack.codec import CODEC_NONE, CODEC_ZSTD, ZstdCodec
from packer.pack.commit import commit_files, recover_outputs
from packer.pack.format import (
    FORMAT_COMPRESSED,
    FORMAT_VERSION,
    HEADER_SIZE,
    Header,
    IndexEntry,
    aligned,
    encode_header,
    encode_index_record,
    encode_text,
    id_key,
)
from packer.pack.manifest import manifest_chunks
from packer.pack.reuse import (
    PackRecord,
    PreviousPack,
    Reused,
    StaleRecord,
    layout_name,
    previous_pack,
)
from packer.statcache import FileStat


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One entry to write: its identity and the file that holds its bytes."""

    asset_id: str
    asset_name: str
    kind: str
    source: str
    """Path of the asset's artifact (``packer.artifact``): its data becomes the entry's blob."""


def _sorted_entries(pack_path: str, entries: Sequence[PackEntry]) -> list[PackEntry]:
    """Sort by id and refuse duplicates: a reader looks entries up by id and by name."""
    for entry in entries:  # up front: a bad text found after streaming gigabytes wastes them
        for what in ("asset_id", "asset_name", "kind"):
            encode_text(getattr(entry, what), what, pack_path, entry.asset_id)
    ordered = sorted(entries, key=lambda entry: id_key(entry.asset_id))
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


def _open_source(entry: PackEntry) -> io.BufferedReader:
    try:
        return open(entry.source, "rb")
    except OSError as err:
        raise _unreadable(entry, err) from err


def _unreadable(entry: PackEntry, err: OSError) -> PackError:
    return PackError(f"cannot read source: {err.strerror}", entry.source, entry.asset_id)


def _damaged(entry: PackEntry) -> PackError:
    return PackError(
        "artifact damaged (its data does not match its checksum); "
        f"rebuild it: doit forget asset:{entry.asset_id}",
        entry.source,
        entry.asset_id,
    )


def _copy_source(
    entry: PackEntry, out: BinaryIO, buffer: memoryview, offset: int
) -> tuple[IndexEntry, FileStat]:
    """Append the data of the entry's artifact to ``out`` (at ``offset``) in chunks, refusing an
    artifact whose data does not match its recorded checksum; with the artifact's stat key
    as it was before its data was read."""
    hasher = xxhash.xxh3_128()
    size = 0
    with _open_source(entry) as source:
        source_stat = FileStat.of(os.fstat(source.fileno()))
        recorded = source.read(ARTIFACT_HEADER_SIZE)
        while True:
            try:
                count = source.readinto(buffer)
            except OSError as err:
                raise _unreadable(entry, err) from err
            if not count:
                break
            chunk = buffer[:count]
            hasher.update(chunk)
            out.write(chunk)
            size += count
    if hasher.digest() != recorded:
        raise _damaged(entry)
    digest = hasher.hexdigest()
    record = IndexEntry(
        entry.asset_id, entry.asset_name, entry.kind, offset, size, digest, CODEC_NONE, size
    )
    return record, source_stat


def _compress_source(
    entry: PackEntry, out: BinaryIO, compressor: Any, offset: int
) -> tuple[IndexEntry, FileStat]:
    """Append the entry's data compressed to ``out`` (at ``offset``), or as it is when
    compressing does not shrink it, refusing a damaged artifact; with the artifact's stat key
    as it was before its data was read."""
    with _open_source(entry) as source:
        source_stat = FileStat.of(os.fstat(source.fileno()))
        try:
            recorded, data = source.read(ARTIFACT_HEADER_SIZE), source.read()
        except OSError as err:
            raise _unreadable(entry, err) from err
    if xxhash.xxh3_128_digest(data) != recorded:
        raise _damaged(entry)
    packed: bytes = compressor.compress(data)
    stored, codec = (packed, CODEC_ZSTD) if len(packed) < len(data) else (data, CODEC_NONE)
    out.write(stored)
    digest = xxhash.xxh3_128_hexdigest(stored)
    record = IndexEntry(
        entry.asset_id, entry.asset_name, entry.kind, offset, len(stored), digest, codec, len(data)
    )
    return record, source_stat


def _format_of(codec: ZstdCodec | None) -> int:
    return FORMAT_VERSION if codec is None else FORMAT_COMPRESSED


def _write_pack_file(
    out: BinaryIO,
    pack_path: str,
    ordered: Sequence[PackEntry],
    codec: ZstdCodec | None,
    previous: PreviousPack | None,
    packed: PackRecord,
) -> list[IndexEntry]:
    """Stream blobs, then the index, then patch the header (``out`` is a temp file). Runs of
    entries that ``previous`` holds unchanged are copied from there (``packer.pack.reuse``);
    each entry is noted in ``packed``."""
    placed: list[IndexEntry] = []
    buffer = memoryview(bytearray(MIB))
    compressor = None if codec is None else codec.compressor(pack_path)
    version = _format_of(codec)
    out.write(bytes(HEADER_SIZE))  # placeholder: counts and the index checksum come last
    position = HEADER_SIZE
    run = _Run(out, previous) if previous is not None else None
    for entry in ordered:
        reused = None if previous is None else previous.find(entry.asset_id, entry.source)
        if reused is not None and run is not None:
            run.add(position, reused)
            record = IndexEntry(
                entry.asset_id,
                entry.asset_name,
                entry.kind,
                position,
                reused.size,
                reused.xxh3_128,
                reused.codec,
                reused.raw_size,
            )
            source_stat = reused.source_stat
            packed.reused += 1
            position = aligned(position + reused.size)  # the run copies the gap with the entry
        else:
            if run is not None:
                run.flush()
            if compressor is None:
                record, source_stat = _copy_source(entry, out, buffer, position)
            else:
                record, source_stat = _compress_source(entry, out, compressor, position)
            end = position + record.size
            position = aligned(end)
            out.write(bytes(position - end))
        placed.append(record)
        packed.add(
            entry.asset_id,
            entry.source,
            source_stat,
            record.offset,
            record.size,
            record.xxh3_128,
            record.codec,
            record.raw_size,
        )
    if run is not None:
        run.flush()
    index_hasher = xxhash.xxh3_128()
    index_size = 0
    for record in placed:
        raw = encode_index_record(record, pack_path, version)
        index_hasher.update(raw)
        out.write(raw)
        index_size += len(raw)
    out.seek(0)
    header = Header(len(placed), position, index_size, index_hasher.digest(), version)
    out.write(encode_header(header))
    return placed


class _Run:
    """Consecutive reused entries that sit in the previous pack as they will in the new one
    (the same gaps between them), copied from it in one call when the run ends."""

    def __init__(self, out: BinaryIO, previous: PreviousPack) -> None:
        self._out = out
        self._previous = previous
        self._entries: list[tuple[int, Reused]] = []
        self._start = self._end = self._at = 0

    def add(self, position: int, reused: Reused) -> None:
        """Add the entry that goes at ``position`` (the end of the run so far, aligned)."""
        if self._entries and reused.offset - self._start != position - self._at:
            self.flush()
        if not self._entries:
            self._start, self._at = reused.offset, position
        self._entries.append((position, reused))
        self._end = aligned(reused.offset + reused.size)

    def flush(self) -> None:
        if not self._entries:
            return
        self._out.flush()
        self._previous.copy(self._start, self._end, self._out.fileno(), self._at, self._entries)
        self._out.seek(self._at + self._end - self._start)
        self._entries = []


@contextmanager
def _staged_files(paths: Sequence[str]) -> Iterator[list[tuple[str, BinaryIO]]]:
    """A temp file beside each path, complete and fsynced when the block ends; on any exception
    every one is removed.

    Named as ``fsutil.atomic_outputs`` names its temps (``.<name>.tmp-<pid>-...``), so
    ``remove_stale_temps`` recognises a killed writer's; unlike there, nothing is renamed here:
    ``commit_files`` moves the files in.
    """
    staged: list[tuple[str, BinaryIO]] = []
    try:
        for path in paths:
            fd, temp = tempfile.mkstemp(
                prefix=f"{temp_prefix(path)}{os.getpid()}-", dir=os.path.dirname(path) or "."
            )
            handle: BinaryIO = os.fdopen(fd, "wb")
            staged.append((temp, handle))
            # mkstemp makes 0600 files; a pack and its manifest are ordinary shared files.
            os.fchmod(fd, 0o644)
        yield staged
        for _, handle in staged:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
    except BaseException:
        for temp, handle in staged:
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        raise


def write_pack(
    pack_path: str,
    manifest_path: str,
    snapshot: str,
    entries: Sequence[PackEntry],
    codec: ZstdCodec | None = None,
    *,
    reuse_record: str | None = None,
) -> int:
    """Write the pack and its manifest from entries whose bytes live in files; return how many
    entries were copied from the previous pack (``reuse_record``).

    Without ``codec`` the pack is format 1; with it, format 2: each entry compressed with
    ``codec``, or stored as it is when that would not shrink it.

    With ``reuse_record`` (a file of the caller's, beside its other caches), an entry whose
    source is as it was when the previous pack was written is copied from that pack, checked
    against its checksum, instead of being read and compressed again
    (``packer.pack.reuse``); the record is then replaced with the new pack's.

    Entries may come in any order; they are sorted by ``asset_id``. Blobs are streamed in
    fixed-size chunks, so memory does not grow with the pack (compressed, it holds one entry at
    a time). Both files are written in full to
    temp files first; any failure while writing (an unreadable source, a full disk, a kill)
    leaves both previous files untouched. Then the pair is committed under the folder's commit
    lock as one recoverable step (``commit_files``; docs/pack-format.md §3): a kill at any
    instant leaves the old pair, the new pair, or a commit record from which the next
    ``write_pack``, ``verify_pack`` or ``complete_commit`` finishes the new pair before anything
    reads it. Before writing, it finishes such a commit and removes the temp files of writers
    that died.
    """
    if os.path.abspath(manifest_path) == os.path.abspath(pack_path):
        raise PackError("the manifest path is the pack path", manifest_path)
    ordered = _sorted_entries(pack_path, entries)
    version = _format_of(codec)
    layout = layout_name(version, None if codec is None else codec.fingerprint(pack_path))
    packed = PackRecord()
    try:
        recover_outputs(pack_path, manifest_path)
        with _staged_files([pack_path, manifest_path]) as staged:
            (pack_temp, pack_out), (manifest_temp, manifest_out) = staged
            with previous_pack(reuse_record, pack_path, layout) as previous:
                try:
                    placed = _write_pack_file(pack_out, pack_path, ordered, codec, previous, packed)
                except StaleRecord:  # the previous pack is not as recorded: reuse nothing
                    pack_out.seek(0)
                    pack_out.truncate()
                    packed = PackRecord()
                    placed = _write_pack_file(pack_out, pack_path, ordered, codec, None, packed)
            for chunk in manifest_chunks(os.path.basename(pack_path), snapshot, placed, version):
                manifest_out.write(chunk)
        commit_files(pack_path, [(pack_path, pack_temp), (manifest_path, manifest_temp)])
    except OSError as err:
        raise PackError(f"cannot write the pack: {err.strerror or err}", pack_path) from err
    if reuse_record is not None:
        # A cache: failing to save it (a full disk) costs the next pack a read of every
        # artifact, never this build.
        with contextlib.suppress(OSError):
            packed.save(reuse_record, layout)
    return packed.reused
