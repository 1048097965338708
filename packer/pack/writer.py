"""Writing a pack: entries sorted by ``asset_id``, blobs streamed from their artifacts, the
manifest beside it, both committed as a pair.

Memory does not grow with blob or pack size (1 MiB copy buffer). Both files are written in
full to temp files first; ``commit`` then moves them in. docs/pack-format.md §3 is the contract.
Imports: stdlib, xxhash, packer.artifact, packer.errors, packer.fsutil, packer.pack.commit,
packer.pack.format, packer.pack.manifest.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO

import xxhash

from packer.artifact import HEADER_SIZE as ARTIFACT_HEADER_SIZE
from packer.errors import PackError
from packer.fsutil import MIB, temp_prefix
from packer.pack.commit import commit_files, recover_outputs
from packer.pack.format import (
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


def _write_pack_file(
    out: BinaryIO, pack_path: str, ordered: Sequence[PackEntry]
) -> list[IndexEntry]:
    """Stream blobs, then the index, then patch the header (``out`` is a temp file)."""
    placed: list[IndexEntry] = []
    buffer = memoryview(bytearray(MIB))
    out.write(bytes(HEADER_SIZE))  # placeholder: counts and the index checksum come last
    position = HEADER_SIZE
    for entry in ordered:
        size, digest = _copy_source(entry, out, buffer)
        placed.append(
            IndexEntry(entry.asset_id, entry.asset_name, entry.kind, position, size, digest)
        )
        end = position + size
        position = aligned(end)
        out.write(bytes(position - end))
    index_hasher = xxhash.xxh3_128()
    index_size = 0
    for record in placed:
        raw = encode_index_record(record, pack_path)
        index_hasher.update(raw)
        out.write(raw)
        index_size += len(raw)
    out.seek(0)
    out.write(encode_header(Header(len(placed), position, index_size, index_hasher.digest())))
    return placed


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
    pack_path: str, manifest_path: str, snapshot: str, entries: Sequence[PackEntry]
) -> None:
    """Write the pack and its manifest from entries whose bytes live in files.

    Entries may come in any order; they are sorted by ``asset_id``. Blobs are streamed in
    fixed-size chunks, so memory does not grow with the pack. Both files are written in full to
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
    try:
        recover_outputs(pack_path, manifest_path)
        with _staged_files([pack_path, manifest_path]) as staged:
            (pack_temp, pack_out), (manifest_temp, manifest_out) = staged
            placed = _write_pack_file(pack_out, pack_path, ordered)
            for chunk in manifest_chunks(os.path.basename(pack_path), snapshot, placed):
                manifest_out.write(chunk)
        commit_files(pack_path, [(pack_path, pack_temp), (manifest_path, manifest_temp)])
    except OSError as err:
        raise PackError(f"cannot write the pack: {err.strerror or err}", pack_path) from err
