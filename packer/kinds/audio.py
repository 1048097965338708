"""The ``audio`` kind: PCM a runtime can hand to the mixer without parsing RIFF.

WAV files carry optional chunks (LIST, bext, cue...) that editors add and rewrite freely; keeping
only the format fields and the sample data makes the entry depend on the sound alone. Only PCM is
accepted because that is what the stdlib ``wave`` module reads and what needs no decoder later.
Imports: stdlib, pydantic, packer.kinds.base, packer.errors.
"""

from __future__ import annotations

import io
import struct
import wave
from typing import ClassVar

from pydantic import BaseModel

from packer.errors import KindError
from packer.kinds.base import KindContext, NoParams

MAGIC = b"PKAU"
HEADER_VERSION = 1
HEADER = struct.Struct("<4sHHIHHI")
"""magic, header version, channels, sample rate, sample width (bytes), reserved, frames (20 B)."""


class AudioKind:
    """Reads one PCM WAV and emits its interleaved little-endian frames behind a 20-byte header."""

    name: ClassVar[str] = "audio"
    version: ClassVar[int] = 1
    # Only the standard library's wave module decides the bytes.
    libraries: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams

    def process(self, ctx: KindContext) -> bytes:
        if len(ctx.inputs) != 1:
            raise KindError(f"audio takes exactly one input, got {len(ctx.inputs)}")
        input_name, data = ctx.input_names[0], ctx.inputs[0]
        try:
            with wave.open(io.BytesIO(data), "rb") as wav:
                channels = wav.getnchannels()
                rate = wav.getframerate()
                width = wav.getsampwidth()
                declared = wav.getnframes()
                frames = wav.readframes(declared)
        except (wave.Error, EOFError, struct.error, ValueError) as err:
            reason = str(err) or "file ends early"
            raise KindError(f"{input_name}: not a readable PCM WAV file: {reason}") from None
        frame_count, rest = divmod(len(frames), channels * width)
        if frame_count != declared or rest:
            # A cut-off download or copy: packing the part that is there would hide the damage.
            raise KindError(
                f"{input_name}: WAV data is truncated: its header declares {declared} frames, "
                f"the file holds {len(frames)} bytes of sample data"
            )
        return HEADER.pack(MAGIC, HEADER_VERSION, channels, rate, width, 0, frame_count) + frames
