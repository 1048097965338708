"""Verifying a pack: every byte of it, and its agreement with its manifest.

Built on the public pieces of the other modules: the commit lock and roll-forward, the
``pread`` reader (never the memory map, so a truncation is an error, not SIGBUS), and the
manifest's loading, comparison and canonical text. docs/pack-format.md §4 is the contract.
Imports: stdlib, packer.errors, packer.pack.codec, packer.pack.commit, packer.pack.format,
packer.pack.manifest, packer.pack.reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from packer.errors import PackError
from packer.pack.codec import CODEC_ZSTD, Decoder
from packer.pack.commit import commit_lock, finish_commit
from packer.pack.format import IndexEntry, aligned
from packer.pack.manifest import (
    compare_manifest,
    default_manifest_path,
    is_canonical,
    load_manifest,
)
from packer.pack.reader import PackFile


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``verify_pack`` checked, for the caller to report."""

    entry_count: int
    pack_size: int
    manifest_path: str


def _check_blob(pack: PackFile, entry: IndexEntry, decoder: Decoder) -> None:
    """Check one blob and the zero padding after it, read with ``pread``; a compressed blob
    is also decoded (its frame, size and content checksum)."""
    end = entry.offset + entry.size
    if pack.digest(entry.offset, end).hex() != entry.xxh3_128:
        raise PackError("data is damaged (checksum mismatch)", pack.path, entry.asset_id)
    if entry.codec == CODEC_ZSTD:
        decoder.check(pack.read(entry.offset, entry.size), entry.raw_size, entry.asset_id)
    padding = pack.read(end, aligned(end) - end)
    if padding.count(0) != len(padding):
        raise PackError("padding after the blob is not zero", pack.path, entry.asset_id)


def verify_pack(pack_path: str, manifest_path: str | None = None) -> VerifyResult:
    """Check a pack completely and its agreement with its manifest; raise on the first fault.

    First, under the folder's commit lock, it finishes a commit a killed writer left half done
    and opens the pack and reads the manifest, so the two are one pair even if a build commits
    a new one meanwhile (a commit renames and unlinks files, it never writes into them). Then it
    checks, in order: the manifest can be read as the documented JSON shape; the pack's header
    and index (magic, version, checksums, order by asset_id, blobs inside the data area and not
    overlapping); every blob's checksum and zero padding, and every compressed blob's decoding;
    then the manifest against the pack
    (format, pack name, every entry's fields in the same order) and finally that the manifest
    is the exact text packer writes. The pack is read with ``pread``, never mapped, so a pack
    truncated meanwhile is a ``PackError``. The default manifest is the pack's sibling
    ``<name>.manifest.json``.
    """
    manifest = manifest_path if manifest_path is not None else default_manifest_path(pack_path)
    if not os.path.isdir(os.path.dirname(pack_path) or "."):
        raise PackError("no such pack", pack_path)
    with commit_lock(pack_path):
        finish_commit(pack_path)
        if not os.path.exists(pack_path):
            raise PackError("no such pack", pack_path)
        pack = PackFile(pack_path)
        try:
            raw, document = load_manifest(manifest)
        except BaseException:
            pack.close()
            raise
    with pack:
        entries = pack.read_index()
        decoder = Decoder(pack_path)
        for entry in entries:
            _check_blob(pack, entry, decoder)
    pack_name = os.path.basename(pack_path)
    version = pack.format_version
    snapshot = compare_manifest(manifest, document, pack_name, entries, version)
    if not is_canonical(raw, pack_name, snapshot, entries, version):
        raise PackError("manifest is not in packer's canonical form (edited by hand?)", manifest)
    return VerifyResult(entry_count=len(entries), pack_size=pack.size, manifest_path=manifest)
