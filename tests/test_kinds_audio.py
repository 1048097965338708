"""``audio`` on the files real asset sets hold: WAV (PCM, float, extensible, a short RIFF size),
FLAC and Ogg in; PCM or Ogg Vorbis/Opus out.

Every source is made here, by soundfile or byte by byte, and the expected samples come from what
was written or from an independent reader (Python's ``wave`` for PCM WAV); only Ogg, being lossy,
is checked through libsndfile's own decoding.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import wave
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_doit, write_asset
from pydantic import ValidationError

from packer.errors import KindError
from packer.kinds.base import KindContext, kind_fingerprint
from packer.kinds.oggpages import SERIAL
from packer.kinds.registry import builtin_kinds
from packer.pack import PackReader

KIND = builtin_kinds()["audio"]
PKAU = struct.Struct("<4sHHIHHI")


def run(inputs: Sequence[tuple[str, bytes]], params: Mapping[str, object] | None = None) -> bytes:
    ctx = KindContext(
        input_names=tuple(name for name, _ in inputs),
        inputs=tuple(data for _, data in inputs),
        params=KIND.Params.model_validate(dict(params or {})),
    )
    return KIND.process(ctx)


def kind_error(name: str, data: bytes, **params: object) -> str:
    with pytest.raises(KindError) as caught:
        run([(name, data)], params)
    return caught.value.message


def _written(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def _tone(frames: int, channels: int, rate: int = 48000) -> np.ndarray:
    """A chord, different in each channel, at half scale: nothing clips through a lossy codec."""
    time = np.arange(frames, dtype=np.float64)[:, None] / rate
    pitch = 220.0 * (1 + np.arange(channels, dtype=np.float64))[None, :]
    return (0.5 * np.sin(2 * np.pi * pitch * time)).astype(np.float32)


def _ints(frames: int, channels: int, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = 1 << (bits - 1)
    return rng.integers(-top, top, size=(frames, channels), dtype=np.int64)


def _wave_frames(data: bytes) -> tuple[int, int, int, bytes]:
    """channels, rate, width and frames as Python's own wave module reads them."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        return (
            wav.getnchannels(),
            wav.getframerate(),
            wav.getsampwidth(),
            wav.readframes(wav.getnframes()),
        )


# --- WAV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32"])
def test_pcm_wav_written_by_soundfile_gives_the_frames_wave_reads(subtype: str) -> None:
    bits = {"PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}[subtype]
    samples = _ints(300, 2, bits, seed=bits) << (32 - bits)
    wav = _written(samples.astype(np.int32), 44100, "WAV", subtype)
    channels, rate, width, frames = _wave_frames(wav)
    out = run([("s.wav", wav)])
    assert PKAU.unpack_from(out) == (b"PKAU", 1, channels, rate, width, 0, 300)
    assert (channels, rate, width) == (2, 44100, bits // 8)
    assert out[20:] == frames


def test_wav_with_riff_size_four_bytes_short_reads_every_frame() -> None:
    frames = struct.pack("<6h", 1, -1, 300, -300, 32767, -32768)
    whole = io.BytesIO()
    with wave.open(whole, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(22050)
        wav.writeframes(frames)
    riff_size = struct.unpack_from("<I", whole.getvalue(), 4)[0]
    short = whole.getvalue()[:4] + struct.pack("<I", riff_size - 4) + whole.getvalue()[8:]
    # Python's wave module stops at the RIFF size and sees a cut data chunk; players play it all.
    assert _wave_frames(short)[3] == frames[:8]
    assert _wave_frames(whole.getvalue())[3] == frames
    out = run([("short.wav", short)])
    assert out == run([("whole.wav", whole.getvalue())])
    assert out[20:] == frames


def test_truncated_wav_data_is_still_refused() -> None:
    wav = _written(_ints(10, 1, 16, seed=1).astype(np.int16), 8000, "WAV", "PCM_16")
    message = kind_error("cut.wav", wav[:-3])
    assert message == (
        "cut.wav: WAV data is truncated: its header declares 10 frames, "
        "the file holds 17 bytes of sample data"
    )


@pytest.mark.parametrize("magic", [b"OggS", b"wvpk"])
def test_a_pcm_wav_whose_samples_begin_like_ogg_or_wavpack_is_refused_in_one_line(
    magic: bytes,
) -> None:
    # libsndfile sniffs the first samples of a PCM WAV for embedded Ogg or WavPack data and then
    # refuses the file: a known limit of the decoder (docs/kinds.md), pinned so that a library
    # update that lifts it is noticed. The same samples one byte later read fine.
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(magic + b"abcd")
    message = kind_error("odd.wav", buffer.getvalue())
    assert (
        message
        == "odd.wav: not a readable audio file: Error in WAV file. Data is in WAVPACK format."
    )
    shifted = io.BytesIO()
    with wave.open(shifted, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" + magic + b"abcd")
    assert run([("odd.wav", shifted.getvalue())])[20:] == b"\x80" + magic + b"abcd"


@pytest.mark.parametrize(("subtype", "dtype"), [("FLOAT", "<f4"), ("DOUBLE", "<f8")])
def test_float_wav_keeps_its_samples_as_ieee_floats(subtype: str, dtype: str) -> None:
    samples = _tone(257, 3).astype(dtype)
    samples[0, 0] = 1.5  # floats may go past full scale; nothing clips them
    out = run([("f.wav", _written(samples, 32000, "WAV", subtype))])
    width = np.dtype(dtype).itemsize
    assert PKAU.unpack_from(out) == (b"PKAU", 1, 3, 32000, width, 1, 257)
    assert out[20:] == samples.tobytes()


def test_extensible_wav_gives_what_the_plain_wav_gives() -> None:
    samples = _ints(64, 2, 16, seed=4).astype(np.int16)
    extensible = _written(samples, 16000, "WAVEX", "PCM_16")
    assert struct.unpack_from("<H", extensible, 20)[0] == 0xFFFE  # WAVE_FORMAT_EXTENSIBLE
    assert run([("x.wav", extensible)]) == run(
        [("p.wav", _written(samples, 16000, "WAV", "PCM_16"))]
    )


@pytest.mark.parametrize(
    ("fmt", "subtype", "codec"),
    [
        ("WAV", "MS_ADPCM", "Microsoft ADPCM"),
        ("WAV", "ULAW", "U-Law"),
        ("MP3", "MPEG_LAYER_III", "MPEG Layer III"),
    ],
)
def test_unsupported_codec_is_refused_saying_what_is_supported(
    fmt: str, subtype: str, codec: str
) -> None:
    data = _written(
        _tone(2000, 1, 8000 if fmt == "WAV" else 44100),
        8000 if fmt == "WAV" else 44100,
        fmt,
        subtype,
    )
    message = kind_error("sfx.snd", data)
    assert message.startswith("sfx.snd: ")
    assert f"audio with {codec} samples is not supported" in message
    assert message.endswith(
        "(audio reads WAV with PCM or float samples, FLAC, Ogg Vorbis and Ogg Opus)"
    )


@pytest.mark.parametrize("data", [b"", b"hello", b"RIFF\x04\x00\x00\x00WAVE", b"OggS" + bytes(40)])
def test_data_that_is_no_sound_is_not_a_readable_audio_file(data: bytes) -> None:
    message = kind_error("jump.wav", data)
    assert message.startswith("jump.wav: not a readable audio file: ")
    assert "0x" not in message  # no object address from the stream wrapper


# --- FLAC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [16, 24])
def test_flac_decodes_to_the_integers_it_was_made_from(bits: int) -> None:
    samples = _ints(1000, 2, bits, seed=bits)
    flac = _written((samples << (32 - bits)).astype(np.int32), 44100, "FLAC", f"PCM_{bits}")
    out = run([("music.flac", flac)])
    assert PKAU.unpack_from(out) == (b"PKAU", 1, 2, 44100, bits // 8, 0, 1000)
    little = samples.astype("<i4").view(np.uint8).reshape(-1, 4)[:, : bits // 8]
    assert out[20:] == little.tobytes()


def test_8_bit_flac_comes_out_unsigned_like_8_bit_wav() -> None:
    signed = np.array([[-128], [-1], [0], [1], [127]], dtype=np.int16)
    out = run([("blip.flac", _written(signed * 256, 8000, "FLAC", "PCM_S8"))])
    assert PKAU.unpack_from(out) == (b"PKAU", 1, 1, 8000, 1, 0, 5)
    assert out[20:] == bytes([0, 127, 128, 129, 255])


# --- Ogg in -------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["VORBIS", "OPUS"])
def test_ogg_source_decodes_to_float_pcm(codec: str) -> None:
    ogg = _written(_tone(4800, 2), 48000, "OGG", codec)
    out = run([("theme.ogg", ogg)])
    decoded, rate = sf.read(io.BytesIO(ogg), dtype="float32", always_2d=True)
    assert PKAU.unpack_from(out) == (b"PKAU", 1, 2, rate, 4, 1, len(decoded))
    assert out[20:] == decoded.astype("<f4").tobytes()


# --- Ogg out ------------------------------------------------------------------------------------


def _slow_ogg_crc(page: bytes) -> int:
    """The Ogg checksum by the definition (CRC-32, polynomial 0x04C11DB7, MSB first, no xor)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _pages(data: bytes) -> list[bytes]:
    pages, position = [], 0
    while position < len(data):
        assert data[position : position + 4] == b"OggS"
        segments = data[position + 26]
        end = position + 27 + segments + sum(data[position + 27 : position + 27 + segments])
        pages.append(data[position:end])
        position = end
    return pages


@pytest.mark.parametrize("codec", ["vorbis", "opus"])
def test_ogg_output_decodes_close_to_its_source(codec: str) -> None:
    source = _tone(48000, 2)
    out = run([("theme.wav", _written(source, 48000, "WAV", "FLOAT"))], {"codec": codec})
    with sf.SoundFile(io.BytesIO(out)) as decoded:
        assert (decoded.format, decoded.subtype) == ("OGG", codec.upper())
        assert (decoded.channels, decoded.samplerate) == (2, 48000)
        samples = decoded.read(dtype="float32", always_2d=True)
    assert abs(len(samples) - len(source)) <= 960  # Opus may pad to whole 20 ms frames
    frames = min(len(samples), len(source))
    error = samples[:frames] - source[:frames]
    signal_to_noise = 10 * np.log10(np.mean(source**2) / np.mean(error**2))
    assert signal_to_noise > 15, signal_to_noise


@pytest.mark.parametrize("codec", ["vorbis", "opus"])
def test_ogg_pages_carry_packers_serial_and_valid_checksums(codec: str) -> None:
    out = run([("a.wav", _written(_tone(9600, 1), 48000, "WAV", "FLOAT"))], {"codec": codec})
    pages = _pages(out)
    assert len(pages) >= 3
    for page in pages:
        assert struct.unpack_from("<I", page, 14)[0] == SERIAL
        zeroed = page[:22] + bytes(4) + page[26:]
        assert struct.unpack_from("<I", page, 22)[0] == _slow_ogg_crc(zeroed)


_CHILD = """
import hashlib, sys
from packer.kinds.base import KindContext
from packer.kinds.registry import builtin_kinds
kind = builtin_kinds()["audio"]
data = open(sys.argv[1], "rb").read()
params = kind.Params.model_validate({"codec": sys.argv[2]})
print(hashlib.sha256(kind.process(KindContext(("a.wav",), (data,), params))).hexdigest())
"""


@pytest.mark.parametrize("codec", ["vorbis", "opus"])
def test_ogg_output_is_the_same_bytes_twice_and_across_processes(
    codec: str, tmp_path: Path
) -> None:
    wav = _written(_tone(24000, 2), 48000, "WAV", "PCM_16")
    first = run([("a.wav", wav)], {"codec": codec})
    assert run([("a.wav", wav)], {"codec": codec}) == first
    (tmp_path / "a.wav").write_bytes(wav)
    digests = {
        subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path / "a.wav"), codec],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout.strip()
        for seed in (1, 2)
    }
    assert digests == {hashlib.sha256(first).hexdigest()}


def test_compression_level_changes_the_vorbis_size_and_is_bounded() -> None:
    wav = _written(_tone(48000, 2), 48000, "WAV", "FLOAT")
    best = run([("a.wav", wav)], {"codec": "vorbis", "compression_level": 0.0})
    smallest = run([("a.wav", wav)], {"codec": "vorbis", "compression_level": 1.0})
    assert len(smallest) < len(best)
    with pytest.raises(ValidationError):
        KIND.Params.model_validate({"codec": "vorbis", "compression_level": 1.5})
    with pytest.raises(ValidationError):
        KIND.Params.model_validate({"codec": "mp3"})


def test_opus_refuses_a_rate_it_cannot_encode() -> None:
    wav = _written(_tone(4410, 1, 44100), 44100, "WAV", "PCM_16")
    assert kind_error("music.wav", wav, codec="opus") == (
        "music.wav: Opus encodes only 8000, 12000, 16000, 24000, 48000 Hz; this sound is "
        "44100 Hz (resample it, or use codec vorbis)"
    )
    assert sf.info(io.BytesIO(run([("music.wav", wav)], {"codec": "vorbis"}))).samplerate == 44100


# --- keys, build, absent library ----------------------------------------------------------------


def test_fingerprint_names_soundfile_and_libsndfile() -> None:
    from importlib.metadata import version

    assert kind_fingerprint(KIND) == (
        f"2;soundfile={version('soundfile')};libsndfile={sf.__libsndfile_version__}"
    )


def test_vorbis_asset_through_a_real_build(workspace: Path) -> None:
    wav = _written(_tone(9600, 2), 48000, "WAV", "PCM_24")
    decl = {
        "asset_name": "music/theme",
        "kind": "audio",
        "inputs": ["theme.wav"],
        "params": {"codec": "vorbis"},
    }
    write_asset(workspace, "assets/music/theme", decl, {"theme.wav": wav})
    done = run_doit(workspace)
    assert done.code == 0, done.err
    with PackReader(str(workspace / "build/game.pack")) as reader:
        entry = reader.get_by_name("music/theme")
    assert entry == run([("theme.wav", wav)], {"codec": "vorbis"})
    assert sf.info(io.BytesIO(entry)).frames == 9600


def test_without_soundfile_audio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "soundfile", None)  # what an environment without it imports
    message = kind_error("a.wav", b"RIFF")
    assert message == "soundfile is not installed; install it with: pip install 'packer[audio]'"
