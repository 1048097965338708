"""packer: an asset packer on the doit task engine.

The public API is what this module exports, plus ``packer.doit`` (doit integration) and
``packer.pack`` (reading packs). Everything else is internal.

Names are imported on first use (PEP 562): ``import packer.pack`` in a game-side tool, or doit
loading packer's record backend in any project on the machine, must not pay for the API's
imports (pydantic, filelock, the kinds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packer.lazyexports import lazy_exports

if TYPE_CHECKING:
    from packer.api import (
        ListedAsset,
        SyncResult,
        init,
        install_merge_driver,
        ls,
        merge_registry,
        mv,
        schema,
        snapshot,
        status,
        sync,
    )
    from packer.errors import (
        ConfigError,
        ConflictError,
        CycleError,
        DeclError,
        DuplicateNameError,
        InputError,
        KindError,
        KindRegistrationError,
        LaneBusy,
        MoveError,
        PackerError,
        PackError,
        RegistryError,
        UnknownKindError,
    )
    from packer.kinds.base import Kind, KindContext
    from packer.plan import BuildPlan, Status, plan_build
    from packer.snapshot import Snapshot
    from packer.workspace import Workspace, open_workspace

_MODULE_OF = {
    "BuildPlan": "packer.plan",
    "ConfigError": "packer.errors",
    "ConflictError": "packer.errors",
    "CycleError": "packer.errors",
    "DeclError": "packer.errors",
    "DuplicateNameError": "packer.errors",
    "InputError": "packer.errors",
    "Kind": "packer.kinds.base",
    "KindContext": "packer.kinds.base",
    "KindError": "packer.errors",
    "KindRegistrationError": "packer.errors",
    "LaneBusy": "packer.errors",
    "ListedAsset": "packer.api",
    "MoveError": "packer.errors",
    "PackError": "packer.errors",
    "PackerError": "packer.errors",
    "RegistryError": "packer.errors",
    "Snapshot": "packer.snapshot",
    "Status": "packer.plan",
    "SyncResult": "packer.api",
    "UnknownKindError": "packer.errors",
    "Workspace": "packer.workspace",
    "init": "packer.api",
    "install_merge_driver": "packer.api",
    "ls": "packer.api",
    "merge_registry": "packer.api",
    "mv": "packer.api",
    "open_workspace": "packer.workspace",
    "plan_build": "packer.plan",
    "schema": "packer.api",
    "snapshot": "packer.api",
    "status": "packer.api",
    "sync": "packer.api",
}

__all__ = [
    "BuildPlan",
    "ConfigError",
    "ConflictError",
    "CycleError",
    "DeclError",
    "DuplicateNameError",
    "InputError",
    "Kind",
    "KindContext",
    "KindError",
    "KindRegistrationError",
    "LaneBusy",
    "ListedAsset",
    "MoveError",
    "PackError",
    "PackerError",
    "RegistryError",
    "Snapshot",
    "Status",
    "SyncResult",
    "UnknownKindError",
    "Workspace",
    "init",
    "install_merge_driver",
    "ls",
    "merge_registry",
    "mv",
    "open_workspace",
    "plan_build",
    "schema",
    "snapshot",
    "status",
    "sync",
]


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF, __all__, globals())
