"""The ``file://`` remote: a shared folder (a NAS mount, say) holding one file per object.

An object named ``bundles/abcdef...`` is the file ``<root>/bundles/abcdef...``. A write goes to
a temp file in the object's own folder (``.<name>.tmp-<pid>-<random>``: several machines share
the folder), fsynced, then gets its name by ``os.link``, which fails when the name exists: an
object is never replaced, and nobody ever sees a partial one under its name. The folder itself
is not fsynced per object (it doubled an upload's cost): a crash may lose a name just written,
which costs a rebuild, never a wrong byte. Readers skip the dot-named temps.
The root itself is never created: a missing root is an unmounted share, so ``RemoteUnavailable``
rather than a folder made on the local disk.
Imports: stdlib, packer.fsutil, packer.cache.store.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

from packer.cache.store import RemoteUnavailable
from packer.fsutil import NotRegularFile, open_regular, temp_prefix


class FileStore:
    """A ``RemoteStore`` over a folder; ``url`` is how the user named it."""

    def __init__(self, url: str, root: str) -> None:
        self._url = url
        self.root = root

    @property
    def url(self) -> str:
        return self._url

    def _path(self, name: str) -> str:
        parts = name.split("/")
        if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            raise ValueError(f"not an object name: {name!r}")
        return os.path.join(self.root, *parts)

    def _unavailable(self, err: OSError) -> RemoteUnavailable:
        return RemoteUnavailable(f"{self._url}: {err.strerror or err}")

    def _check_root(self) -> None:
        if not os.path.isdir(self.root):
            raise RemoteUnavailable(f"{self._url}: not a folder (is the share mounted?)")

    def get(self, name: str) -> bytes | None:
        return self._read(name, 0, -1)

    def get_range(self, name: str, start: int, size: int) -> bytes | None:
        return self._read(name, start, size)

    def _read(self, name: str, start: int, size: int) -> bytes | None:
        """``size`` bytes from ``start`` of the object's file (``size`` -1: to its end)."""
        path = self._path(name)
        try:
            # open_regular: a FIFO planted under an object's name is refused, never waited on.
            with os.fdopen(open_regular(path), "rb") as handle:
                if size != -1 and handle.seek(0, os.SEEK_END) <= start:
                    return None  # as S3 answers a range past the end
                handle.seek(start)
                return handle.read(size)
        except (FileNotFoundError, NotADirectoryError):
            self._check_root()
            return None
        except NotRegularFile:
            return None  # no object: the asset builds, and the name stays taken
        except OSError as err:
            raise self._unavailable(err) from None

    def put_if_absent(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        folder = os.path.dirname(path)
        temp = os.path.join(folder, f"{temp_prefix(path)}{os.getpid()}-{secrets.token_hex(8)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            if os.path.lexists(path):
                return False  # the common case of a shared dep: no need to write it first
            try:
                fd = os.open(temp, flags, 0o644)
            except FileNotFoundError:
                self._check_root()  # never create the root: a missing one is an unmounted share
                os.makedirs(folder, exist_ok=True)
                fd = os.open(temp, flags, 0o644)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    # The data is durable before the name exists. The folder is not synced: a
                    # crash may lose the name, never show it with other bytes.
                    os.fsync(handle.fileno())
                os.link(temp, path)
            except FileExistsError:
                return False
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        except OSError as err:
            raise self._unavailable(err) from None
        return True

    def names(self, prefix: str = "") -> Iterator[str]:
        self._check_root()
        # Only the folder that holds every name under the prefix is walked.
        top = os.path.join(self.root, *prefix.split("/")[:-1])
        for folder, subfolders, files in os.walk(top):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            rel = os.path.relpath(folder, self.root)
            for file in sorted(files):
                if file.startswith("."):
                    continue  # a writer's temp file, not an object
                name = file if rel == "." else f"{rel.replace(os.sep, '/')}/{file}"
                if name.startswith(prefix):
                    yield name

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            return
        except OSError as err:
            raise self._unavailable(err) from None


__all__ = ["FileStore"]
