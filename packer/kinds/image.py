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
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from packer.errors import KindError
from packer.kinds.base import KindContext

MAGIC = b"PKIM"
HEADER_VERSION = 1
HEADER = struct.Struct("<4sHHII")
"""magic, header version, pixel-format code, width, height: 16 bytes, little-endian."""

PixelFormat = Literal["rgba8", "rgb8", "l8"]

# Codes are part of the pack format: never renumber; 0 stays invalid so a zeroed header is caught.
FORMAT_CODES: dict[str, int] = {"rgba8": 1, "rgb8": 2, "l8": 3}
_PIL_MODES: dict[str, str] = {"rgba8": "RGBA", "rgb8": "RGB", "l8": "L"}

# EPS is decoded by running Ghostscript: an outside program whose version would decide the pixels.
_REFUSED_FORMATS = frozenset({"EPS"})


class ImageParams(BaseModel):
    """Options of ``image``; frozen and closed, so a typo in asset.json is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: PixelFormat = "rgba8"


class ImageKind:
    """Decodes one image (first frame) to 8-bit pixels, row-major, top row first."""

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
        width, height, pixels = _decode(data, input_name, _PIL_MODES[params.format])
        header = HEADER.pack(MAGIC, HEADER_VERSION, FORMAT_CODES[params.format], width, height)
        return header + pixels


def _decode(data: bytes, input_name: str, mode: str) -> tuple[int, int, bytes]:
    from PIL import Image

    try:
        # A BytesIO, never a path: Pillow sees exactly the bytes the task hashed and nothing else.
        with Image.open(io.BytesIO(data)) as image:
            if image.format in _REFUSED_FORMATS:
                raise KindError(f"{input_name}: {image.format} images are not supported")
            if image.mode in ("I", "F") or image.mode.startswith("I;"):
                # Pillow clips these to 0..255 instead of scaling: refuse rather than corrupt.
                raise KindError(
                    f"{input_name}: image mode {image.mode!r} has more than 8 bits per channel; "
                    "save it with 8 bits per channel"
                )
            converted = image.convert(mode)
            return converted.width, converted.height, converted.tobytes()
    except KindError:
        raise
    except Exception as err:
        # Pillow's decoders report corrupt data with many exception types (OSError, SyntaxError,
        # ValueError, struct.error, DecompressionBombError...); all of them mean a bad input file.
        # Pillow names the stream object in some messages; its memory address means nothing
        # to a user and would make the same failure print differently on every run.
        reason = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", str(err))
        raise KindError(f"{input_name}: not a readable image: {reason}") from None
