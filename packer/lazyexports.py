"""Names a package exports but imports only on first use (PEP 562).

``packer`` and ``packer.pack`` export their names this way, so that ``import packer.pack`` in a
game-side tool, or doit loading packer's record backend in any project, does not pay for what it
never touches (pydantic, filelock, the kinds, the pack writer).
Imports: stdlib only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str,
    module_of: Mapping[str, str],
    exported: Sequence[str],
    namespace: dict[str, Any],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``: a name in ``module_of`` is
    imported from its module when first looked up, then kept in ``namespace`` (the package's
    globals) so later lookups skip the hook."""

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(exported)

    return __getattr__, __dir__
