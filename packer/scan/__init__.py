"""The read-only scan of a workspace: find, parse and check every asset.json.

``scan(ws, kinds, cache)`` returns a ``ScanResult`` of ``Declaration`` values, sorted by path
whatever order the file system returns. The work is split along its seams:

- ``walk``: the sorted walk of the asset roots, and the rule that keeps it inside the workspace;
- ``assetfile``: one asset.json parsed and checked, errors placed at line and column;
- ``declcache``: parsed declarations reused by content hash and kind fingerprint;
- ``inputs``: inputs resolved, kept inside the workspace, statted (never opened);
- ``graph``: duplicate names, unknown deps and cycles, across all declarations;
- ``scanner``: one scan putting these together; ``declaration``: the values it returns.

Imports: its own modules only.
"""

from __future__ import annotations

from packer.scan.assetfile import ASSET_FILE_LIMIT, parse_declaration
from packer.scan.declaration import Declaration, ScanResult
from packer.scan.graph import find_cycle
from packer.scan.scanner import ScanState, rescan, scan, scan_state

__all__ = [
    "ASSET_FILE_LIMIT",
    "Declaration",
    "ScanResult",
    "ScanState",
    "find_cycle",
    "parse_declaration",
    "rescan",
    "scan",
    "scan_state",
]
