"""Operating-system edges: atomic file replacement and directory fsync.

Every file packer writes (registry, artifacts, pack, manifest, caches) goes through
``atomic_write`` (or ``atomic_output`` when the data is streamed, as the pack is) so a reader or a
crash sees the old file or the new one, never a torn one.
Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO


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


@contextmanager
def atomic_output(path: str, *, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary handle whose content replaces ``path`` only if the block ends without error.

    The handle writes a temp file in the same folder (so ``os.replace`` stays on one file system
    and is atomic); it may seek, which lets a writer stream large data and patch a header last.
    On any exception the temp file is removed and ``path`` is untouched. ``durable=False`` skips
    the fsyncs for disposable files (artifacts, caches) whose loss costs only a rebuild.
    """
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes 0600 files; outputs and the registry are ordinary shared files.
            os.fchmod(handle.fileno(), 0o644)
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(folder)


def atomic_write(path: str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_output``)."""
    with atomic_output(path, durable=durable) as handle:
        handle.write(data)
