"""Ogg pages with a fixed stream serial number, so an encoded Ogg file is a function of its sound.

libsndfile starts every Ogg stream it writes with a serial number drawn from the clock (the Ogg
spec asks for a random one, so that chained streams differ). One file of packer's holds one
stream, so the serial number carries nothing, and packer sets it to a constant: every page gets
the same serial and a recomputed checksum. Nothing else in the pages changes.
Imports: stdlib.
"""

from __future__ import annotations

import struct
import zlib

SERIAL = 0x5041434B
"""The serial number of every stream packer writes (``PACK`` in ASCII)."""

_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
"""capture pattern, version, header type, granule position, serial, sequence, CRC, segments."""
_SERIAL_AT = 14
_CRC_AT = 22

# The Ogg CRC is CRC-32 with polynomial 0x04C11DB7 taken most significant bit first, zlib's is
# the same polynomial least significant bit first; bit-reversing every byte in and the result out
# turns one into the other, so zlib does the work at C speed.
_REVERSED_BYTES = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_crc(page: bytes) -> int:
    """The Ogg page checksum of ``page`` (whose CRC field must be zero)."""
    reflected = zlib.crc32(page.translate(_REVERSED_BYTES), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def with_fixed_serial(data: bytes) -> bytes:
    """``data``, an Ogg file of one logical stream, with serial ``SERIAL`` on every page."""
    out = bytearray(data)
    position = 0
    while position < len(out):
        magic, _, _, _, _, _, _, segments = _PAGE_HEADER.unpack_from(out, position)
        if magic != b"OggS":
            raise ValueError(f"no Ogg page at byte offset {position}")
        table_end = position + _PAGE_HEADER.size + segments
        end = table_end + sum(out[position + _PAGE_HEADER.size : table_end])
        struct.pack_into("<I", out, position + _SERIAL_AT, SERIAL)
        struct.pack_into("<I", out, position + _CRC_AT, 0)
        struct.pack_into("<I", out, position + _CRC_AT, ogg_crc(bytes(out[position:end])))
        position = end
    return bytes(out)


__all__ = ["SERIAL", "ogg_crc", "with_fixed_serial"]
