"""Formats real asset sets hold: 16-bit PNGs for ``image``, legacy encodings for ``text``.

The 16-bit PNGs are written here byte by byte (struct + zlib, with every PNG row filter), so the
expected samples are known exactly and do not come from the decoder under test.
"""

from __future__ import annotations

import io
import random
import struct
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from conftest import Result, run_doit, write_asset
from PIL import Image
from pydantic import ValidationError

from packer.errors import KindError
from packer.kinds.base import KindContext
from packer.kinds.registry import builtin_kinds
from packer.pack import PackReader

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


CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
"""Samples per pixel of each PNG colour type: grey, RGB, grey+alpha, RGBA."""


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
    return (left, up, up_left)[distances.index(min(distances))]


def _filtered(row: bytes, prior: bytes, kind: int, bpp: int) -> bytes:
    """One scanline under PNG filter ``kind`` (0 none, 1 sub, 2 up, 3 average, 4 paeth)."""
    out = bytearray([kind])
    for index, byte in enumerate(row):
        left = row[index - bpp] if index >= bpp else 0
        up = prior[index]
        up_left = prior[index - bpp] if index >= bpp else 0
        predictor = (0, left, up, (left + up) // 2, _paeth(left, up, up_left))[kind]
        out.append((byte - predictor) % 256)
    return bytes(out)


def _random_png16(colour_type: int, width: int, height: int, seed: int) -> tuple[bytes, list[int]]:
    """A 16-bit PNG of random samples, its rows under all five filters; and its samples in order."""
    rng = random.Random(seed)
    stride = width * CHANNELS[colour_type]
    samples = [rng.randrange(65536) for _ in range(height * stride)]
    rows = [
        struct.pack(f">{stride}H", *samples[y * stride : (y + 1) * stride]) for y in range(height)
    ]
    priors = [bytes(2 * stride), *rows[:-1]]
    bpp = 2 * CHANNELS[colour_type]
    raw = b"".join(
        _filtered(row, prior, y % 5, bpp)
        for y, (row, prior) in enumerate(zip(rows, priors, strict=True))
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    chunks = [_chunk(b"IHDR", ihdr), _chunk(b"IDAT", zlib.compress(raw)), _chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks), samples


def _round8(value: int) -> int:
    return (value * 255 + 32767) // 65535


def _as_rgba(colour_type: int, samples: Sequence[int]) -> list[int]:
    """The RGBA samples of a source's samples: grey copied to R, G and B, missing alpha opaque."""
    channels = CHANNELS[colour_type]
    out: list[int] = []
    for index in range(0, len(samples), channels):
        pixel = samples[index : index + channels]
        colour = list(pixel[:3]) if channels >= 3 else [pixel[0]] * 3
        alpha = pixel[-1] if channels in (2, 4) else 0xFFFF
        out += [*colour, alpha]
    return out


@pytest.mark.parametrize("colour_type", [2, 4, 6])
def test_colour_16_bit_png_keeps_every_sample_in_rgba16_and_rgb16(colour_type: int) -> None:
    png, samples = _random_png16(colour_type, 7, 5, seed=colour_type)
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode in ("RGB", "RGBA", "LA")  # Pillow itself decodes these to 8 bits
    rgba = _as_rgba(colour_type, samples)
    out = run("image", [("deep.png", png)], {"format": "rgba16"})
    assert _header(out) == (b"PKIM", 1, 4, 7, 5)
    assert out[16:] == _le16(*rgba)
    out = run("image", [("deep.png", png)], {"format": "rgb16"})
    assert out[16:] == _le16(*(v for index, v in enumerate(rgba) if index % 4 != 3))


@pytest.mark.parametrize("colour_type", [0, 2, 4, 6])
def test_16_bit_png_rounds_into_8_bit_formats(colour_type: int) -> None:
    png, samples = _random_png16(colour_type, 9, 6, seed=10 + colour_type)
    rgba = _as_rgba(colour_type, samples)
    out = run("image", [("deep.png", png)], {"format": "rgba8"})
    assert _header(out) == (b"PKIM", 1, 1, 9, 6)
    assert list(out[16:]) == [_round8(v) for v in rgba]
    # Rounded, not the high byte: among random samples some of the two differ.
    assert list(out[16:]) != [v >> 8 for v in rgba]
    out = run("image", [("deep.png", png)], {"format": "rgb8"})
    assert list(out[16:]) == [_round8(v) for index, v in enumerate(rgba) if index % 4 != 3]


def _luma16(red: int, green: int, blue: int) -> int:
    return (red * 19595 + green * 38470 + blue * 7471 + 0x8000) >> 16


@pytest.mark.parametrize("colour_type", [2, 4, 6])
def test_16_bit_colour_png_to_l16_and_l8_is_luma_then_rounding(colour_type: int) -> None:
    png, samples = _random_png16(colour_type, 4, 3, seed=20 + colour_type)
    rgba = _as_rgba(colour_type, samples)
    luma = [_luma16(*rgba[index : index + 3]) for index in range(0, len(rgba), 4)]
    assert run("image", [("deep.png", png)], {"format": "l16"})[16:] == _le16(*luma)
    eight = run("image", [("deep.png", png)], {"format": "l8"})
    assert list(eight[16:]) == [_round8(v) for v in luma]


def test_rgb16_trns_colour_is_transparent() -> None:
    rows = [[0x0102, 0x0304, 0x0506, 0x0102, 0x0304, 0x0507]]
    png = _png16(2, 2, rows, trns=struct.pack(">3H", 0x0102, 0x0304, 0x0506))
    out = run("image", [("key.png", png)], {"format": "rgba16"})
    assert out[16:] == _le16(0x0102, 0x0304, 0x0506, 0, 0x0102, 0x0304, 0x0507, 0xFFFF)


def test_interlaced_16_bit_png_written_by_pypng() -> None:
    import png as pypng

    rng = random.Random(7)
    width, height = 11, 9
    rows = [[rng.randrange(65536) for _ in range(width * 4)] for _ in range(height)]
    out = io.BytesIO()
    pypng.Writer(width, height, greyscale=False, alpha=True, bitdepth=16, interlace=True).write(
        out, rows
    )
    built = run("image", [("i.png", out.getvalue())], {"format": "rgba16"})
    assert built[16:] == _le16(*(v for row in rows for v in row))


def test_grey16_rounds_into_l8() -> None:
    out = run("image", [("deep.png", _png16(3, 0, GREY16))], {"format": "l8"})
    assert list(out[16:]) == [_round8(v) for row in GREY16 for v in row]


def test_damaged_16_bit_colour_png_is_not_a_readable_image() -> None:
    png, _ = _random_png16(6, 8, 8, seed=3)
    idat = png.index(b"IDAT")
    broken = png[: idat + 10] + bytes(8) + png[idat + 18 :]
    message = kind_error("image", [("deep.png", broken)], format="rgba16")
    assert message.startswith("deep.png: not a readable image: ")


def test_16_bit_colour_png_through_a_real_build(workspace: Path) -> None:
    png, samples = _random_png16(6, 5, 4, seed=99)
    params = {"format": "rgba16"}
    decl = {"asset_name": "hero", "kind": "image", "inputs": ["hero.png"], "params": params}
    write_asset(workspace, "assets/hero", decl, {"hero.png": png})
    done = run_doit(workspace)
    assert done.code == 0, done.err
    with PackReader(str(workspace / "build/game.pack")) as reader:
        entry = reader.get_by_name("hero")
    assert entry[16:] == _le16(*samples)


def test_unknown_16_bit_format_name_is_a_params_error() -> None:
    with pytest.raises(ValidationError) as caught:
        KINDS["image"].Params.model_validate({"format": "rgba16be"})
    assert "rgba16be" in str(caught.value)


# --- text in other encodings -----------------------------------------------------------------

PO_LATIN1 = (
    'msgid ""\r\nmsgstr ""\r\n"Content-Type: text/plain; charset=ISO-8859-1\\n"\r\n\r\n'
    'msgid "coffee"\r\nmsgstr "caf\u00e9 cr\u00e8me \u00e0 la fran\u00e7aise"\r\n'
).encode("latin-1")


def test_latin1_po_file_comes_out_as_utf8_with_lf() -> None:
    out = run("text", [("fr.po", PO_LATIN1)], {"encoding": "latin-1"})
    assert out == PO_LATIN1.decode("latin-1").replace("\r\n", "\n").encode("utf-8")
    assert "caf\u00e9 cr\u00e8me".encode() in out


def test_default_encoding_is_utf8_and_unchanged() -> None:
    data = "\ufeffh\u00e9\r\nllo".encode()
    assert run("text", [("a.txt", data)], {}) == b"h\xc3\xa9\nllo\n"
    assert run("text", [("a.txt", data)], {"encoding": "utf-8"}) == b"h\xc3\xa9\nllo\n"
    assert run("text", [("a.txt", data)], {"encoding": "UTF8"}) == b"h\xc3\xa9\nllo\n"
    assert kind_error("text", [("a.txt", b"ok\xff")]) == kind_error(
        "text", [("a.txt", b"ok\xff")], encoding="utf_8"
    )


def test_utf16_with_bom_and_cp1252() -> None:
    assert run(
        "text", [("a.txt", "\u00e9t\u00e9\r\n".encode("utf-16"))], {"encoding": "utf-16"}
    ) == ("\u00e9t\u00e9\n".encode())
    assert run("text", [("a.txt", b"\x93quoted\x94")], {"encoding": "cp1252"}) == (
        "\u201cquoted\u201d\n".encode()
    )


def test_bytes_that_do_not_decode_name_the_input_and_offset() -> None:
    message = kind_error("text", [("a.txt", b"ok"), ("b.po", b"caf\xe9")], encoding="ascii")
    assert message.startswith("b.po: invalid ascii at byte offset 3 (byte 0xe9: ")
    message = kind_error("text", [("odd.txt", b"a\x00b")], encoding="utf-16-le")
    assert message.startswith("odd.txt: invalid utf-16-le at byte offset 2 (byte 0x62: ")


@pytest.mark.parametrize("name", ["latin-9x", "base64", "rot13", "", "bad\x00name"])
def test_unknown_or_non_text_codec_is_a_params_error(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        KINDS["text"].Params.model_validate({"encoding": name})
    errors = caught.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"] == ("encoding",)
    assert errors[0]["msg"].startswith(f"unknown text encoding {name!r}")


def _po_asset(workspace: Path, encoding: str) -> None:
    """A text asset ``locale/fr`` whose one input is the Latin-1 .po file, read as ``encoding``."""
    params = {"encoding": encoding}
    decl = {"asset_name": "locale/fr", "kind": "text", "inputs": ["fr.po"], "params": params}
    write_asset(workspace, "assets/locale/fr", decl, {"fr.po": PO_LATIN1})


def test_latin1_po_through_a_real_build(workspace: Path) -> None:
    _po_asset(workspace, "latin-1")
    done = run_doit(workspace)
    assert done.code == 0, done.err
    with PackReader(str(workspace / "build/game.pack")) as reader:
        entry = reader.get_by_name("locale/fr")
    assert entry == PO_LATIN1.decode("latin-1").replace("\r\n", "\n").encode("utf-8")


def test_unknown_codec_is_one_error_line_from_status(
    workspace: Path, cli: Callable[..., Result]
) -> None:
    _po_asset(workspace, "latin-9x")
    result = cli("-C", str(workspace), "status")
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: assets/locale/fr/asset.json:8:5: params.encoding: "
        "unknown text encoding 'latin-9x' "
        "(use a codec name Python knows, such as utf-8, latin-1, cp1252 or utf-16)"
    ]
    assert "Traceback" not in result.err


def test_without_pypng_a_16_bit_colour_png_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "png", None)  # what an environment without pypng imports
    png, _ = _random_png16(2, 2, 2, seed=1)
    message = kind_error("image", [("deep.png", png)], format="rgba16")
    assert message == "pypng is not installed; install it with: pip install 'packer[png16]'"
