"""packer: an asset packer on the doit task engine.

The public API is what this module exports, plus ``packer.doit`` (doit integration) and
``packer.pack`` (reading packs). Everything else is internal.
"""

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
    LaneBusy,
    PackerError,
    PackError,
    RegistryError,
    UnknownKindError,
)
from packer.kinds.base import Kind, KindContext
from packer.plan import BuildPlan, Status, plan_build
from packer.snapshot import Snapshot
from packer.workspace import Workspace, open_workspace

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
    "LaneBusy",
    "ListedAsset",
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
