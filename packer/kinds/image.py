"""The ``image`` kind: pixels a runtime can upload without an image decoder.

Decoding happens once, at build time, into one of a few fixed pixel formats behind a 16-byte
header, so the game needs no PNG library and every platform sees the same pixels. Pillow decodes
every format; 16-bit samples go through ``packer.kinds.samples16`` (pypng for the colour PNGs
that Pillow cuts to 8 bits), so no bit is dropped and 8-bit outputs are rounded, not truncated.
Pillow is imported inside ``process`` because most commands never decode an image and its
import is slow.
Imports: stdlib, pydantic, Pillow (lazily), packer.kinds.base, packer.kinds.samples16,
packer.errors.
"""

from __future__ import annotations

import io
import re
import struct
import sys
from array import array
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from packer.errors import KindError
from packer.kinds.base import KindContext
from packer.kinds.samples16 import Samples16, decode_png16, emit

if TYPE_CHECKING:
    from PIL import Image

MAGIC = b"PKIM"
HEADER_VERSION = 1
HEADER = struct.Struct("<4sHHII")
"""magic, header version, pixel-format code, width, height: 16 bytes, little-endian."""

PixelFormat = Literal["rgba8", "rgb8", "l8", "rgba16", "rgb16", "l16"]

# Codes are part of the pack format: never renumber; 0 stays invalid so a zeroed header is caught.
FORMAT_CODES: dict[str, int] = {"rgba8": 1, "rgb8": 2, "l8": 3, "rgba16": 4, "rgb16": 5, "l16": 6}
_PIL_MODES: dict[PixelFormat, str] = {
    "rgba8": "RGBA",
    "rgb8": "RGB",
    "l8": "L",
    "rgba16": "RGBA",
    "rgb16": "RGB",
    "l16": "L",
}
_SIXTEEN_BIT: frozenset[PixelFormat] = frozenset({"rgba16", "rgb16", "l16"})

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
    # 2: 16-bit colour PNGs keep all their bits (pypng); 16-bit samples round into 8-bit formats.
    version: ClassVar[int] = 2
    # Pillow decodes every format and converts the pixels; pypng decodes 16-bit colour PNGs.
    libraries: ClassVar[tuple[str, ...]] = ("Pillow", "pypng")
    Params: ClassVar[type[BaseModel]] = ImageParams

    def process(self, ctx: KindContext) -> bytes:
        params = ctx.params
        if not isinstance(params, ImageParams):
            raise TypeError(f"image kind needs ImageParams, got {type(params).__name__}")
        if len(ctx.inputs) != 1:
            raise KindError(f"image takes exactly one input, got {len(ctx.inputs)}")
        input_name, data = ctx.input_names[0], ctx.inputs[0]
        width, height, pixels = decode(data, input_name, params.format)
        header = HEADER.pack(MAGIC, HEADER_VERSION, FORMAT_CODES[params.format], width, height)
        return header + pixels


def decode(data: bytes, input_name: str, fmt: PixelFormat) -> tuple[int, int, bytes]:
    """An image's first frame as ``fmt`` pixels: width, height and the rows, top row first;
    raises ``KindError`` naming ``input_name`` for data that is no image this kind reads."""
    from PIL import Image, UnidentifiedImageError

    try:
        # A BytesIO, never a path: Pillow sees exactly the bytes the task hashed and nothing else.
        with Image.open(io.BytesIO(data)) as image:
            if image.format in _REFUSED_FORMATS:
                raise KindError(f"{input_name}: {image.format} images are not supported")
            if _is_colour_png16(image):
                # Pillow's PNG decoder keeps only the high byte of each colour sample.
                samples = decode_png16(data)
                return samples.width, samples.height, emit(samples, fmt)
            if image.mode in _GREY16_MODES:
                samples = _grey16(image, _GREY16_MODES[image.mode])
                return samples.width, samples.height, emit(samples, fmt)
            if image.mode in ("I", "F") or image.mode.startswith("I;"):
                # Pillow clips these to 0..255 instead of scaling: refuse rather than corrupt.
                raise KindError(
                    f"{input_name}: image mode {image.mode!r} (32-bit integer or float samples) "
                    "is not supported; save it with 8 or 16 bits per channel"
                )
            converted = image.convert(_PIL_MODES[fmt])
            pixels = converted.tobytes()
            if fmt in _SIXTEEN_BIT:
                pixels = _widen(pixels)
            return converted.width, converted.height, pixels
    except KindError:
        raise
    except UnidentifiedImageError:
        raise KindError(_unidentified(input_name, data)) from None
    except Exception as err:
        # Pillow's and pypng's decoders report corrupt data with many exception types (OSError,
        # SyntaxError, ValueError, struct.error, png.FormatError, DecompressionBombError...); all
        # of them mean a bad input file. Pillow names the stream object in some messages; its
        # memory address would make the same failure print differently on every run.
        reason = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(err))
        raise KindError(f"{input_name}: not a readable image: {reason}") from None


_SVG_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg\b", re.S
)


def _unidentified(input_name: str, data: bytes) -> str:
    """The message for bytes Pillow recognises no format in; SVG gets its own, being common."""
    if _SVG_START.match(data[:4096]):
        return (
            f"{input_name}: SVG is a vector format and image does not rasterise it; "
            "export it to PNG at the size the game needs"
        )
    return f"{input_name}: not a readable image: no image format Pillow reads recognises this data"


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


def _grey16(image: Image.Image, order: Literal["little", "big"]) -> Samples16:
    """A 16-bit greyscale image's samples exactly as stored, with its tRNS grey value as alpha."""
    grey = array("H", image.tobytes())
    if order != sys.byteorder:
        grey.byteswap()
    transparent = image.info.get("transparency")
    key = (transparent,) if isinstance(transparent, int) else None
    return Samples16.from_planes(image.width, image.height, (grey,), None, key)
