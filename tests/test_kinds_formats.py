"""Formats real asset sets hold: 16-bit PNGs for ``image``.

The 16-bit PNGs are written here byte by byte (struct + zlib), so the expected samples are known
exactly and do not come from the decoder under test.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping, Sequence

import pytest
from PIL import Image
from pydantic import ValidationError

from packer.errors import KindError
from packer.kinds.base import KindContext
from packer.kinds.registry import builtin_kinds

KINDS = builtin_kinds()


def run(kind_name: str, inputs: Sequence[tuple[str, bytes]], params: Mapping[str, object]) -> bytes:
    kind = KINDS[kind_name]
    ctx = KindContext(
        input_names=tuple(name for name, _ in inputs),
        inputs=tuple(data for _, data in inputs),
        params=kind.Params.model_validate(dict(params)),
    )
    return kind.process(ctx)


def kind_error(kind_name: str, inputs: Sequence[tuple[str, bytes]], **params: object) -> str:
    with pytest.raises(KindError) as caught:
        run(kind_name, inputs, params)
    return caught.value.message


# --- 16-bit PNGs -----------------------------------------------------------------------------


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png16(width: int, colour_type: int, rows: Sequence[Sequence[int]], trns: bytes = b"") -> bytes:
    """A 16-bit PNG of these big-endian samples (filter 0 on every row, not interlaced)."""
    ihdr = struct.pack(">IIBBBBB", width, len(rows), 16, colour_type, 0, 0, 0)
    raw = b"".join(b"\x00" + struct.pack(f">{len(row)}H", *row) for row in rows)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", ihdr),
            _chunk(b"tRNS", trns) if trns else b"",
            _chunk(b"IDAT", zlib.compress(raw)),
            _chunk(b"IEND", b""),
        ]
    )


GREY16 = [[0x7F80, 0x8080, 0xFFFF], [0x0080, 0x0000, 0x1234]]
"""3 x 2 greyscale samples, among them 0x7F80, 0x8080, 0xFFFF and 0x0080."""


def _le16(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


def _header(out: bytes) -> tuple[bytes, int, int, int, int]:
    magic, version, code, width, height = struct.unpack_from("<4sHHII", out)
    return magic, version, code, width, height


def test_handwritten_grey16_png_is_what_pillow_calls_i16() -> None:
    with Image.open(io.BytesIO(_png16(3, 0, GREY16))) as image:
        assert image.mode == "I;16"


def test_l16_keeps_every_16_bit_sample() -> None:
    out = run("image", [("height.png", _png16(3, 0, GREY16))], {"format": "l16"})
    assert out[:16] == b"PKIM\x01\x00\x06\x00\x03\x00\x00\x00\x02\x00\x00\x00"
    assert out[16:] == _le16(0x7F80, 0x8080, 0xFFFF, 0x0080, 0x0000, 0x1234)


def test_rgb16_and_rgba16_expand_grey16_to_three_channels() -> None:
    png = _png16(3, 0, GREY16)
    samples = [value for row in GREY16 for value in row]
    rgb = run("image", [("g.png", png)], {"format": "rgb16"})
    assert _header(rgb) == (b"PKIM", 1, 5, 3, 2)
    assert rgb[16:] == _le16(*(v for value in samples for v in (value, value, value)))
    rgba = run("image", [("g.png", png)], {"format": "rgba16"})
    assert _header(rgba) == (b"PKIM", 1, 4, 3, 2)
    assert rgba[16:] == _le16(*(v for value in samples for v in (value, value, value, 0xFFFF)))


def test_rgba16_grey16_trns_value_is_transparent() -> None:
    png = _png16(3, 0, GREY16, trns=struct.pack(">H", 0x8080))
    out = run("image", [("g.png", png)], {"format": "rgba16"})
    pixels = struct.unpack(f"<{6 * 4}H", out[16:])
    assert pixels[3::4] == (0xFFFF, 0x0000, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF)
    assert pixels[4:7] == (0x8080, 0x8080, 0x8080)


def test_8_bit_sources_widen_exactly_into_16_bit_formats() -> None:
    image = Image.new("RGBA", (2, 1))
    image.putpixel((0, 0), (0, 1, 128, 255))
    image.putpixel((1, 0), (255, 254, 127, 0))
    out = run("image", [("a.png", _encode_png(image))], {"format": "rgba16"})
    assert _header(out) == (b"PKIM", 1, 4, 2, 1)
    assert out[16:] == _le16(0, 257, 128 * 257, 0xFFFF, 0xFFFF, 254 * 257, 127 * 257, 0)
    grey = run("image", [("a.png", _encode_png(image))], {"format": "l16"})
    eight = run("image", [("a.png", _encode_png(image))], {"format": "l8"})
    assert grey[16:] == _le16(*(v * 257 for v in eight[16:]))


def _encode_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("colour_type", [2, 4, 6])
def test_colour_16_bit_png_is_refused_in_16_bit_formats(colour_type: int) -> None:
    # Pillow decodes these to 8 bits per channel (high byte only): a 16-bit output would lie.
    channels = {2: 3, 4: 2, 6: 4}[colour_type]
    png = _png16(1, colour_type, [[0x7F80, 0x8080, 0xFFFF, 0x0080][:channels]])
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode in ("RGB", "RGBA")
    for fmt in ("rgba16", "rgb16", "l16"):
        message = kind_error("image", [("deep.png", png)], format=fmt)
        assert message.startswith("deep.png: a 16-bit colour PNG reaches packer with 8 bits")


def test_grey16_into_an_8_bit_format_names_the_16_bit_formats() -> None:
    message = kind_error("image", [("deep.png", _png16(3, 0, GREY16))], format="l8")
    assert message.startswith("deep.png: image mode 'I;16' has more than 8 bits per channel")
    assert "l16" in message


def test_unknown_16_bit_format_name_is_a_params_error() -> None:
    with pytest.raises(ValidationError) as caught:
        KINDS["image"].Params.model_validate({"format": "rgba16be"})
    assert "rgba16be" in str(caught.value)
