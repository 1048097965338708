"""The entry codecs of a format-2 pack: ``none`` (stored as it is) and ``zstd``.

zstandard is imported only here and only when a zstd entry is written or read, so
``import packer.pack`` and every format-1 pack stay free of it (it is the ``packer[zstd]``
extra). Compression is deterministic: one frame per entry made in one call, at a fixed level,
single-threaded, with the content size and a content checksum in the frame and no dictionary,
so the bytes depend only on the entry, the level and the library's version, which
``ZstdCodec.fingerprint`` names for the pack key. docs/pack-format.md §1a is the contract.
Imports: stdlib, packer.errors.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from packer.errors import PackError, counted

CODEC_NONE = "none"
CODEC_ZSTD = "zstd"
CODEC_IDS = {CODEC_NONE: 0, CODEC_ZSTD: 1}
"""A codec's number in the index record (format.md §1)."""
CODEC_NAMES = {number: name for name, number in CODEC_IDS.items()}

MAX_RATIO = 32768
"""No zstd frame decodes to more than this many bytes per stored byte (a 4-byte RLE block
holds 128 KiB): a ``raw_size`` above it is damage, refused before anything is allocated."""

INSTALL_HINT = "pip install 'packer[zstd]'"


def zstandard_module(path: str, entry: str | None = None) -> ModuleType:
    """The zstandard module, or one ``PackError`` saying how to install it."""
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        raise PackError(
            f"zstd compression needs the zstandard package ({INSTALL_HINT})", path, entry
        ) from None


@dataclass(frozen=True, slots=True)
class ZstdCodec:
    """``[pack] compression = "zstd"`` at ``level``: what the writer compresses entries with."""

    level: int
    """1 to 22; packer.toml's default is ``model.ZSTD_LEVEL_DEFAULT``."""

    def fingerprint(self, path: str) -> str:
        """Everything the compressed bytes depend on besides the entry: level and the versions
        of zstandard and of the libzstd it runs (they may differ: a system libzstd)."""
        zstd = zstandard_module(path)
        libzstd = ".".join(str(part) for part in zstd.ZSTD_VERSION)
        return f"zstd level {self.level}, zstandard {zstd.__version__}, libzstd {libzstd}"

    def compressor(self, path: str) -> Any:
        """A ``ZstdCompressor`` with every parameter fixed (its ``compress`` makes one frame)."""
        zstd = zstandard_module(path)
        return zstd.ZstdCompressor(
            level=self.level,
            write_checksum=True,
            write_content_size=True,
            write_dict_id=False,
            threads=0,
        )


class Decoder:
    """Decodes the zstd entries of one pack, importing zstandard on the first one."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._context: Any = None

    def _zstd(self, entry: str) -> tuple[ModuleType, Any]:
        zstd = zstandard_module(self._path, entry)
        if self._context is None:
            self._context = zstd.ZstdDecompressor()
        return zstd, self._context

    def decode(self, stored: bytes, raw_size: int, entry: str) -> bytes:
        """The original bytes of a zstd entry whose stored bytes passed their checksum."""
        zstd, context = self._zstd(entry)
        try:
            self._check_declared(zstd, stored, raw_size, entry)
            data: bytes = context.decompress(stored, max_output_size=raw_size)
        except zstd.ZstdError as err:
            raise self._damaged(str(err), entry) from None
        self._check_size(len(data), raw_size, entry)
        return data

    def check(self, stored: bytes, raw_size: int, entry: str) -> None:
        """What ``decode`` checks, and that nothing follows the frame (``verify_pack``)."""
        zstd, context = self._zstd(entry)
        stream = context.decompressobj()
        try:
            self._check_declared(zstd, stored, raw_size, entry)
            size = len(stream.decompress(stored))
        except zstd.ZstdError as err:
            raise self._damaged(str(err), entry) from None
        if not stream.eof:
            raise self._damaged("its frame is incomplete", entry)
        if stream.unused_data:
            extra = len(stream.unused_data)
            verb = "follows" if extra == 1 else "follow"
            raise self._damaged(f"{counted(extra, 'byte')} {verb} its frame", entry)
        self._check_size(size, raw_size, entry)

    def _check_declared(self, zstd: ModuleType, stored: bytes, raw_size: int, entry: str) -> None:
        # The frame's own size must be the index's before it sizes an allocation.
        declared = zstd.get_frame_parameters(stored).content_size
        if declared != raw_size:
            raise self._damaged(f"its frame holds {declared} bytes, the index {raw_size}", entry)

    def _check_size(self, size: int, raw_size: int, entry: str) -> None:
        if size != raw_size:
            raise self._damaged(f"it decodes to {size} bytes, not {raw_size}", entry)

    def _damaged(self, why: str, entry: str) -> PackError:
        return PackError(f"compressed data is damaged ({why})", self._path, entry)
