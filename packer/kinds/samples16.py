"""16-bit image samples and the one way they become an ``image`` pixel format.

Pillow has no 16-bit colour mode: it decodes a 16-bit RGB, RGBA or grey+alpha PNG to the high byte
of each sample. Those PNGs are decoded here with pypng instead, a pure-Python PNG codec: every
sample arrives as stored, and its output cannot vary with a C library or a CPU. 16-bit greyscale
(which Pillow keeps whole) arrives from ``image`` as planes too, so both meet one conversion:
16-bit formats store the samples, 8-bit ones round them, ``v8 = (v16 * 255 + 32767) // 65535``,
never keep the high byte (which is one below the rounded value for 0x7F80, say).
Imports: stdlib, pypng (lazily), packer.kinds.base.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass
from functools import cache

from packer.kinds.base import missing_library

OPAQUE = 0xFFFF

# Pillow's own luma weights (ITU-R 601-2 in 16-bit fixed point, summing to 65536), so a 16-bit
# source and its 8-bit copy give the same grey up to rounding.
_LUMA_WEIGHTS = (19595, 38470, 7471)


@dataclass(frozen=True)
class Samples16:
    """An image as planes of 16-bit samples: one (grey) or three (R, G, B), and alpha."""

    width: int
    height: int
    colour: tuple[array[int], ...]
    alpha: array[int]

    @classmethod
    def from_planes(
        cls,
        width: int,
        height: int,
        colour: tuple[array[int], ...],
        alpha: array[int] | None,
        transparent: tuple[int, ...] | None,
    ) -> Samples16:
        """Planes as decoded; without an alpha plane, a PNG ``tRNS`` colour (``transparent``)
        marks the pixels of exactly that colour A = 0 and every other pixel is opaque."""
        if alpha is None:
            if transparent is None:
                alpha = array("H", [OPAQUE]) * (width * height)
            else:
                alpha = array(
                    "H",
                    (0 if pixel == transparent else OPAQUE for pixel in zip(*colour, strict=True)),
                )
        return cls(width, height, colour, alpha)


def decode_png16(data: bytes) -> Samples16:
    """A 16-bit PNG's samples, every bit kept; raises pypng's errors for a damaged file."""
    try:
        import png
    except ImportError:
        raise missing_library("pypng", "png16") from None

    # read_flat gives the stored samples: no sBIT rescaling and no gamma, unlike asDirect.
    width, height, samples, info = png.Reader(bytes=data).read_flat()
    planes: int = info["planes"]
    channels = tuple(array("H", samples[plane::planes]) for plane in range(planes))
    alpha = channels[-1] if info["alpha"] else None
    colour = channels[:1] if info["greyscale"] else channels[:3]
    transparent = info.get("transparent")
    if isinstance(transparent, int):
        transparent = (transparent,)
    return Samples16.from_planes(width, height, colour, alpha, transparent)


def emit(samples: Samples16, fmt: str) -> bytes:
    """The pixels of ``fmt`` (``rgba16``, ``l8``...): interleaved, row-major, little-endian."""
    planes = _planes(samples, fmt.removesuffix("16").removesuffix("8"))
    count = samples.width * samples.height
    out = array("H", bytes(2 * count * len(planes)))
    for index, plane in enumerate(planes):
        out[index :: len(planes)] = plane
    if not fmt.endswith("16"):
        return bytes(map(_round_to_8_bits().__getitem__, out))
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def _planes(samples: Samples16, layout: str) -> list[array[int]]:
    colour = samples.colour
    if layout == "l":
        return [colour[0] if len(colour) == 1 else _luma(*colour)]
    rgb = list(colour) * 3 if len(colour) == 1 else list(colour)
    return [*rgb, samples.alpha] if layout == "rgba" else rgb


def _luma(red: array[int], green: array[int], blue: array[int]) -> array[int]:
    wr, wg, wb = _LUMA_WEIGHTS
    return array(
        "H",
        (
            (r * wr + g * wg + b * wb + 0x8000) >> 16
            for r, g, b in zip(red, green, blue, strict=True)
        ),
    )


@cache
def _round_to_8_bits() -> bytes:
    """Every 16-bit sample's correctly rounded 8-bit value, by index."""
    return bytes((value * 255 + 32767) // 65535 for value in range(65536))
