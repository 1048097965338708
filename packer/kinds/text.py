"""The ``text`` kind: text whose bytes do not depend on the editor or OS that saved it.

A BOM or CRLF line endings from one machine would otherwise change the pack (and every hash after
it) while the text reads the same; strict decoding catches a file saved in a legacy encoding at
build time instead of in the game. Imports: pydantic, packer.kinds.base, packer.errors.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from packer.errors import KindError
from packer.kinds.base import KindContext

_BOM = "\ufeff"


class TextParams(BaseModel):
    """Options of ``text``; frozen and closed, so a typo in asset.json is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trailing_newline: bool = True
    """Make each non-empty input end in exactly one LF, so joined inputs never glue two lines."""


class TextKind:
    """Normalises each input (UTF-8, no BOM, LF only) and joins them in declared order."""

    name: ClassVar[str] = "text"
    version: ClassVar[int] = 1
    # Only the standard library's UTF-8 codec decides the bytes.
    libraries: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = TextParams

    def process(self, ctx: KindContext) -> bytes:
        params = ctx.params
        if not isinstance(params, TextParams):
            raise TypeError(f"text kind needs TextParams, got {type(params).__name__}")
        parts = [
            normalise(decode_utf8(data, input_name), trailing_newline=params.trailing_newline)
            for input_name, data in zip(ctx.input_names, ctx.inputs, strict=True)
        ]
        return "".join(parts).encode("utf-8")


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
