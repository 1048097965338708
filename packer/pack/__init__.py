"""The pack: one binary file of asset bytes ordered by ``asset_id``, its manifest, and their checks.

The format is fixed and little-endian, and every byte is a function of the entries alone (no
clock, path, host or dict order), so the same content gives the same pack on every machine.
docs/pack-format.md is the contract. The work is split along its seams:

- ``format``: the layout's constants, ``IndexEntry``, the header and index as bytes;
- ``codec``: the entry codecs of format 2 (``ZstdCodec``), importing zstandard on first use;
- ``reader``: ``PackReader`` (memory-mapped, checked lookups) and the ``pread`` file under it;
- ``writer``: ``write_pack``, streaming blobs from their artifacts;
- ``commit``: the pair's recoverable commit and its folder lock;
- ``manifest``: the manifest's canonical text, loading and comparing;
- ``verify``: ``verify_pack``, built on the public pieces of the others.

``import packer.pack`` loads only the reader, the format and the codecs' names: a game-side
tool or a runtime loader pays for the standard library and xxhash, nothing more (zstandard
loads when the first compressed entry is read or written). The writer's, the commit's and
the verifier's names are imported on first use (PEP 562), so ``from packer.pack import
write_pack`` still works.
Imports: its own modules, packer.errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packer.errors import PackError
from packer.lazyexports import lazy_exports
from packer.pack.codec import ZstdCodec
from packer.pack.format import (
    ALIGN,
    FORMAT_COMPRESSED,
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    IndexEntry,
)
from packer.pack.reader import EntryNotFound, PackReader

if TYPE_CHECKING:
    from packer.pack.commit import (
        COMMIT_FORMAT,
        COMMIT_LOCK_TIMEOUT,
        COMMIT_RECORD_LIMIT,
        commit_record_path,
        complete_commit,
        recover_outputs,
    )
    from packer.pack.manifest import MANIFEST_LIMIT, ManifestSyntaxError, default_manifest_path
    from packer.pack.verify import VerifyResult, verify_pack
    from packer.pack.writer import PackEntry, write_pack

_MODULE_OF = {
    "COMMIT_FORMAT": "packer.pack.commit",
    "COMMIT_LOCK_TIMEOUT": "packer.pack.commit",
    "COMMIT_RECORD_LIMIT": "packer.pack.commit",
    "MANIFEST_LIMIT": "packer.pack.manifest",
    "ManifestSyntaxError": "packer.pack.manifest",
    "PackEntry": "packer.pack.writer",
    "VerifyResult": "packer.pack.verify",
    "commit_record_path": "packer.pack.commit",
    "complete_commit": "packer.pack.commit",
    "default_manifest_path": "packer.pack.manifest",
    "recover_outputs": "packer.pack.commit",
    "verify_pack": "packer.pack.verify",
    "write_pack": "packer.pack.writer",
}

__all__ = [
    "ALIGN",
    "COMMIT_FORMAT",
    "COMMIT_LOCK_TIMEOUT",
    "COMMIT_RECORD_LIMIT",
    "FORMAT_COMPRESSED",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "MANIFEST_LIMIT",
    "EntryNotFound",
    "IndexEntry",
    "ManifestSyntaxError",
    "PackEntry",
    "PackError",
    "PackReader",
    "VerifyResult",
    "ZstdCodec",
    "commit_record_path",
    "complete_commit",
    "default_manifest_path",
    "recover_outputs",
    "verify_pack",
    "write_pack",
]


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF, __all__, globals())
