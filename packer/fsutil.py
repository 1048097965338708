"""Operating-system edges: atomic file replacement, directory fsync, and guarded reads.

Every file a reader may see half-written (registry, pack, manifest, stat and decl caches) goes
through ``atomic_write`` (or ``atomic_outputs`` when the data is streamed, as the pack is) so a
reader or a crash sees the old file or the new one, never a torn one. Per-asset artifacts and
output-cache entries use ``write_disposable``: a torn one can never be taken for a good one.
Every file packer reads goes through ``open_regular`` (or ``read_regular``, which adds a size
limit): a FIFO, device, socket or folder is refused before anything blocks on it.
Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

_SPECIAL = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def describe_mode(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO", "a folder", ...)."""
    for test, words in _SPECIAL:
        if test(mode):
            return words
    return "not a regular file"


class NotRegularFile(OSError):
    """The path names a FIFO, device, socket or folder where packer reads a file."""


class FileTooLarge(OSError):
    """The file is larger than the limit packer reads for its kind of file."""


def _size_words(limit: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def open_regular(path: str) -> int:
    """A read-only descriptor of the regular file at ``path`` (links followed).

    Opened with O_NONBLOCK so that a FIFO without a writer cannot block the open, then checked
    with fstat on the opened file (no window between check and use): anything but a regular file
    raises ``NotRegularFile`` and is never read. The caller closes the descriptor.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"{describe_mode(mode)}, not a regular file", path)
        # Regular files ignore O_NONBLOCK for reads; clear it anyway so nothing depends on that.
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, refusing one larger than ``limit`` bytes.

    A file whose size is past the limit is refused unread. Otherwise at most ``limit + 1`` bytes
    are read whatever the file claims, so one that grows while it is read can never exhaust
    memory; the read is sized from fstat because ``read(n)`` reserves ``n`` bytes up front.
    """
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(fd).st_size
        data = b"" if size > limit else handle.read(size + 1)
        if len(data) > size:  # it grew since the fstat: read on in small steps, to the limit
            while len(data) <= limit and (more := handle.read(min(MIB, limit + 1 - len(data)))):
                data += more
    if size > limit or len(data) > limit:
        raise FileTooLarge(errno.EFBIG, f"larger than the limit of {_size_words(limit)}", path)
    return data


def fsync_dir(path: str) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def temp_prefix(path: str) -> str:
    """How temp files for ``path`` start: ``.<name>.tmp-``, then the writer's pid and ``-``.

    The pid lets a later run tell a dead writer's debris from a live writer's work in progress.
    """
    return f".{os.path.basename(path)}.tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def remove_stale_temps(folder: str, path_name: str, *, dead_writers_only: bool = True) -> None:
    """Remove temp files of ``path_name`` in ``folder`` left by writers killed mid-write.

    With ``dead_writers_only`` (the default) a temp file is removed only when the pid in its
    name is not a live process on this machine; a caller that holds the lock every writer of
    the file takes passes False, since no temp file can then belong to a live writer.
    """
    prefix = temp_prefix(path_name)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].partition("-")[0]
        if dead_writers_only and pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))


@contextmanager
def atomic_outputs(paths: Sequence[str], *, durable: bool = True) -> Iterator[list[BinaryIO]]:
    """Yield one binary handle per path; their contents replace the paths only if the block ends
    without error, and only after every one is written and flushed.

    Each handle writes a temp file in its path's folder (so ``os.replace`` stays on one file
    system and is atomic); it may seek, which lets a writer stream large data and patch a header
    last. The replaces come last, back to back, in the order of ``paths``: files that belong
    together (a pack and its manifest) are never more than one rename apart. On any exception
    every temp file is removed and no path is touched. ``durable=False`` skips the fsyncs for
    disposable files (artifacts, caches) whose loss costs only a rebuild.
    """
    temps: list[str] = []
    with contextlib.ExitStack() as stack:
        try:
            handles: list[BinaryIO] = []
            for path in paths:
                fd, tmp = tempfile.mkstemp(
                    prefix=f"{temp_prefix(path)}{os.getpid()}-", dir=os.path.dirname(path) or "."
                )
                temps.append(tmp)
                handle: BinaryIO = stack.enter_context(os.fdopen(fd, "wb"))
                # mkstemp makes 0600 files; outputs and the registry are ordinary shared files.
                os.fchmod(handle.fileno(), 0o644)
                handles.append(handle)
            yield handles
            for handle in handles:
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
        except BaseException:
            stack.close()
            for tmp in temps:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
    try:
        for tmp, path in zip(temps, paths, strict=True):
            os.replace(tmp, path)
    except OSError as err:
        # A folder where the file belongs, or a read-only folder: the temps must not stay.
        for tmp in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        err.filename, err.filename2 = path, None
        raise
    if durable:
        for folder in sorted({os.path.dirname(path) or "." for path in paths}):
            fsync_dir(folder)


@contextmanager
def atomic_output(path: str, *, durable: bool = True) -> Iterator[BinaryIO]:
    """``atomic_outputs`` for one file."""
    with atomic_outputs([path], durable=durable) as (handle,):
        yield handle


def write_disposable(path: str, data: bytes) -> None:
    """Write a file that a failed write can never make wrong: an artifact (doit records its task
    as done only after the action returns, so a torn artifact is rebuilt, and it carries its
    own checksum). No temp file and no rename: a clean build writes thousands of these, and the
    temp+rename dance costs more than the data. An existing file is unlinked first, never
    written through: it may be a hard link that another name (the output cache) still needs.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    try:
        handle = open(path, "xb")  # noqa: SIM115 - opened here to retry after mkdir below
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle = open(path, "xb")  # noqa: SIM115
    try:
        with handle:
            handle.write(data)
    except BaseException as err:
        # A full disk or a kill-free failure: leave no partial file to hold the space.
        with contextlib.suppress(OSError):
            os.unlink(path)
        _name_file(err, path)
        raise


def _name_file(err: BaseException, path: str) -> None:
    # A failed write() or flush() raises OSError without a file name; the user needs one.
    if isinstance(err, OSError) and err.filename is None:
        err.filename = path


def atomic_write(path: str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_output``).

    An OSError (a full disk) names ``path``, and leaves it and its folder as they were.
    """
    try:
        with atomic_output(path, durable=durable) as handle:
            handle.write(data)
    except OSError as err:
        _name_file(err, path)
        raise
