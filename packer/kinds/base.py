"""The one small interface every kind implements.

A kind sees only what is represented in its asset's output key: the input bytes in declared order,
its validated params and the output bytes of the asset's deps. It gets no file system and no clock,
so its output is a pure function of the key, which is what lets packer cache it by content.
That is also why it is not told the asset's name or path: a rename or a move must not change
the bytes, or a cached output would be stale.
Imports: stdlib, pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict


class NoParams(BaseModel):
    """Params model of a kind that takes none: any key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class KindContext:
    """Everything a kind may look at while it processes one asset."""

    input_names: tuple[str, ...]
    """Inputs as declared in asset.json (relative to the asset folder), same order as ``inputs``."""
    inputs: tuple[bytes, ...]
    params: BaseModel
    deps: Mapping[str, bytes] = field(default_factory=dict)
    """Output bytes of each dep, by asset_name."""


class Kind(Protocol):
    """A processor. ``version`` must change whenever the output for the same input changes."""

    name: ClassVar[str]
    version: ClassVar[int]
    Params: ClassVar[type[BaseModel]]

    def process(self, ctx: KindContext) -> bytes:
        """Return the asset's bytes; raise ``packer.errors.KindError`` for bad input."""
        ...


__all__ = ["Kind", "KindContext", "NoParams"]
