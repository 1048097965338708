"""Which kinds exist: the built-ins plus third-party kinds from the ``packer.kinds`` entry points.

Loaded once per call of ``load_kinds`` (callers keep the mapping they got; there is no global
cache to go stale). An entry point that shadows a built-in or another entry point is refused:
a kind name must mean one processor on every machine, or packs would differ between machines.
Imports: stdlib, packer.kinds.base, packer.errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType

from packer.errors import KindRegistrationError, UnknownKindError
from packer.kinds.base import Kind

ENTRY_POINT_GROUP = "packer.kinds"


def builtin_kinds() -> dict[str, Kind]:
    from packer.kinds.atlas import AtlasKind
    from packer.kinds.audio import AudioKind
    from packer.kinds.image import ImageKind
    from packer.kinds.json import JsonKind
    from packer.kinds.raw import RawKind
    from packer.kinds.text import TextKind

    kinds: list[Kind] = [RawKind(), TextKind(), JsonKind(), ImageKind(), AudioKind(), AtlasKind()]
    return {kind.name: kind for kind in kinds}


def load_kinds() -> Mapping[str, Kind]:
    """Built-in kinds plus every ``packer.kinds`` entry point, by name."""
    kinds = builtin_kinds()
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: (p.name, p.value)):
        loaded = point.load()
        kind: Kind = loaded() if isinstance(loaded, type) else loaded
        if point.name in kinds or kind.name != point.name:
            raise KindRegistrationError(
                f"entry point {point.value!r} registers kind {kind.name!r} as {point.name!r}, "
                "which is taken or does not match its name",
                ENTRY_POINT_GROUP,
            )
        kinds[kind.name] = kind
    return MappingProxyType(kinds)


def get_kind(kinds: Mapping[str, Kind], name: str, path: str = "") -> Kind:
    try:
        return kinds[name]
    except KeyError:
        raise UnknownKindError(name, list(kinds), path) from None
