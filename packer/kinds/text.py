"""The ``text`` kind: text whose bytes do not depend on the editor or OS that saved it.

A BOM or CRLF line endings from one machine would otherwise change the pack (and every hash after
it) while the text reads the same; strict decoding catches a file saved in a legacy encoding at
build time instead of in the game. Files saved in another encoding (a Latin-1 gettext catalogue, a
cp1252 subtitle file) name it in the ``encoding`` param; the output is UTF-8 all the same.
Imports: stdlib, pydantic, packer.kinds.base, packer.errors.
"""

from __future__ import annotations

import codecs
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from packer.errors import KindError
from packer.kinds.base import KindContext

_BOM = "\ufeff"


class TextParams(BaseModel):
    """Options of ``text``; frozen and closed, so a typo in asset.json is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trailing_newline: bool = True
    """Make each non-empty input end in exactly one LF, so joined inputs never glue two lines."""

    encoding: str = "utf-8"
    """The inputs' encoding: any text codec Python knows (``latin-1``, ``cp1252``, ``utf-16``)."""

    @field_validator("encoding")
    @classmethod
    def _known_text_codec(cls, value: str) -> str:
        try:
            info = codecs.lookup(value)
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            info = None
        # base64, rot13, zlib... are codecs too, but bytes-to-bytes ones: no text comes out of them.
        if info is None or not getattr(info, "_is_text_encoding", True):
            raise PydanticCustomError(
                "unknown_encoding",
                "unknown text encoding {name} (use a codec name Python knows, "
                "such as utf-8, latin-1, cp1252 or utf-16)",
                {"name": repr(value[:60])},
            )
        return value


class TextKind:
    """Decodes each input (UTF-8 or the ``encoding`` param), normalises it (no BOM, LF only) and
    joins them in declared order, as UTF-8."""

    name: ClassVar[str] = "text"
    version: ClassVar[int] = 1
    # Only the standard library's codecs decide the bytes.
    libraries: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = TextParams

    def process(self, ctx: KindContext) -> bytes:
        params = ctx.params
        if not isinstance(params, TextParams):
            raise TypeError(f"text kind needs TextParams, got {type(params).__name__}")
        parts = [
            normalise(
                decode(data, input_name, params.encoding),
                trailing_newline=params.trailing_newline,
            )
            for input_name, data in zip(ctx.input_names, ctx.inputs, strict=True)
        ]
        return "".join(parts).encode("utf-8")


def decode(data: bytes, input_name: str, encoding: str) -> str:
    """Strict decoding without leading BOMs; the error names the offset of the first bad byte."""
    if codecs.lookup(encoding).name == "utf-8":
        return decode_utf8(data, input_name)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise KindError(
            f"{input_name}: invalid {encoding} at byte offset {err.start} "
            f"(byte 0x{data[err.start]:02x}: {err.reason}); check the encoding param"
        ) from None
    return text.lstrip(_BOM)


def decode_utf8(data: bytes, input_name: str) -> str:
    """Strict UTF-8 without leading BOMs; the error names the offset of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise KindError(
            f"{input_name}: invalid UTF-8 at byte offset {err.start} "
            f"(byte 0x{data[err.start]:02x}: {err.reason}); save the file as UTF-8"
        ) from None
    # All of them: a file re-saved by BOM-adding tools can carry two, and at the start of a text
    # U+FEFF has no meaning as a character, so dropping every one keeps the kind idempotent.
    return text.lstrip(_BOM)


def normalise(text: str, *, trailing_newline: bool) -> str:
    # CRLF first, so a CRLF pair becomes one LF rather than two.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if trailing_newline and text:
        stripped = text.rstrip("\n")
        # An input of blank lines only carries no text: it contributes nothing rather than a LF.
        text = stripped + "\n" if stripped else ""
    return text
