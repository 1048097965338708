"""The decl cache: parsed declarations of valid asset.json files, by folder and content hash.

A declaration is found only under the xxh3_128 of the exact bytes it was parsed from, and only
while its kind's fingerprint (version and declared libraries' versions,
``kinds.base.kind_fingerprint``) is unchanged, so it can never serve a stale declaration: a
Pillow upgrade re-checks every image asset's params. Only declarations without problems are
stored, and only those used in this run are saved (a partial run's, which looks at a few
folders only, keeps the others too). The file is read through
``fsutil.read_regular``: a special, oversized or broken one is ignored.
Imports: stdlib, packer.statcache, packer.fsutil, packer.scan.declaration.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping

from packer.fsutil import atomic_write, read_regular
from packer.scan.declaration import Declaration
from packer.statcache import CACHE_FILE_LIMIT

_DECL_CACHE_VERSION = 3
# (asset_name, kind, input names, deps, kind fingerprint, params_json, inputs)
_CachedDecl = tuple[str, str, tuple[str, ...], tuple[str, ...], str, str, tuple[str, ...]]


class DeclCache:
    """Parsed declarations of valid asset.json files, keyed by folder and content hash."""

    def __init__(self, path: str, *, partial: bool = False) -> None:
        self.path = path
        self.partial = partial
        self._old: dict[str, _CachedDecl] = {}
        try:
            # A special or oversized file is refused unread, a broken one fails to load: either
            # way the cache is empty and the declarations are parsed again.
            version, entries = marshal.loads(read_regular(path, CACHE_FILE_LIMIT))
        except (OSError, EOFError, ValueError, TypeError):
            pass
        else:
            if version == _DECL_CACHE_VERSION and isinstance(entries, dict):
                self._old = entries
        self._new: dict[str, _CachedDecl] = {}

    def get(self, folder: str, digest: str, fingerprints: Mapping[str, str]) -> Declaration | None:
        """The declaration parsed from these bytes of ``folder``'s asset.json, if its kind's
        fingerprint (``fingerprints``: by kind name) is still the one it was checked with."""
        key = f"{folder}\0{digest}"
        entry = self._old.get(key)
        if type(entry) is not tuple or len(entry) != 7:
            return None  # absent, or not of packer's making: parse the file instead
        name, kind, input_names, deps, fingerprint, params_json, inputs = entry
        if fingerprints.get(kind) != fingerprint:
            return None
        self._new[key] = entry
        return Declaration(
            folder, name, kind, input_names, deps, digest, inputs, fingerprint, params_json
        )

    def put(self, d: Declaration) -> None:
        self._new[f"{d.path}\0{d.decl_hash}"] = (
            d.asset_name,
            d.kind,
            d.input_names,
            d.deps,
            d.kind_fingerprint,
            d.params_json,
            d.inputs,
        )

    def save(self) -> None:
        entries = {**self._old, **self._new} if self.partial else self._new
        if entries != self._old:
            atomic_write(self.path, marshal.dumps((_DECL_CACHE_VERSION, entries)), durable=False)
