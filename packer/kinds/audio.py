"""The ``audio`` kind: PCM a runtime can hand to the mixer, or Ogg Vorbis/Opus to ship small.

Sources are decoded by libsndfile (through ``soundfile``, whose wheel carries it), which reads
WAV as players do (a RIFF size field that disagrees with a complete data chunk is no error),
FLAC and Ogg. The accepted codecs are a closed list, so a libsndfile upgrade that learns a new
one does not silently widen what a pack may hold, and an unsupported one is named with what is
supported. WAV metadata chunks (LIST, bext, cue...) never reach the output, so the entry depends
on the sound alone. soundfile is imported inside ``process``: most commands decode no audio.
Imports: stdlib, pydantic, soundfile and numpy (lazily), packer.kinds.base, packer.kinds.oggpages,
packer.errors.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from packer.errors import KindError
from packer.kinds.base import KindContext, missing_library
from packer.kinds.oggpages import with_fixed_serial

if TYPE_CHECKING:
    import soundfile

MAGIC = b"PKAU"
HEADER_VERSION = 1
HEADER = struct.Struct("<4sHHIHHI")
"""magic, header version, channels, sample rate, sample width (bytes), sample type, frames:
20 bytes, little-endian."""

# Sample types of the header (offset 14); 0 is the integer PCM that version 1 of audio wrote.
SAMPLE_INTEGER = 0
SAMPLE_FLOAT = 1


@dataclass(frozen=True)
class _PcmLayout:
    """How a source's samples are stored in the PCM output."""

    width: int
    sample_type: int
    read_as: str
    """The numpy dtype libsndfile reads the samples into without losing a bit."""


# libsndfile subtype -> output layout. 8-bit output is unsigned (as in WAV, 128 is silence), read
# as int16 (value << 8); 24-bit is read as int32 (value << 8). Lossy sources decode to float32.
_PCM: dict[str, _PcmLayout] = {
    "PCM_U8": _PcmLayout(1, SAMPLE_INTEGER, "int16"),
    "PCM_S8": _PcmLayout(1, SAMPLE_INTEGER, "int16"),
    "PCM_16": _PcmLayout(2, SAMPLE_INTEGER, "int16"),
    "PCM_24": _PcmLayout(3, SAMPLE_INTEGER, "int32"),
    "PCM_32": _PcmLayout(4, SAMPLE_INTEGER, "int32"),
    "FLOAT": _PcmLayout(4, SAMPLE_FLOAT, "float32"),
    "DOUBLE": _PcmLayout(8, SAMPLE_FLOAT, "float64"),
    "VORBIS": _PcmLayout(4, SAMPLE_FLOAT, "float32"),
    "OPUS": _PcmLayout(4, SAMPLE_FLOAT, "float32"),
}
_WAV_SUBTYPES = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})
_ACCEPTED: dict[str, frozenset[str]] = {
    "WAV": _WAV_SUBTYPES,
    "WAVEX": _WAV_SUBTYPES,
    "FLAC": frozenset({"PCM_S8", "PCM_16", "PCM_24"}),
    "OGG": frozenset({"VORBIS", "OPUS"}),
}
SUPPORTED = "WAV with PCM or float samples, FLAC, Ogg Vorbis and Ogg Opus"
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class AudioParams(BaseModel):
    """Options of ``audio``; frozen and closed, so a typo in asset.json is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codec: Literal["pcm", "vorbis", "opus"] = "pcm"
    compression_level: float | None = Field(default=None, ge=0.0, le=1.0)
    """Vorbis and Opus only: libsndfile's 0 (best quality) to 1 (smallest); None: its default."""


class AudioKind:
    """Decodes one sound to PCM behind a 20-byte header, or encodes it as an Ogg file."""

    name: ClassVar[str] = "audio"
    # 2: libsndfile reads WAV (PCM and float), FLAC and Ogg; Ogg Vorbis/Opus output.
    version: ClassVar[int] = 2
    libraries: ClassVar[tuple[str, ...]] = ("soundfile",)
    Params: ClassVar[type[BaseModel]] = AudioParams

    @staticmethod
    def native_libraries() -> Mapping[str, str]:
        """libsndfile decodes and encodes: its version decides the bytes as much as soundfile's."""
        return _libsndfile_version()

    def process(self, ctx: KindContext) -> bytes:
        params = ctx.params
        if not isinstance(params, AudioParams):
            raise TypeError(f"audio kind needs AudioParams, got {type(params).__name__}")
        if len(ctx.inputs) != 1:
            raise KindError(f"audio takes exactly one input, got {len(ctx.inputs)}")
        input_name, data = ctx.input_names[0], ctx.inputs[0]
        try:
            import soundfile as sf
        except ImportError:
            raise missing_library("soundfile", "audio") from None
        try:
            with sf.SoundFile(io.BytesIO(data)) as source:
                _check_codec(source, input_name)
                _check_wav_complete(data, source, input_name)
                if params.codec == "pcm":
                    return _pcm(source)
                return _ogg(source, params, input_name)
        except sf.SoundFileError as err:
            # Raised while opening or decoding: the data is not sound libsndfile can read.
            raise KindError(f"{input_name}: not a readable audio file: {_reason(err)}") from None


@cache
def _libsndfile_version() -> Mapping[str, str]:
    try:
        import soundfile
    except ImportError:
        return {"libsndfile": "absent"}
    return {"libsndfile": soundfile.__libsndfile_version__}


def _reason(err: Exception) -> str:
    # libsndfile's own words, without soundfile's "Error opening <_io.BytesIO object at 0x...>".
    return str(getattr(err, "error_string", "") or err).strip()


def _check_codec(source: soundfile.SoundFile, input_name: str) -> None:
    if source.subtype in _ACCEPTED.get(source.format, frozenset()):
        return
    import soundfile as sf

    container = sf.available_formats().get(source.format, source.format)
    codec = sf.available_subtypes().get(source.subtype, source.subtype)
    raise KindError(
        f"{input_name}: {container} audio with {codec} samples is not supported "
        f"(audio reads {SUPPORTED})"
    )


def _check_wav_complete(data: bytes, source: soundfile.SoundFile, input_name: str) -> None:
    """Refuse a WAV whose data chunk ends before its declared size: a cut-off copy, which
    libsndfile would read in part. The RIFF size field is not consulted (players ignore it)."""
    if source.format not in ("WAV", "WAVEX"):
        return
    found = _data_chunk(data)
    if found is None:
        return
    declared, present = found
    if present < declared:
        frame_bytes = source.channels * _PCM[source.subtype].width
        raise KindError(
            f"{input_name}: WAV data is truncated: its header declares "
            f"{declared // frame_bytes} frames, the file holds {present} bytes of sample data"
        )


def _data_chunk(data: bytes) -> tuple[int, int] | None:
    """The declared and present sizes of the ``data`` chunk, walking chunks to the end of file."""
    position = 12
    while position + 8 <= len(data):
        tag, size = struct.unpack_from("<4sI", data, position)
        if tag == b"data":
            return size, len(data) - position - 8
        position += 8 + size + size % 2
    return None


def _pcm(source: soundfile.SoundFile) -> bytes:
    import numpy as np

    layout = _PCM[source.subtype]
    samples = source.read(dtype=layout.read_as, always_2d=True)
    body: bytes
    if layout.width == 1:
        body = ((samples >> 8) + 128).astype(np.uint8).tobytes()
    elif layout.width == 3:
        body = (samples >> 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        body = samples.astype(samples.dtype.newbyteorder("<")).tobytes()
    header = HEADER.pack(
        MAGIC,
        HEADER_VERSION,
        source.channels,
        source.samplerate,
        layout.width,
        layout.sample_type,
        len(samples),
    )
    return header + body


def _ogg(source: soundfile.SoundFile, params: AudioParams, input_name: str) -> bytes:
    import soundfile as sf

    if params.codec == "opus" and source.samplerate not in OPUS_RATES:
        rates = ", ".join(str(rate) for rate in OPUS_RATES)
        raise KindError(
            f"{input_name}: Opus encodes only {rates} Hz; this sound is {source.samplerate} Hz "
            "(resample it, or use codec vorbis)"
        )
    samples = source.read(dtype="float32", always_2d=True)
    out = io.BytesIO()
    sf.write(
        out,
        samples,
        source.samplerate,
        format="OGG",
        subtype=params.codec.upper(),
        compression_level=params.compression_level,
    )
    return with_fixed_serial(out.getvalue())
