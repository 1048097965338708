"""The ``raw`` kind: for data packer must not interpret (fonts, shaders, level blobs...).

Anything that reads or rewrites bytes belongs to another kind; ``raw`` is the escape hatch that
guarantees a file reaches the pack exactly as authored. Imports: pydantic, packer.kinds.base.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from packer.kinds.base import KindContext, NoParams


class RawKind:
    """Concatenates the inputs unchanged, so several parts can form one entry without a tool."""

    name: ClassVar[str] = "raw"
    version: ClassVar[int] = 1
    # Bytes as they are: no library decides them.
    libraries: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams

    def process(self, ctx: KindContext) -> bytes:
        return b"".join(ctx.inputs)
