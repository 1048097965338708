"""The ``packer build`` shortcut: a plain ``packer build`` whose plan matches the last successful
one, with every output as that build left it, need not load doit at all.

The record (``.packer/last-build.json``) holds the plan's pack key (a content digest, never a
time) and the stat keys of what a full build leaves: doit's record (replaced only when it
changes, so a plain ``doit`` that builds nothing leaves it as it is), the pack, the manifest
and the artifacts folder (whose ctime moves when an artifact is added, removed or replaced).
Any change to one of them (``doit forget``, ``doit clean``, a deleted artifact) sends the
build through doit again. Like every cache it is never an authority: deleting it costs one
pass through doit.
Imports: stdlib, packer.workspace, packer.fsutil, packer.jsontext.
"""

from __future__ import annotations

import json
import os

from packer.fsutil import KIB, atomic_write, read_regular
from packer.jsontext import JsonTextError, parse_json
from packer.workspace import LAST_BUILD, Workspace

_RECORD_LIMIT = 64 * KIB


def output_paths(ws: Workspace) -> tuple[str, ...]:
    """What a full build leaves, whose stats tell whether anything touched it since."""
    return ws.doit_record_path, ws.pack_path, ws.manifest_path, ws.artifacts_dir


def _outputs_state(ws: Workspace) -> dict[str, list[int] | None]:
    """The stat keys (size, mtime, ctime, inode) of what a full build leaves; None for a file
    that is not there."""
    state: dict[str, list[int] | None] = {}
    for path in output_paths(ws):
        try:
            st = os.stat(path)
        except OSError:
            state[path] = None
            continue
        state[path] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    return state


def nothing_changed(ws: Workspace, pack_key: str) -> bool:
    """True when the last full ``packer build`` succeeded for a plan with this pack key and left
    its outputs as they are now: doit would find every task up to date."""
    try:
        last = parse_json(read_regular(ws.state_path(LAST_BUILD), _RECORD_LIMIT))
    except (OSError, JsonTextError):
        return False
    state = _outputs_state(ws)
    return (
        isinstance(last, dict)
        and last.get("pack_key") == pack_key
        and last.get("outputs") == state
        and None not in state.values()
    )


def record_build(ws: Workspace, pack_key: str) -> None:
    """Remember that a full build of the plan with ``pack_key`` succeeded, and what it left."""
    record = {"pack_key": pack_key, "outputs": _outputs_state(ws)}
    atomic_write(ws.state_path(LAST_BUILD), json.dumps(record).encode(), durable=False)
