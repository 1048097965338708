"""The stat record: a plain ``packer build`` that nothing can have changed since the last one is
answered from stats alone, before pydantic, doit or any of the build's code is imported.

After a plain ``packer build`` succeeded, or found nothing to do, ``write_record`` keeps
``.packer/stats``: the stat key (size, mtime, ctime, inode) of every path its snapshot came
from (packer.toml, registry.json, every folder the scan listed, every asset.json and input) and
of what the build left (``shortcut.output_paths``), the environment (Python, ``sys.path`` and
each entry's stat, packer's own source files, every ``PACKER_*`` variable) and how many assets
there are. ``unchanged_build`` stats the same paths again: when every key is equal, the build
has nothing to do, and it says so in the line the full path prints.

Why equal keys are enough: the content a build read is the content of its snapshot, and a path
is recorded only when its mtime and its ctime are older than the snapshot's start less
``statcache.RACY_NS``, so it was not written while the build ran, nor so close to its start that
a later write could leave the same times. A write changes the ctime, which nobody can set back;
a file replaced, added or removed changes its folder's stat, and every folder the scan listed is
recorded. A build whose scan was partial, could not list a folder, or read a file through a
link or outside the asset roots (``ScanState.incremental``) leaves no record.

Like every cache here it is never an authority: a missing, damaged or stale record, or any path
that differs, costs one full pass, which writes a new one.
Imports: stdlib, packer.layout, packer.statcache, packer.fsutil, packer.errors.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from packer.errors import PackerError, counted
from packer.fsutil import MIB, atomic_write, read_regular
from packer.layout import ASSET_FILE, STAT_RECORD, STATE_DIR, find_root
from packer.statcache import RACY_NS

_RECORD_VERSION = 2
RECORD_LIMIT = 1024 * MIB
"""The largest record read: about 250 MB at 1,000,000 assets (3,000,000 paths)."""
_StatKey = tuple[int, int, int, int]


def up_to_date_line(assets: int) -> str:
    """What a ``packer build`` with nothing to do prints."""
    return f"-- {counted(assets, 'asset')} and the pack are up to date\n"


def _key(path: str) -> _StatKey | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _environment() -> tuple[object, ...]:
    """What besides the workspace decides a build's outputs: the interpreter, the installed
    packages (an install or removal changes its folder on ``sys.path``), packer's own code and
    its settings from the environment."""
    here = os.path.dirname(os.path.abspath(__file__))
    sources: list[tuple[str, _StatKey | None]] = []
    for folder, subfolders, files in os.walk(here):
        subfolders[:] = [f for f in subfolders if f != "__pycache__"]
        paths = [os.path.join(folder, f) for f in files if f.endswith(".py")]
        sources.extend((path, _key(path)) for path in paths)
    return (
        sys.version,
        sys.executable,
        tuple((entry, _key(entry)) for entry in sys.path),
        tuple(sorted(sources)),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PACKER_"))),
    )


def _record_path(root: str) -> str:
    return os.path.join(root, STATE_DIR, STAT_RECORD)


def write_record(
    root: str,
    settings: Sequence[str],
    listed: Sequence[str] | None,
    folders: Iterable[str],
    inputs: Iterable[str],
    outputs: Sequence[str],
    *,
    assets: int,
    started_ns: int,
) -> bool:
    """Record, for the workspace at ``root``, the snapshot whose scan started at ``started_ns``
    (``settings``: the workspace's own files it read, packer.toml and registry.json, absolute;
    ``listed``: the folders it listed, None when it listed only some; ``folders``: the asset
    folders; ``inputs``: every input, all workspace-relative) and the ``outputs`` a successful
    build of it left (absolute paths). Without a record when one of them was written too late
    to tell (see the module doc), and then any older one is removed. Returns whether it wrote."""
    record = _record_path(root)
    if listed is not None:
        base = os.path.join(root, "")
        read = [
            *settings,
            *(root if rel == "." else base + rel for rel in listed),
            *(base + (ASSET_FILE if f == "." else f"{f}/{ASSET_FILE}") for f in folders),
            *(base + rel for rel in inputs),
        ]
        late = started_ns - RACY_NS
        keys: list[_StatKey | None] = []
        for path in read:  # registry.json first: the file an edit's build most often rewrites
            key = _key(path)
            if key is None or key[1] >= late or key[2] >= late:
                break  # too fresh to vouch for: no need to stat the rest
            keys.append(key)
        inside = all(path.startswith(base) for path in (*settings, *outputs))
        if inside and len(keys) == len(read):
            keys.extend(_key(path) for path in outputs)
            # Workspace-relative: a third of the record's size at 1,000,000 assets.
            paths = tuple("." if path == root else path[len(base) :] for path in (*read, *outputs))
            if None not in keys:
                data: Any = (_RECORD_VERSION, _environment(), assets, paths, tuple(keys))
                atomic_write(record, marshal.dumps(data), durable=False)
                return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record)
    return False


def unchanged_build(start: str) -> int | None:
    """How many assets the workspace found from ``start`` has when the stat record of its last
    plain ``packer build`` still holds for every path; None when anything differs or no record
    can be read."""
    try:
        root = find_root(start)
        version, environment, assets, paths, keys = marshal.loads(
            read_regular(_record_path(root), RECORD_LIMIT)
        )
    except (OSError, PackerError, EOFError, ValueError, TypeError):
        return None
    if version != _RECORD_VERSION or environment != _environment():
        return None
    stat = os.stat
    base = os.path.join(root, "")
    try:
        for path, key in zip(paths, keys, strict=True):
            st = stat(base + path)
            if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != key:
                return None
    except (OSError, ValueError, TypeError):
        return None
    return assets if type(assets) is int else None


def answer_unchanged_build(out: TextIO) -> bool:
    """Print what a plain ``packer build`` in the current folder prints when it has nothing to
    do, if the stat record says so; False (nothing printed) when the build must look."""
    assets = unchanged_build(os.getcwd())
    if assets is None:
        return False
    out.write(up_to_date_line(assets))
    return True


__all__ = ["answer_unchanged_build", "unchanged_build", "up_to_date_line", "write_record"]
