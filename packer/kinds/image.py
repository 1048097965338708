"""The ``image`` kind: pixels a runtime can upload without an image decoder.

Decoding happens once, at build time, into one of a few fixed pixel formats behind a 16-byte
header, so the game needs no PNG library and every platform sees the same pixels. Pillow is
imported inside ``process`` because most commands never decode an image and its import is slow.
Imports: stdlib, pydantic, Pillow (lazily), packer.kinds.base, packer.errors.
"""

from __future__ import annotations

import io
import re
import struct
import sys
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from packer.errors import KindError
from packer.kinds.base import KindContext

if TYPE_CHECKING:
    from PIL import Image

MAGIC = b"PKIM"
HEADER_VERSION = 1
HEADER = struct.Struct("<4sHHII")
"""magic, header version, pixel-format code, width, height: 16 bytes, little-endian."""

PixelFormat = Literal["rgba8", "rgb8", "l8", "rgba16", "rgb16", "l16"]

# Codes are part of the pack format: never renumber; 0 stays invalid so a zeroed header is caught.
FORMAT_CODES: dict[str, int] = {"rgba8": 1, "rgb8": 2, "l8": 3, "rgba16": 4, "rgb16": 5, "l16": 6}
_PIL_MODES: dict[str, str] = {
    "rgba8": "RGBA",
    "rgb8": "RGB",
    "l8": "L",
    "rgba16": "RGBA",
    "rgb16": "RGB",
    "l16": "L",
}
_SIXTEEN_BIT = frozenset({"rgba16", "rgb16", "l16"})

# Pillow's modes for one channel of 16-bit samples, with the byte order ``tobytes`` gives them in.
_GREY16_MODES: dict[str, Literal["little", "big"]] = {
    "I;16": "little",
    "I;16L": "little",
    "I;16B": "big",
    "I;16N": sys.byteorder,
}

# EPS is decoded by running Ghostscript: an outside program whose version would decide the pixels.
_REFUSED_FORMATS = frozenset({"EPS"})


class ImageParams(BaseModel):
    """Options of ``image``; frozen and closed, so a typo in asset.json is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: PixelFormat = "rgba8"


class ImageKind:
    """Decodes one image (first frame) to 8- or 16-bit pixels, row-major, top row first."""

    name: ClassVar[str] = "image"
    version: ClassVar[int] = 1
    # Pillow decodes every format and converts the pixels: its version decides the bytes.
    libraries: ClassVar[tuple[str, ...]] = ("Pillow",)
    Params: ClassVar[type[BaseModel]] = ImageParams

    def process(self, ctx: KindContext) -> bytes:
        params = ctx.params
        if not isinstance(params, ImageParams):
            raise TypeError(f"image kind needs ImageParams, got {type(params).__name__}")
        if len(ctx.inputs) != 1:
            raise KindError(f"image takes exactly one input, got {len(ctx.inputs)}")
        input_name, data = ctx.input_names[0], ctx.inputs[0]
        width, height, pixels = _decode(data, input_name, params.format)
        header = HEADER.pack(MAGIC, HEADER_VERSION, FORMAT_CODES[params.format], width, height)
        return header + pixels


def _decode(data: bytes, input_name: str, fmt: str) -> tuple[int, int, bytes]:
    from PIL import Image

    mode = _PIL_MODES[fmt]
    wide = fmt in _SIXTEEN_BIT
    try:
        # A BytesIO, never a path: Pillow sees exactly the bytes the task hashed and nothing else.
        with Image.open(io.BytesIO(data)) as image:
            if image.format in _REFUSED_FORMATS:
                raise KindError(f"{input_name}: {image.format} images are not supported")
            if wide and _is_colour_png16(image):
                # Pillow's PNG decoder keeps only the high byte of each colour sample.
                raise KindError(
                    f"{input_name}: a 16-bit colour PNG reaches packer with 8 bits per channel "
                    "(Pillow keeps only the high byte), so a 16-bit format would be wrong; "
                    "use an 8-bit format, or store the channels as 16-bit greyscale images"
                )
            if wide and image.mode in _GREY16_MODES:
                return image.width, image.height, _grey16(image, fmt, _GREY16_MODES[image.mode])
            if image.mode in ("I", "F") or image.mode.startswith("I;"):
                # Pillow clips these to 0..255 instead of scaling: refuse rather than corrupt.
                raise KindError(
                    f"{input_name}: image mode {image.mode!r} has more than 8 bits per channel; "
                    "use format l16, rgb16 or rgba16 (16-bit greyscale only), "
                    "or save it with 8 bits per channel"
                )
            converted = image.convert(mode)
            pixels = converted.tobytes()
            if wide:
                pixels = _widen(pixels)
            return converted.width, converted.height, pixels
    except KindError:
        raise
    except Exception as err:
        # Pillow's decoders report corrupt data with many exception types (OSError, SyntaxError,
        # ValueError, struct.error, DecompressionBombError...); all of them mean a bad input file.
        # Pillow names the stream object in some messages; its memory address means nothing
        # to a user and would make the same failure print differently on every run.
        reason = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(err))
        raise KindError(f"{input_name}: not a readable image: {reason}") from None


def _is_colour_png16(image: Image.Image) -> bool:
    """A 16-bit RGB, RGBA or grey+alpha PNG, which Pillow decodes to 8 bits per channel."""
    from PIL import ImageFile

    # The decoder's raw mode says the bit depth, and only until the pixels are loaded.
    if image.format != "PNG" or not isinstance(image, ImageFile.ImageFile) or not image.tile:
        return False
    args = image.tile[0].args
    rawmode = args if isinstance(args, str) else ""
    return rawmode in ("RGB;16B", "RGBA;16B", "LA;16B")


def _widen(pixels: bytes) -> bytes:
    """8-bit samples to 16-bit little-endian ones, v * 257: 0 stays 0 and 255 becomes 65535."""
    out = bytearray(2 * len(pixels))
    out[0::2] = pixels
    out[1::2] = pixels
    return bytes(out)


def _grey16(image: Image.Image, fmt: str, order: Literal["little", "big"]) -> bytes:
    """16-bit greyscale samples, exactly as stored, to l16, rgb16 or rgba16 (little-endian)."""
    raw = image.tobytes()
    low, high = (raw[0::2], raw[1::2]) if order == "little" else (raw[1::2], raw[0::2])
    if fmt == "l16":
        out = bytearray(len(raw))
        out[0::2], out[1::2] = low, high
        return bytes(out)
    channels = 3 if fmt == "rgb16" else 4
    step = 2 * channels
    out = bytearray(len(raw) * channels)
    for channel in range(3):
        out[2 * channel :: step] = low
        out[2 * channel + 1 :: step] = high
    if channels == 4:
        alpha = bytearray(b"\xff\xff") * (len(raw) // 2)
        transparent = image.info.get("transparency")
        if isinstance(transparent, int):
            # A PNG tRNS grey value: the pixels of exactly that sample are fully transparent.
            for index in range(len(raw) // 2):
                if low[index] | high[index] << 8 == transparent:
                    alpha[2 * index : 2 * index + 2] = b"\x00\x00"
        out[6::8] = alpha[0::2]
        out[7::8] = alpha[1::2]
    return bytes(out)
