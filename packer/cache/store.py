"""The one interface a remote cache backend offers, and how a ``[cache] remote`` URL picks one.

A store holds opaque objects under names chosen by the cache layer (names derive from output
keys, never from paths or asset names). The contract every backend keeps:

- ``get`` returns the whole object or ``None`` when there is none; it never returns a prefix of
  an object that is still being written. ``get_range`` returns part of one, the same way.
- ``put_if_absent`` is write-once: it never replaces an existing object, and a partial upload is
  never visible under the name.
- a transport fault (refused connection, timeout, server error after the retries) raises
  ``RemoteUnavailable``, which the cache layer turns into one warning and a local build.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class RemoteUnavailable(Exception):
    """The remote could not be reached or did not answer in time; never a user's mistake."""


class RemoteStore(Protocol):
    """A content-addressed object store: a shared folder or an S3-compatible bucket."""

    @property
    def url(self) -> str:
        """Where the store is, as the user configured it (for messages)."""
        ...

    def get(self, name: str) -> bytes | None:
        """The object stored under ``name``, or ``None`` when there is none."""
        ...

    def get_range(self, name: str, start: int, size: int) -> bytes | None:
        """``size`` bytes of the object under ``name`` from byte ``start`` (fewer where it ends
        sooner), or ``None`` when there is no object or it ends before ``start``."""
        ...

    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Store ``data`` under ``name`` unless an object is there; True when this call wrote it."""
        ...

    def names(self, prefix: str = "") -> Iterator[str]:
        """Every object name under ``prefix``, in no promised order (for pruning)."""
        ...

    def delete(self, name: str) -> None:
        """Remove one object (only ``packer cache prune`` does this; builds never delete)."""
        ...
