"""Per-asset artifacts: an asset's bytes preceded by the xxh3_128 of those bytes.

An artifact is written once per build of an asset (``<out>/assets/<asset_id>.bin``) and
hard-linked into the output cache, so a clean build creates one file per asset, not two. The
checksum makes every copy self-checking: a cache entry or artifact damaged in place (the two
may share one inode) is refused, never packed or reused.
Imports: stdlib, xxhash, packer.fsutil.
"""

from __future__ import annotations

import contextlib
import os
import threading

import xxhash

from packer.fsutil import open_regular, temp_prefix, write_disposable

HEADER_SIZE = 16
"""The xxh3_128 digest of the data, big-endian (its hex form is the manifest's ``xxh3_128``)."""


def write_artifact(path: str, data: bytes) -> None:
    write_disposable(path, xxhash.xxh3_128_digest(data) + data)


def read_artifact(path: str) -> bytes | None:
    """The data of an intact artifact; None when it is missing or does not match its checksum."""
    checked = read_checked_artifact(path)
    return None if checked is None else checked[1]


def read_checked_artifact(path: str) -> tuple[str, bytes] | None:
    """The recorded xxh3_128 (hex) and the data of an intact artifact; None when it is missing
    or its data does not match the recorded digest."""
    try:
        with os.fdopen(open_regular(path), "rb") as handle:
            stored = handle.read()
    except OSError:  # missing, unreadable, or a special file put in its place
        return None
    header, data = stored[:HEADER_SIZE], stored[HEADER_SIZE:]
    if len(header) < HEADER_SIZE or header != xxhash.xxh3_128_digest(data):
        return None
    return header.hex(), data


def link_artifact(source: str, target: str) -> bool:
    """Make ``target`` another name of the artifact ``source`` (replacing it atomically); False
    if the file system cannot link. How an output cache entry and an asset's artifact share one
    file."""
    try:
        return _link_new(source, target)
    except FileExistsError:
        pass
    if os.path.samefile(source, target):
        return True
    folder = os.path.dirname(target)
    temp = os.path.join(folder, f"{temp_prefix(target)}{os.getpid()}-{threading.get_ident()}")
    try:
        os.link(source, temp)
    except OSError:
        return False
    try:
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)  # a second name of a good file: never leave it behind
        raise
    return True


def _link_new(source: str, target: str) -> bool:
    """Link ``target`` to ``source`` where no ``target`` exists: one call in the common case (a
    new output cache entry, a fresh artifact), its folder made when missing. False if the file
    system cannot link; FileExistsError where ``target`` exists."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except FileNotFoundError:
        if not os.path.exists(source):
            return False
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(source, target)
        except FileExistsError:
            raise
        except OSError:
            return False
    except OSError:
        return False
    return True


def write_linked(artifact: str, entry: str, data: bytes) -> bool:
    """Write ``data`` as the artifact ``artifact`` and give it the output cache's name
    ``entry`` by a hard link (one file, two names), or as a second file where the file system
    cannot link. Returns whether it linked."""
    write_artifact(artifact, data)
    if link_artifact(artifact, entry):
        return True
    write_artifact(entry, data)
    return False


def artifact_digest(path: str) -> str:
    """The recorded xxh3_128 (hex) of an artifact's data, read from its header alone.

    Raises OSError when the artifact is missing, not a regular file, or too short to hold a
    header.
    """
    with os.fdopen(open_regular(path), "rb") as handle:
        header = handle.read(HEADER_SIZE)
    if len(header) != HEADER_SIZE:
        raise OSError(f"{path}: not an artifact")
    return header.hex()
