"""The pack: one binary file of asset bytes ordered by ``asset_id``, its manifest, and their checks.

Owns the on-disk format (docs/pack-format.md is its contract), the streaming writer, the
recoverable commit of the pack and manifest as a pair, the memory-mapped reader and the
verifier. The format is fixed and little-endian, and every byte is a function of the entries
alone (no clock, path, host or dict order), so the same content gives the same pack on every
machine.
Imports: stdlib, xxhash, packer.artifact, packer.errors, packer.fsutil, packer.jsontext.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import reprlib
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from types import TracebackType
from typing import BinaryIO, Self

import xxhash

from packer.artifact import HEADER_SIZE as ARTIFACT_HEADER_SIZE
from packer.errors import PackError
from packer.fsutil import (
    GIB,
    KIB,
    FileTooLarge,
    atomic_write,
    fsync_dir,
    open_regular,
    read_regular,
    remove_stale_temps,
    temp_prefix,
)
from packer.jsontext import JsonTextError, parse_json

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
    temp files first; any failure while writing (an unreadable source, a full disk, a kill)
    leaves both previous files untouched. Then the pair is committed under the folder's commit
    lock as one recoverable step (``_commit``; docs/pack-format.md §3): a kill at any instant
    leaves the old pair, the new pair, or a commit record from which the next ``write_pack``,
    ``verify_pack`` or ``complete_commit`` finishes the new pair before anything reads it.
    Before writing, it finishes such a commit and removes the temp files of writers that died.
    """
    if os.path.abspath(manifest_path) == os.path.abspath(pack_path):
        raise PackError("the manifest path is the pack path", manifest_path)
    ordered = _sorted_entries(pack_path, entries)
    try:
        recover_outputs(pack_path, manifest_path)
        with _staged_files([pack_path, manifest_path]) as staged:
            (pack_temp, pack_out), (manifest_temp, manifest_out) = staged
            placed = _write_pack_file(pack_out, pack_path, ordered)
            for chunk in _manifest_chunks(os.path.basename(pack_path), snapshot, placed):
                manifest_out.write(chunk)
        _commit(pack_path, [(pack_path, pack_temp), (manifest_path, manifest_temp)])
    except OSError as err:
        raise PackError(f"cannot write the pack: {err.strerror or err}", pack_path) from err


# --- The pair's commit ----------------------------------------------------------------------

COMMIT_FORMAT = 1
"""Version of the commit record's JSON shape (docs/pack-format.md §3)."""

COMMIT_RECORD_LIMIT = 64 * KIB
"""Largest commit record read: it names two files."""

COMMIT_LOCK_TIMEOUT = 60.0
"""Seconds a command waits for the commit lock. A commit holds it for a few renames and the
unlink of the previous pair, ``verify_pack`` while it opens the pack and reads the manifest."""


def commit_record_path(pack_path: str) -> str:
    """``build/x.pack`` -> ``build/.x.pack.commit``: the record of a commit not yet finished."""
    folder, name = os.path.split(pack_path)
    return os.path.join(folder, f".{name}.commit")


def _set_aside_path(path: str) -> str:
    """Where a commit moves the previous file at ``path`` until the new one is in place."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.old")


@contextmanager
def _commit_lock(pack_path: str) -> Iterator[None]:
    """Hold the commit lock of the pack's folder: an exclusive ``flock`` on the folder itself.

    Commits and their recovery take it, and so does ``verify_pack`` while it opens the pair, so
    no reader sees the middle of a commit. Locking the folder creates no file (a read-only
    folder can be verified), and the wait is bounded by ``COMMIT_LOCK_TIMEOUT``.
    """
    folder = os.path.dirname(pack_path) or "."
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise PackError(f"cannot lock the pack's folder: {err.strerror or err}", folder) from err
    try:
        deadline = time.monotonic() + COMMIT_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PackError(
                        "another process has held the pack folder's commit lock for "
                        f"{COMMIT_LOCK_TIMEOUT:.0f} s",
                        folder,
                    ) from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def _staged_files(paths: Sequence[str]) -> Iterator[list[tuple[str, BinaryIO]]]:
    """A temp file beside each path, complete and fsynced when the block ends; on any exception
    every one is removed.

    Named as ``fsutil.atomic_outputs`` names its temps (``.<name>.tmp-<pid>-...``), so
    ``remove_stale_temps`` recognises a killed writer's; unlike there, nothing is renamed here:
    ``_commit`` moves the files in.
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


def _commit(pack_path: str, moves: Sequence[tuple[str, str]]) -> None:
    """Move complete new files (``(path, new file)`` pairs, the pack first) in as one step.

    The durable commit record is the commit point: before it, nothing was touched and the new
    files are removed on failure; from it on, every command rolls the commit forward.
    """
    folder = os.path.dirname(pack_path) or "."
    record = {
        "commit": COMMIT_FORMAT,
        "files": [
            {"path": os.path.relpath(path, folder), "new": os.path.basename(new)}
            for path, new in moves
        ],
    }
    recorded = False
    try:
        with _commit_lock(pack_path):
            _finish_commit(pack_path)  # one whose writer was killed while this one streamed
            atomic_write(commit_record_path(pack_path), (json.dumps(record) + "\n").encode())
            recorded = True
            _roll_forward(pack_path, moves)
    except BaseException:
        if not recorded:
            for _, new in moves:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(new)
        raise


def _roll_forward(pack_path: str, moves: Sequence[tuple[str, str]]) -> None:
    """Finish a recorded commit: the writer's own, or one a kill interrupted.

    Every step frees nothing (the previous file gets a second name, then the new one replaces
    it, so the pack's path always names a whole pack) until every new file is in place; then
    what they replaced is unlinked, where a large file's blocks are freed, which takes time.
    Each step checks what is already done, so a commit or a recovery killed at any instant ends
    the same way when run again.
    """
    for path, new in moves:
        if os.path.lexists(new):
            _keep_previous(path)
            os.replace(new, path)
    for folder in sorted({os.path.dirname(path) or "." for path, _ in moves}):
        fsync_dir(folder)
    for path, _ in moves:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_set_aside_path(path))
    os.unlink(commit_record_path(pack_path))
    fsync_dir(os.path.dirname(pack_path) or ".")


def _keep_previous(path: str) -> None:
    """Give the file at ``path`` its set-aside name too, so replacing ``path`` frees nothing."""
    aside = _set_aside_path(path)
    with contextlib.suppress(FileNotFoundError):  # left by a commit killed at this very step
        os.unlink(aside)
    try:
        os.link(path, aside)
    except FileNotFoundError:  # nothing to replace: a first build
        return
    except OSError:  # a file system without hard links: move it aside instead
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, aside)


def _read_commit_record(pack_path: str) -> list[tuple[str, str]] | None:
    """The ``(path, new file)`` pairs of the pack's commit record; None when there is none."""
    record_path = commit_record_path(pack_path)
    try:
        raw = read_regular(record_path, COMMIT_RECORD_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise PackError(
            f"cannot read the commit record: {err.strerror or err}", record_path
        ) from err

    def damaged(why: str) -> PackError:
        return PackError(
            f"commit record is damaged ({why}); delete it and build again", record_path
        )

    try:
        document = parse_json(raw)
    except JsonTextError as err:
        raise damaged(err.message) from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, list) or not files or document.get("commit") != COMMIT_FORMAT:
        raise damaged(f'expected {{"commit": {COMMIT_FORMAT}, "files": [...]}}')
    folder = os.path.dirname(pack_path)
    moves: list[tuple[str, str]] = []
    for item in files:
        path = item.get("path") if isinstance(item, dict) else None
        new = item.get("new") if isinstance(item, dict) else None
        if not isinstance(path, str) or not os.path.basename(path) or os.path.isabs(path):
            raise damaged(f"a file's path is {_shown(path)}")
        # Only a temp file named as packer names them, beside its target, is ever moved in.
        if not isinstance(new, str) or "/" in new or not new.startswith(temp_prefix(path)):
            raise damaged(f"the new file of {_shown(path)} is {_shown(new)}")
        if "\0" in path + new:
            raise damaged("a name holds a NUL byte")
        target = os.path.join(folder, path)
        moves.append((target, os.path.join(os.path.dirname(target), new)))
    if files[0].get("path") != os.path.basename(pack_path):
        raise damaged(f"its first file is not {os.path.basename(pack_path)!r}")
    return moves


def _finish_commit(pack_path: str) -> bool:
    """Roll forward the commit recorded beside the pack, if any (the caller holds the lock)."""
    moves = _read_commit_record(pack_path)
    if moves is None:
        return False
    try:
        _roll_forward(pack_path, moves)
    except OSError as err:
        raise PackError(
            f"cannot complete an interrupted commit: {err.strerror or err}",
            commit_record_path(pack_path),
        ) from err
    return True


def recover_outputs(pack_path: str, manifest_path: str) -> None:
    """Finish a commit a killed writer left half done and remove the temp files of writers that
    died (a build calls it before it writes, or when it finds the pack up to date, so a kill's
    debris never outlives the next build)."""
    with _commit_lock(pack_path):
        # Under the lock: the temps a commit record names are the recovery's to move in.
        _finish_commit(pack_path)
        for path in (pack_path, manifest_path, commit_record_path(pack_path)):
            remove_stale_temps(os.path.dirname(path) or ".", os.path.basename(path))


def complete_commit(pack_path: str) -> bool:
    """Finish a commit of the pack and its manifest that a killed writer left half done.

    Returns True when there was one. ``write_pack`` and ``verify_pack`` call it themselves;
    call it before reading a pack and its manifest as a pair by other means. A lone
    ``PackReader`` needs no call: the pack's path always names a whole pack, old or new.
    """
    with _commit_lock(pack_path):
        return _finish_commit(pack_path)


# --- Reading ---------------------------------------------------------------------------------


class _PackFile:
    """An open pack read with ``os.pread``: a file truncated under the reader gives a short
    read, which is a ``PackError``, where touching a mapped page past the end is SIGBUS."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = open_regular(path)  # a FIFO or device is refused without blocking
        except OSError as err:
            raise PackError(f"cannot open the pack: {err.strerror or err}", path) from err
        self.size = os.fstat(self.fd).st_size

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
        """xxh3_128 of a range, read in chunks (blobs may be gigabytes)."""
        hasher = xxhash.xxh3_128()
        with memoryview(bytearray(min(_CHUNK, end - start))) as buffer:
            for offset in range(start, end, len(buffer) or 1):
                with buffer[: min(len(buffer), end - offset)] as part:
                    self.read_into(part, offset)
                    hasher.update(part)
        return hasher.digest()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _IndexParser:
    """Reads the index records one by one, refusing anything that would read past the index."""

    def __init__(self, index: bytes, path: str) -> None:
        self._index = index
        self._position = 0
        self._path = path

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
        return IndexEntry(asset_id, asset_name, kind, offset, size, digest.hex())

    def at_end(self) -> bool:
        return self._position == len(self._index)


def _parse_header(pack: _PackFile) -> tuple[int, int, bytes]:
    """Check the header; return entry count, index offset and the index's bytes.

    Every size read is bounded by the file's size before it is read, so no header field (an
    entry count of 2**60, an index of 2**63 bytes) drives an allocation.
    """
    path, file_size = pack.path, pack.size
    if file_size < HEADER_SIZE:
        raise PackError(f"truncated: {file_size} bytes, a pack header needs {HEADER_SIZE}", path)
    head = pack.read(0, HEADER_SIZE)
    magic, version, reserved, count, index_offset, index_size, index_digest = _HEADER.unpack_from(
        head, 0
    )
    if magic != MAGIC:
        raise PackError("not a packer pack (bad magic)", path)
    if version != FORMAT_VERSION:
        raise PackError(
            f"unsupported pack format version {version} (this packer reads {FORMAT_VERSION})", path
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
    index = pack.read(index_offset, index_size)
    if xxhash.xxh3_128_digest(index) != index_digest:
        raise PackError("index is damaged (checksum mismatch)", path)
    return count, index_offset, index


def _parse_index(pack: _PackFile) -> tuple[IndexEntry, ...]:
    """Check the header and the index: order, bounds and the canonical, non-overlapping layout."""
    path = pack.path
    count, index_offset, index = _parse_header(pack)
    parser = _IndexParser(index, path)
    entries: list[IndexEntry] = []
    previous: IndexEntry | None = None
    previous_end = HEADER_SIZE  # the header counts as the first occupied range
    names: dict[str, str] = {}
    # Each record takes at least 44 bytes of the index, so a huge count ends at the index's end.
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


def _check_blob(pack: _PackFile, entry: IndexEntry) -> None:
    """Check one blob and the zero padding after it, read with ``pread``."""
    end = entry.offset + entry.size
    if pack.digest(entry.offset, end).hex() != entry.xxh3_128:
        raise PackError("data is damaged (checksum mismatch)", pack.path, entry.asset_id)
    padding = pack.read(end, _aligned(end) - end)
    if padding.count(0) != len(padding):
        raise PackError("padding after the blob is not zero", pack.path, entry.asset_id)


class PackReader:
    """A pack opened read-only: lookups by id or name, checked on every read.

    Opening checks the header and the index (magic, version, checksums, order, layout) with
    ``pread``, but not the blobs, so opening a large pack stays cheap; each blob is checked when
    it is read, and ``verify_pack`` checks them all. Blobs are read from a memory map.

    **SIGBUS**: a file truncated in place while a reader has it mapped makes the kernel kill the
    process with SIGBUS when a page past the new end is touched. packer never truncates a pack
    (it replaces one by rename, and a reader keeps reading the file it opened), so only another
    program can. ``get`` checks the file's current size before touching the map, so a pack that
    is already truncated raises ``PackError``; only a truncation racing a ``get`` in progress can
    still end in SIGBUS. Code that must survive that reads with ``verify_pack``'s ``pread``.

    Attributes: ``path`` (as given), ``size`` (bytes when opened), ``entries`` (IndexEntry tuple
    in pack order) and ``asset_ids`` (the same order: sorted by the UTF-8 bytes of the id).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = _PackFile(path)
        try:
            self.size = self._file.size
            self.entries = _parse_index(self._file)
            try:
                self._view = mmap.mmap(self._file.fd, self.size, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as err:  # ValueError: now shorter than it was
                raise PackError(f"cannot map the pack: {err}", path) from err
        except BaseException:
            self._file.close()
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
        return data

    def close(self) -> None:
        self._view.close()
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --- The manifest and verify ------------------------------------------------------------------

MANIFEST_LIMIT = GIB
"""Largest manifest read (a million assets take about 250 MB): a link to a device or a runaway
file in its place is refused, never read until memory runs out."""

_MANIFEST_KEYS = ("format", "pack", "snapshot", "assets")
_ASSET_KEYS = ("asset_id", "asset_name", "kind", "offset", "size", "xxh3_128")

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def _shown(value: object) -> str:
    """``repr`` cut short: a hostile manifest must not turn one error line into megabytes."""
    return _SHORT.repr(value)


def _load_manifest(path: str) -> tuple[bytes, dict[str, object]]:
    try:
        size = os.stat(path).st_size
        if size > MANIFEST_LIMIT:  # refused unread
            raise PackError(
                f"manifest is larger than the limit of {MANIFEST_LIMIT // GIB} GiB", path
            )
        # Asking for no more than the size seen: read_regular reserves its whole limit up front.
        raw = read_regular(path, size)
    except FileNotFoundError:
        raise PackError("manifest not found", path) from None
    except FileTooLarge:
        raise PackError("manifest grew while it was read", path) from None
    except OSError as err:
        raise PackError(f"cannot read the manifest: {err.strerror or err}", path) from err
    try:
        document = parse_json(raw)
    except JsonTextError as err:
        error = PackError(f"manifest is not valid JSON: {err.message}", path)
        error.line, error.col = err.line, err.col
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
        raise PackError(f"manifest format is {_shown(version)}, expected {FORMAT_VERSION}", path)
    if document["pack"] != pack_name:
        raise PackError(f"manifest is for pack {_shown(document['pack'])}, not {pack_name!r}", path)
    snapshot = document["snapshot"]
    if not isinstance(snapshot, str):
        raise PackError("manifest snapshot must be a string", path)
    try:
        snapshot.encode("utf-8")  # JSON's escapes can spell a lone surrogate
    except UnicodeEncodeError:
        raise PackError("manifest snapshot is not valid Unicode text", path) from None
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
                f"manifest lists {_shown(asset['asset_id'])} where the pack has this entry",
                path,
                entry.asset_id,
            )
        for key in _ASSET_KEYS[1:]:
            value, actual = asset[key], getattr(entry, key)
            if value != actual or type(value) is not type(actual):
                raise PackError(
                    f"manifest {key} {_shown(value)} does not match the pack ({_shown(actual)})",
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

    First, under the folder's commit lock, it finishes a commit a killed writer left half done
    and opens the pack and reads the manifest, so the two are one pair even if a build commits
    a new one meanwhile (a commit renames and unlinks files, it never writes into them). Then it
    checks, in order: the manifest can be read as the documented JSON shape; the pack's header
    and index (magic, version, checksums, order by asset_id, blobs inside the data area and not
    overlapping); every blob's checksum and zero padding; then the manifest against the pack
    (format, pack name, every entry's fields in the same order) and finally that the manifest
    is the exact text packer writes. The pack is read with ``pread``, never mapped, so a pack
    truncated meanwhile is a ``PackError``. The default manifest is the pack's sibling
    ``<name>.manifest.json``.
    """
    manifest = manifest_path if manifest_path is not None else default_manifest_path(pack_path)
    if not os.path.isdir(os.path.dirname(pack_path) or "."):
        raise PackError("no such pack", pack_path)
    with _commit_lock(pack_path):
        _finish_commit(pack_path)
        if not os.path.exists(pack_path):
            raise PackError("no such pack", pack_path)
        pack = _PackFile(pack_path)
        try:
            raw, document = _load_manifest(manifest)
        except BaseException:
            pack.close()
            raise
    with pack:
        entries = _parse_index(pack)
        for entry in entries:
            _check_blob(pack, entry)
    pack_name = os.path.basename(pack_path)
    snapshot = _compare_manifest(manifest, document, pack_name, entries)
    position = 0
    for chunk in _manifest_chunks(pack_name, snapshot, entries):
        if not raw.startswith(chunk, position):
            break
        position += len(chunk)
    if position != len(raw):
        raise PackError("manifest is not in packer's canonical form (edited by hand?)", manifest)
    return VerifyResult(entry_count=len(entries), pack_size=pack.size, manifest_path=manifest)
