"""The ``atlas`` kind: several images in one texture, with a table of named rectangles.

Sprite sheets and animation frames are drawn as separate files and shipped as one texture, so a
game binds one texture and draws sub-rectangles of it. Each input is decoded exactly as ``image``
decodes it to ``rgba8`` (``image.decode``: same formats, same refusals, same rounding of 16-bit
samples), optionally trimmed to the box of its non-transparent pixels, and placed by
``packer.kinds.skyline``. The rectangles are named by their input paths and handled in the byte
order of those names, so the declared order of the inputs changes no byte. The texture is a
complete ``image`` entry, so a runtime that loads images loads it with the same code.
Imports: stdlib, pydantic, Pillow (lazily), packer.kinds.base, packer.kinds.image,
packer.kinds.skyline, packer.errors.
"""

from __future__ import annotations

import posixpath
import struct
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

import packer.kinds.image as image
from packer.errors import KindError
from packer.kinds.base import KindContext
from packer.kinds.skyline import pack

MAGIC = b"PKAT"
HEADER_VERSION = 1
HEADER = struct.Struct("<4sHHII")
"""magic, header version, zero, rectangle count, name table size: 16 bytes, little-endian."""
RECORD = struct.Struct("<10I")
"""name offset, name length, x, y, width, height, trim x, trim y, source width, source height."""

LARGEST_TEXTURE = 16384
"""The largest side GPUs commonly take; one such RGBA texture is already 1 GiB."""


class AtlasParams(BaseModel):
    """Options of ``atlas``; frozen, closed and strict, so a typo or a quoted number in asset.json
    is an error, not a different texture."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_size: int = Field(default=4096, ge=1, le=LARGEST_TEXTURE)
    """The largest width and height the texture may have."""
    power_of_two: bool = False
    """Round the texture's width and height up to powers of two (at most ``max_size``)."""
    padding: int = Field(default=0, ge=0, le=LARGEST_TEXTURE)
    """Transparent pixels between any two rectangles (not along the texture's edges)."""
    trim: bool = False
    """Cut each image to the box of its pixels with alpha above 0."""


@dataclass(frozen=True)
class _Sprite:
    name: str
    source_width: int
    source_height: int
    pixels: bytes
    """The source's rgba8 pixels, all of them."""
    box: tuple[int, int, int, int]
    """What goes into the texture: left, top, right, bottom within the source."""

    @property
    def size(self) -> tuple[int, int]:
        left, top, right, bottom = self.box
        return right - left, bottom - top


class AtlasKind:
    """Packs its inputs' images into one rgba8 texture behind a table of named rectangles."""

    name: ClassVar[str] = "atlas"
    version: ClassVar[int] = 1
    # Decoding is image's: Pillow for every format, pypng for 16-bit colour PNGs.
    libraries: ClassVar[tuple[str, ...]] = ("Pillow", "pypng")
    Params: ClassVar[type[BaseModel]] = AtlasParams

    def process(self, ctx: KindContext) -> bytes:
        params = ctx.params
        if not isinstance(params, AtlasParams):
            raise TypeError(f"atlas kind needs AtlasParams, got {type(params).__name__}")
        if not ctx.inputs:
            raise KindError("atlas needs at least one input")
        sprites = _sprites(ctx, params.trim)
        limit = _limit(params)
        placed = [sprite for sprite in sprites if sprite.size != (0, 0)]
        for sprite in placed:
            width, height = sprite.size
            if width > limit or height > limit:
                trimmed = " after trimming" if params.trim else ""
                raise KindError(
                    f"{sprite.name}: {width}x{height} pixels{trimmed} is larger than the "
                    f"largest texture, {_limit_words(params)}"
                )
        positions: dict[str, tuple[int, int]] = {}
        # Only images trimmed to nothing: they take no space, and the texture is one pixel.
        width = height = 1
        if placed:
            layout = pack([s.size for s in placed], limit, params.padding, params.power_of_two)
            if layout is None:
                raise KindError(
                    f"{len(placed)} images do not fit in one texture of {_limit_words(params)} "
                    f"with padding {params.padding}; raise max_size or split them into "
                    "several atlases"
                )
            positions = dict(zip((s.name for s in placed), layout.positions, strict=True))
            width, height = layout.width, layout.height
        table = _table(sprites, positions)
        texture = _texture(placed, positions, width, height)
        header = image.HEADER.pack(
            image.MAGIC, image.HEADER_VERSION, image.FORMAT_CODES["rgba8"], width, height
        )
        return table + header + texture


def _sprites(ctx: KindContext, trim: bool) -> list[_Sprite]:
    """Each input decoded, named by its normalised path, in the byte order of the names."""
    from PIL import Image

    by_name: dict[str, str] = {}
    sprites: list[_Sprite] = []
    for input_name, data in zip(ctx.input_names, ctx.inputs, strict=True):
        name = posixpath.normpath(input_name)
        if name in by_name:
            raise KindError(
                f"{input_name}: names the same rectangle {name!r} as input {by_name[name]!r}"
            )
        by_name[name] = input_name
        width, height, pixels = image.decode(data, input_name, "rgba8")
        box = (0, 0, width, height)
        if trim:
            alpha = Image.frombytes("RGBA", (width, height), pixels).getchannel("A")
            box = alpha.getbbox() or (0, 0, 0, 0)
        sprites.append(_Sprite(name, width, height, pixels, box))
    return sorted(sprites, key=lambda sprite: sprite.name.encode())


def _limit(params: AtlasParams) -> int:
    """The longest side the texture may have: max_size, or the power of two at or below it."""
    if params.power_of_two:
        return 1 << (params.max_size.bit_length() - 1)
    return params.max_size


def _limit_words(params: AtlasParams) -> str:
    limit = _limit(params)
    if limit == params.max_size:
        return f"max_size {limit}x{limit}"
    return f"{limit}x{limit} (the largest power of two within max_size {params.max_size})"


def _table(sprites: list[_Sprite], positions: dict[str, tuple[int, int]]) -> bytes:
    records: list[bytes] = []
    names = bytearray()
    for sprite in sprites:
        encoded = sprite.name.encode()
        x, y = positions.get(sprite.name, (0, 0))
        width, height = sprite.size
        left, top = sprite.box[:2] if (width, height) != (0, 0) else (0, 0)
        records.append(
            RECORD.pack(
                len(names),
                len(encoded),
                x,
                y,
                width,
                height,
                left,
                top,
                sprite.source_width,
                sprite.source_height,
            )
        )
        names += encoded
    header = HEADER.pack(MAGIC, HEADER_VERSION, 0, len(sprites), len(names))
    return header + b"".join(records) + bytes(names)


def _texture(
    placed: list[_Sprite], positions: dict[str, tuple[int, int]], width: int, height: int
) -> bytes:
    from PIL import Image

    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    for sprite in placed:
        source = Image.frombytes("RGBA", (sprite.source_width, sprite.source_height), sprite.pixels)
        canvas.paste(source.crop(sprite.box), positions[sprite.name])
    return canvas.tobytes()
