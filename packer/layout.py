"""The names of a workspace's files and folders, and finding its root: stdlib only, so that the
``packer build`` that answers from the stat record (``packer.statrecord``) finds them before
pydantic is imported. ``packer.workspace`` re-exports every name and derives every path.

The root is found like git finds its own: the nearest folder, from the start folder upward, that
holds packer.toml.
Imports: stdlib, packer.fsutil, packer.errors.
"""

from __future__ import annotations

import os

from packer.errors import ConfigError
from packer.fsutil import MIB

CONFIG_FILE = "packer.toml"
REGISTRY_FILE = "registry.json"
ASSET_FILE = "asset.json"
STATE_DIR = ".packer"
CONFIG_LIMIT = 1 * MIB

# Files and folders under the state folder (``.packer/``): state, never an authority.
LANE_LOCK = "lane.lock"
LANE_HOLDER = "lane.holder"
BUILD_LOCK = "build.lock"
BUILD_HOLDER = "build.holder"
STAT_CACHE = "statcache"
STAT_RECORD = "stats"
DECL_CACHE = "decls"
PACK_RECORD = "packed"
DOIT_RECORD = "doit.json"
LAST_BUILD = "last-build.json"
OUTPUT_CACHE = "cache"

ARTIFACTS = "assets"
"""The folder of per-asset artifacts under the output folder."""


def find_root(start: str) -> str:
    folder = os.path.abspath(start)
    while True:
        # exists, not isfile: a FIFO or a folder named packer.toml is this workspace's config,
        # refused by load_config with its reason rather than passed over for a parent's.
        if os.path.exists(os.path.join(folder, CONFIG_FILE)):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            raise ConfigError(
                "not inside a packer workspace (no packer.toml here or in any parent folder); "
                "make one with `packer init`, or name one with `-C DIR`",
                ".",
            )
        folder = parent
