"""One remote cache entry: a header that lets a reader check the payload, then the payload.

An entry holds the output of one asset under its completed output key (``packer.keys``), and is
stored in a bundle (``packer.cache.bundle``) whose index places it under that key. Its bytes:

    MAGIC "PKRC" | format (1 byte, 1) | flags (1 byte: 1 = signed) | key (32 ASCII hex)
    | size of the payload (8 bytes, big-endian) | xxh3_128 of the payload (16 bytes)
    | HMAC-SHA256 (32 bytes, only when signed) | payload

The signature, with ``PACKER_CACHE_KEY``, covers everything before it: the key, the size and the
checksum, so a signed entry cannot be moved under another key or given another payload. A reader
checks all of it (``decode_entry``): the key it asked for, the size, the checksum and, when it has
a secret, the signature; an entry without one is refused then. Anything wrong is ``BadEntry``.
Imports: stdlib, xxhash.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import xxhash

MAGIC = b"PKRC"
FORMAT = 1
SIGNED = 1
KEY_LENGTH = 32
_FIXED = struct.Struct(f">4sBB{KEY_LENGTH}sQ16s")
SIGNATURE_SIZE = 32


class BadEntry(Exception):
    """An entry that must not be used: truncated, corrupt, under another key, or unsigned."""


def _signature(secret: bytes, signed_part: bytes) -> bytes:
    return hmac.new(secret, signed_part, hashlib.sha256).digest()


def encode_entry(key: str, digest: bytes, payload: bytes, secret: bytes | None) -> bytes:
    """The entry for ``payload`` (whose xxh3_128 is ``digest``), signed when ``secret`` is set."""
    fixed = _FIXED.pack(
        MAGIC, FORMAT, SIGNED if secret else 0, key.encode("ascii"), len(payload), digest
    )
    signature = _signature(secret, fixed) if secret else b""
    return fixed + signature + payload


def decode_entry(key: str, entry: bytes, secret: bytes | None) -> tuple[bytes, bytes]:
    """The xxh3_128 digest and the payload of an entry found under ``key``, all of it checked."""
    if len(entry) < _FIXED.size:
        raise BadEntry("truncated header")
    magic, version, flags, stored_key, size, digest = _FIXED.unpack_from(entry)
    if magic != MAGIC or version != FORMAT:
        raise BadEntry("not a packer cache entry of this format")
    if stored_key != key.encode("ascii"):
        raise BadEntry("stored under another key")
    start = _FIXED.size
    if flags & SIGNED:
        start += SIGNATURE_SIZE
    if secret is not None:
        if not flags & SIGNED:
            raise BadEntry("unsigned (PACKER_CACHE_KEY is set)")
        expected = _signature(secret, entry[: _FIXED.size])
        if not hmac.compare_digest(expected, entry[_FIXED.size : start]):
            raise BadEntry("signature does not verify")
    payload = entry[start:]
    if len(payload) != size:
        raise BadEntry(f"payload is {len(payload)} bytes, header says {size}")
    if xxhash.xxh3_128_digest(payload) != digest:
        raise BadEntry("checksum does not match")
    return digest, payload


__all__ = ["BadEntry", "decode_entry", "encode_entry"]
