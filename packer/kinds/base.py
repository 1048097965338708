"""The one small interface every kind implements.

A kind sees only what is represented in its asset's output key: the input bytes in declared order,
its validated params and the output bytes of the asset's deps. It gets no file system and no clock,
so its output is a pure function of the key, which is what lets packer cache it by content.
That is also why it is not told the asset's name or path: a rename or a move must not change
the bytes, or a cached output would be stale.

A kind's code is named by its fingerprint (``kind_fingerprint``): its own ``version`` and the
installed version of every library it declares in ``libraries`` (distribution names, as pip
knows them), because those libraries decide its bytes too: an upgraded Pillow may decode a
JPEG differently. A C library that is no distribution of its own (libsndfile, which soundfile
loads from its wheel or from the system) is named by the kind's optional ``native_libraries``,
a function giving ``{name: version}``. The versions are read once per process, which is also
when the process imports the libraries, so the fingerprint names the code that runs.
Imports: stdlib, pydantic, packer.errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from packer.errors import KindError


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
    libraries: ClassVar[tuple[str, ...]]
    """Distributions whose installed version decides the output bytes (``("Pillow",)``);
    optional for plug-ins written before it existed (then none)."""
    Params: ClassVar[type[BaseModel]]

    def process(self, ctx: KindContext) -> bytes:
        """Return the asset's bytes; raise ``packer.errors.KindError`` for bad input."""
        ...


NativeLibraries = Callable[[], Mapping[str, str]]
"""A kind's optional ``native_libraries``: the versions of the C libraries it loads, by name."""


def kind_fingerprint(kind: Kind) -> str:
    """``VERSION[;DIST=VERSION...][;NATIVE=VERSION...]``: the kind's version, its declared
    libraries' versions, then its native libraries' versions."""
    libraries: tuple[str, ...] = getattr(kind, "libraries", ())
    native: NativeLibraries | None = getattr(kind, "native_libraries", None)
    return _fingerprint(kind.version, tuple(sorted(libraries)), native)


@cache
def _fingerprint(version: int, libraries: tuple[str, ...], native: NativeLibraries | None) -> str:
    parts = [str(version), *(f"{lib}={library_version(lib)}" for lib in libraries)]
    if native is not None:
        parts += [f"{name}={found}" for name, found in sorted(native().items())]
    return ";".join(parts)


@cache
def library_version(distribution: str) -> str:
    """The installed version of ``distribution`` (``"absent"`` when it is not installed: the
    kind then fails when it runs, and the fingerprint changes once it is installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


def missing_library(distribution: str, extra: str) -> KindError:
    """The build error for a kind whose optional library (an extra of packer) is not installed."""
    return KindError(
        f"{distribution} is not installed; install it with: pip install 'packer[{extra}]'"
    )


__all__ = [
    "Kind",
    "KindContext",
    "NoParams",
    "kind_fingerprint",
    "library_version",
    "missing_library",
]
