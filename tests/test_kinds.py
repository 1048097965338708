"""The built-in kinds, driven only through the Kind interface: a KindContext in, bytes out.

Expected bytes are spelled out literally where that is short, so a change of output format fails
here before it changes anyone's pack.
"""

from __future__ import annotations

import io
import json
import struct
import wave
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

from packer.errors import KindError
from packer.kinds.base import Kind, KindContext
from packer.kinds.registry import builtin_kinds

KINDS = builtin_kinds()


def run(
    kind_name: str,
    inputs: Sequence[tuple[str, bytes]],
    params: Mapping[str, object] | None = None,
) -> bytes:
    """Process like a build does: params validated by the kind's own model, inputs in order."""
    kind = KINDS[kind_name]
    ctx = KindContext(
        input_names=tuple(name for name, _ in inputs),
        inputs=tuple(data for _, data in inputs),
        params=kind.Params.model_validate(dict(params or {})),
    )
    return kind.process(ctx)


def kind_error(kind_name: str, inputs: Sequence[tuple[str, bytes]], **params: object) -> str:
    with pytest.raises(KindError) as caught:
        run(kind_name, inputs, params)
    return caught.value.message


# --- the registry and the interface every kind shares -------------------------------------------


BUILTIN_VERSIONS = {"atlas": 1, "audio": 2, "image": 2, "json": 1, "raw": 1, "text": 1}
"""Each kind's documented version (docs/kinds.md): a bump rebuilds its assets everywhere."""


def test_builtin_kinds_and_their_versions() -> None:
    assert {name: kind.version for name, kind in KINDS.items()} == BUILTIN_VERSIONS
    for name, kind in KINDS.items():
        assert kind.name == name


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_unknown_params_key_is_rejected(kind_name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        KINDS[kind_name].Params.model_validate({"no_such_option": 1})
    assert "no_such_option" in str(caught.value)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_params_are_frozen(kind_name: str) -> None:
    # Frozen params can be hashed into a task key and shared between tasks without copies.
    model = KINDS[kind_name].Params
    params = model.model_validate({})
    attribute = next(iter(model.model_fields), "no_such_option")
    with pytest.raises(ValidationError, match="frozen"):
        setattr(params, attribute, None)
    assert hash(params) == hash(model.model_validate({}))


def _sample_inputs() -> dict[str, list[tuple[str, bytes]]]:
    return {
        "raw": [("a.bin", b"\x00\xff\r\n")],
        "text": [("a.txt", "h\u00e9\r\nllo".encode())],
        "json": [("a.json", b'{"b": [1, 2.5], "a": {"y": true, "x": null}}')],
        "image": [("a.png", _png(_rgba_2x3()))],
        "atlas": [("b.png", _png(_rgba_2x3())), ("a.png", _png(_rgba_2x3()))],
        "audio": [("a.wav", _wav(2, 2, 22050, bytes(range(12))))],
    }


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_output_is_deterministic(kind_name: str) -> None:
    inputs = _sample_inputs()[kind_name]
    first = run(kind_name, inputs)
    # A fresh instance, as another doit worker process would have.
    kind: Kind = type(KINDS[kind_name])()
    ctx = KindContext(
        input_names=tuple(name for name, _ in inputs),
        inputs=tuple(data for _, data in inputs),
        params=kind.Params.model_validate({}),
        deps={"some/dep": b"ignored"},
    )
    assert kind.process(ctx) == first
    assert run(kind_name, inputs) == first


_PREFIXES = [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"{"]


@pytest.mark.parametrize("kind_name", sorted(KINDS))
@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(prefix=st.sampled_from(_PREFIXES), tail=st.binary(max_size=200))
def test_any_bytes_give_bytes_or_kind_error(kind_name: str, prefix: bytes, tail: bytes) -> None:
    # A user's broken file must surface as a KindError, never as a traceback from a decoder.
    try:
        out = run(kind_name, [("fuzz.bin", prefix + tail)])
    except KindError as err:
        assert "fuzz.bin" in err.message
    else:
        assert isinstance(out, bytes)


# --- raw -------------------------------------------------------------------------------------


def test_raw_concatenates_inputs_unchanged() -> None:
    out = run("raw", [("a.bin", b"\xef\xbb\xbfA\r\n"), ("b.bin", b"\x00\xffB\r")])
    assert out == b"\xef\xbb\xbfA\r\n\x00\xffB\r"


def test_raw_keeps_empty_input_empty() -> None:
    assert run("raw", [("empty.bin", b"")]) == b""


# --- text ------------------------------------------------------------------------------------


def test_text_strips_bom_and_normalises_newlines() -> None:
    out = run("text", [("a.txt", b"\xef\xbb\xbfone\r\ntwo\rthree\nfour")])
    assert out == b"one\ntwo\nthree\nfour\n"


def test_text_strips_repeated_bom_only_at_start() -> None:
    out = run("text", [("a.txt", "\ufeff\ufeffa\ufeff".encode())])
    assert out == "a\ufeff\n".encode()


def test_text_keeps_non_ascii_and_inner_bom() -> None:
    text = "caf\u00e9 \u2603 a\ufeffb\n"
    assert run("text", [("a.txt", text.encode())]) == text.encode()


def test_text_trailing_newline_collapses_to_one() -> None:
    assert run("text", [("a.txt", b"a\r\n\r\n\n")]) == b"a\n"
    assert run("text", [("a.txt", b"")]) == b""
    assert run("text", [("a.txt", b"\r\n\n")]) == b""


def test_text_without_trailing_newline_keeps_the_ending() -> None:
    params = {"trailing_newline": False}
    assert run("text", [("a.txt", b"a")], params) == b"a"
    assert run("text", [("a.txt", b"a\r\n\r\n")], params) == b"a\n\n"


def test_text_joins_inputs_in_declared_order() -> None:
    inputs = [("b.txt", b"\xef\xbb\xbfsecond"), ("a.txt", b"first\r\n")]
    assert run("text", inputs) == b"second\nfirst\n"
    assert run("text", inputs, {"trailing_newline": False}) == b"secondfirst\n"


def test_text_invalid_utf8_names_input_and_offset() -> None:
    message = kind_error("text", [("ok.txt", b"fine\n"), ("notes.txt", b"ab\ncaf\xe9\n")])
    assert "notes.txt" in message
    assert "byte offset 6" in message
    assert "0xe9" in message


def test_text_params_type_is_checked() -> None:
    with pytest.raises(ValidationError):
        KINDS["text"].Params.model_validate({"trailing_newline": "sometimes"})


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet=st.sampled_from("ab\u00e9\u2603\r\n\ufeff")))
def test_text_output_is_normal_and_stable(text: str) -> None:
    out = run("text", [("a.txt", text.encode())])
    decoded = out.decode("utf-8")
    assert "\r" not in decoded
    assert not decoded.startswith("\ufeff")
    assert decoded == "" or (decoded.endswith("\n") and not decoded.endswith("\n\n"))
    assert run("text", [("a.txt", out)]) == out


# --- json ------------------------------------------------------------------------------------


def test_json_is_canonical_compact() -> None:
    source = '\ufeff{ "b": [1, 2.5, -0.0, 1E3, "\\u00e9\\n"],\r\n  "a": {"z": null, "y": true} }\n'
    out = run("json", [("data.json", source.encode())])
    assert out == '{"a":{"y":true,"z":null},"b":[1,2.5,-0.0,1000.0,"\u00e9\\n"]}'.encode()


def test_json_key_order_and_spacing_do_not_matter() -> None:
    one = run("json", [("a.json", b'{"x": 1, "y": {"q": [], "p": "s"}}')])
    two = run("json", [("a.json", b'{\n  "y": {"p": "s", "q": [ ]},\n  "x": 1\n}\n')])
    assert one == two == b'{"x":1,"y":{"p":"s","q":[]}}'


def test_json_scalar_document() -> None:
    assert run("json", [("a.json", b' "\\u2603" ')]) == '"\u2603"'.encode()


def test_json_syntax_error_names_input_line_and_column() -> None:
    message = kind_error("json", [("data.json", b'{\n  "a": 1,\n  "b" 2\n}')])
    assert message.startswith("data.json:3:7: invalid JSON")
    assert "':' delimiter" in message


def test_json_empty_input_is_an_error() -> None:
    assert kind_error("json", [("empty.json", b"")]).startswith("empty.json:1:1: invalid JSON")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_json_rejects_non_finite_numbers(literal: str) -> None:
    message = kind_error("json", [("n.json", f'{{"x": [{literal}]}}'.encode())])
    assert "n.json" in message
    assert literal in message


def test_json_rejects_duplicate_keys() -> None:
    message = kind_error("json", [("d.json", b'{"k": 1, "k": 2}')])
    assert "d.json" in message
    assert "duplicate key 'k'" in message


def test_json_rejects_lone_surrogate() -> None:
    message = kind_error("json", [("s.json", b'["\\ud800"]')])
    assert "s.json" in message
    assert "U+D800" in message


def test_json_rejects_invalid_utf8() -> None:
    message = kind_error("json", [("u.json", b'["\xff"]')])
    assert "u.json" in message
    assert "byte offset 2" in message


def test_json_rejects_absurd_nesting_and_huge_integers() -> None:
    assert "u.json" in kind_error("json", [("u.json", b"[" * 100_000)])
    assert "u.json" in kind_error("json", [("u.json", b"1" * 5000)])


def test_json_takes_exactly_one_input() -> None:
    message = kind_error("json", [("a.json", b"1"), ("b.json", b"2")])
    assert "exactly one input, got 2" in message


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    value=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_json_round_trips_values_and_is_idempotent(value: object) -> None:
    source = json.dumps(value, indent=2, ensure_ascii=True).encode()
    try:
        out = run("json", [("v.json", source)])
    except KindError as err:
        # st.text() may hold lone surrogates, which UTF-8 output cannot carry.
        assert "surrogate" in err.message
        return
    assert json.loads(out) == value
    assert run("json", [("v.json", out)]) == out


# --- image -----------------------------------------------------------------------------------

RGBA_PIXELS = [
    [(255, 0, 0, 255), (0, 255, 0, 128)],
    [(0, 0, 255, 0), (255, 255, 255, 255)],
    [(10, 20, 30, 40), (0, 0, 0, 255)],
]
"""Width 2, height 3, every pixel different, so a transposed or flipped output cannot pass."""


def _rgba_2x3() -> Image.Image:
    image = Image.new("RGBA", (2, 3))
    for y, row in enumerate(RGBA_PIXELS):
        for x, pixel in enumerate(row):
            image.putpixel((x, y), pixel)
    return image


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _png(image: Image.Image, **options: object) -> bytes:
    return _encode(image, "PNG", **options)


def _image_header(out: bytes) -> tuple[bytes, int, int, int, int]:
    magic, version, code, width, height = struct.unpack_from("<4sHHII", out)
    return magic, version, code, width, height


def test_image_rgba8_layout() -> None:
    out = run("image", [("hero.png", _png(_rgba_2x3()))], {"format": "rgba8"})
    assert out[:16] == b"PKIM\x01\x00\x01\x00\x02\x00\x00\x00\x03\x00\x00\x00"
    assert _image_header(out) == (b"PKIM", 1, 1, 2, 3)
    assert out[16:] == bytes(
        [
            *(255, 0, 0, 255, 0, 255, 0, 128),
            *(0, 0, 255, 0, 255, 255, 255, 255),
            *(10, 20, 30, 40, 0, 0, 0, 255),
        ]
    )


def test_image_default_format_is_rgba8() -> None:
    png = _png(_rgba_2x3())
    assert run("image", [("hero.png", png)]) == run(
        "image", [("hero.png", png)], {"format": "rgba8"}
    )


def test_image_rgb8_drops_alpha() -> None:
    out = run("image", [("hero.png", _png(_rgba_2x3()))], {"format": "rgb8"})
    assert _image_header(out) == (b"PKIM", 1, 2, 2, 3)
    assert len(out) == 16 + 2 * 3 * 3
    assert out[16:] == bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30, 0, 0, 0])


def test_image_l8_is_luma() -> None:
    image = Image.new("RGB", (2, 3))
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (100, 100, 100), (255, 255, 255), (0, 0, 0)]
    for index, colour in enumerate(colours):
        image.putpixel((index % 2, index // 2), colour)
    out = run("image", [("grey.png", _png(image))], {"format": "l8"})
    assert _image_header(out) == (b"PKIM", 1, 3, 2, 3)
    # ITU-R 601-2 luma: 0.299 R + 0.587 G + 0.114 B, rounded.
    assert out[16:] == bytes([76, 150, 29, 100, 255, 0])


def test_image_grey_source_expands_to_rgba() -> None:
    image = Image.new("L", (3, 1))
    for x, value in enumerate([0, 7, 255]):
        image.putpixel((x, 0), value)
    out = run("image", [("g.png", _png(image))])
    assert _image_header(out) == (b"PKIM", 1, 1, 3, 1)
    assert out[16:] == bytes([0, 0, 0, 255, 7, 7, 7, 255, 255, 255, 255, 255])


def test_image_palette_transparency_becomes_alpha() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 200, 100, 50] + [0] * (254 * 3))
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    out = run("image", [("p.png", _png(image, transparency=0))])
    assert out[16:] == bytes([0, 0, 0, 0, 200, 100, 50, 255])


def test_image_bmp_is_still_top_row_first() -> None:
    # BMP stores rows bottom-up; the output must not.
    rgb = _rgba_2x3().convert("RGB")
    from_bmp = run("image", [("hero.bmp", _encode(rgb, "BMP"))], {"format": "rgb8"})
    from_png = run("image", [("hero.png", _png(rgb))], {"format": "rgb8"})
    assert from_bmp == from_png
    assert from_bmp[16:19] == bytes([255, 0, 0])


def test_image_gif_uses_first_frame() -> None:
    first = Image.new("RGB", (2, 1), (255, 0, 0))
    second = Image.new("RGB", (2, 1), (0, 0, 255))
    gif = _encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    with Image.open(io.BytesIO(gif)) as check:
        assert getattr(check, "n_frames", 1) == 2
    out = run("image", [("anim.gif", gif)], {"format": "rgb8"})
    assert _image_header(out) == (b"PKIM", 1, 2, 2, 1)
    assert out[16:] == bytes([255, 0, 0, 255, 0, 0])


def test_image_output_depends_on_pixels_not_encoding() -> None:
    image = _rgba_2x3()
    fast = _png(image, compress_level=0)
    small = _png(image, compress_level=9, optimize=True)
    assert fast != small
    assert run("image", [("a.png", fast)]) == run("image", [("a.png", small)])


def test_image_not_an_image() -> None:
    message = kind_error("image", [("hero.png", b"this is not a picture")])
    assert message == (
        "hero.png: not a readable image: no image format Pillow reads recognises this data"
    )


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- logo -->\n<!DOCTYPE svg>\n<svg>',
    ],
)
def test_image_svg_is_refused_saying_it_is_vector(svg: bytes) -> None:
    assert kind_error("image", [("logo.svg", svg)]) == (
        "logo.svg: SVG is a vector format and image does not rasterise it; "
        "export it to PNG at the size the game needs"
    )


def test_image_truncated_png() -> None:
    big = Image.new("RGB", (64, 64))
    for x in range(64):
        big.putpixel((x, x), (x * 4, 255 - x * 4, 7))
    png = _png(big)
    message = kind_error("image", [("cut.png", png[: len(png) // 2])])
    assert message.startswith("cut.png: not a readable image")


def test_image_rounds_16_bit_grey_into_rgba8() -> None:
    image = Image.new("I;16", (2, 1))
    image.putpixel((0, 0), 1000)
    image.putpixel((1, 0), 0xFF00)
    out = run("image", [("deep.png", _png(image))])
    # (v * 255 + 32767) // 65535: 1000 -> 4 (high byte 3), 0xFF00 -> 254 (high byte 255).
    assert out[16:] == bytes([4, 4, 4, 255, 254, 254, 254, 255])


def test_image_refuses_32_bit_and_float_samples() -> None:
    for mode in ("I", "F"):
        image = Image.new(mode, (2, 1))
        message = kind_error("image", [("deep.tif", _encode(image, "TIFF"))])
        assert message.startswith(f"deep.tif: image mode {mode!r} (32-bit integer or float")


def test_image_refuses_eps_which_would_run_ghostscript() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 2 2\n%%EndComments\n"
    message = kind_error("image", [("logo.eps", eps)])
    assert message == "logo.eps: EPS images are not supported"


def test_image_takes_exactly_one_input() -> None:
    png = _png(_rgba_2x3())
    assert "exactly one input, got 2" in kind_error("image", [("a.png", png), ("b.png", png)])


def test_image_unknown_format_param() -> None:
    with pytest.raises(ValidationError) as caught:
        KINDS["image"].Params.model_validate({"format": "rgb565"})
    assert "rgb565" in str(caught.value)


# --- audio -----------------------------------------------------------------------------------


def _wav(channels: int, width: int, rate: int, frames: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


def _riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WAVE" + b"".join(
        tag + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) % 2)
        for tag, data in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(tag: int, channels: int, rate: int, width: int) -> bytes:
    block = channels * width
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, width * 8)


STEREO_FRAMES = struct.pack("<6h", 1, -1, 300, -300, 32767, -32768)


def test_audio_stereo_16bit_layout() -> None:
    out = run("audio", [("jump.wav", _wav(2, 2, 22050, STEREO_FRAMES))])
    assert out[:20] == (b"PKAU\x01\x00\x02\x00\x22\x56\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00")
    assert struct.unpack_from("<4sHHIHHI", out) == (b"PKAU", 1, 2, 22050, 2, 0, 3)
    assert out[20:] == STEREO_FRAMES


def test_audio_8bit_mono_frames_as_stored() -> None:
    frames = bytes([0, 128, 255, 1, 127])
    out = run("audio", [("blip.wav", _wav(1, 1, 8000, frames))])
    assert struct.unpack_from("<4sHHIHHI", out) == (b"PKAU", 1, 1, 8000, 1, 0, 5)
    assert out[20:] == frames


def test_audio_ignores_extra_chunks() -> None:
    plain = _riff((b"fmt ", _fmt(1, 2, 22050, 2)), (b"data", STEREO_FRAMES))
    tagged = _riff(
        (b"fmt ", _fmt(1, 2, 22050, 2)),
        (b"LIST", b"INFOISFT\x06\x00\x00\x00editor"),
        (b"data", STEREO_FRAMES),
    )
    assert run("audio", [("a.wav", tagged)]) == run("audio", [("a.wav", plain)])
    assert run("audio", [("a.wav", plain)]) == run(
        "audio", [("a.wav", _wav(2, 2, 22050, STEREO_FRAMES))]
    )


def test_audio_empty_data_chunk() -> None:
    out = run("audio", [("silence.wav", _wav(1, 2, 44100, b""))])
    assert out == struct.pack("<4sHHIHHI", b"PKAU", 1, 1, 44100, 2, 0, 0)


@pytest.mark.parametrize("data", [b"", b"hello", b"RIFF\x04\x00\x00\x00WAVE", b"RIFF"])
def test_audio_not_a_wav(data: bytes) -> None:
    message = kind_error("audio", [("jump.wav", data)])
    assert message.startswith("jump.wav: not a readable audio file: ")


def test_audio_float_wav_is_ieee_float_pcm() -> None:
    samples = struct.pack("<2f", 0.5, -1.25)
    float_wav = _riff((b"fmt ", _fmt(3, 1, 44100, 4)), (b"data", samples))
    out = run("audio", [("float.wav", float_wav)])
    assert struct.unpack_from("<4sHHIHHI", out) == (b"PKAU", 1, 1, 44100, 4, 1, 2)
    assert out[20:] == samples


def test_audio_rejects_truncated_data() -> None:
    whole = _wav(2, 2, 22050, STEREO_FRAMES)
    message = kind_error("audio", [("cut.wav", whole[:-5])])
    assert "cut.wav" in message
    assert "truncated" in message
    assert "3 frames" in message


def test_audio_takes_exactly_one_input() -> None:
    wav = _wav(1, 1, 8000, b"\x80")
    assert "exactly one input, got 2" in kind_error("audio", [("a.wav", wav), ("b.wav", wav)])
