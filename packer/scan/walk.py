"""Finding the asset folders: the sorted walk of the asset roots, and where it may go.

Nothing outside the workspace is read through it. The rule is the resolved path: a file or
folder is used only if its real path is under the workspace root's real path. It stays cheap
at 10,000s of assets because the walk never descends into a folder link (such a folder is not
scanned at all), and every asset root and every folder on its way is resolved once per scan,
so an asset folder the walk finds is known to be inside. The output folder is checked here
too: it must not be, or hold, what a build must never write over.

An unreadable folder in the walk (permission denied, a path longer than the system takes) is
a problem naming it, and it hides identities, so it blocks a sync.
Imports: stdlib, packer.workspace, packer.errors.
"""

from __future__ import annotations

import bisect
import itertools
import os
import stat
from dataclasses import dataclass

from packer.errors import ConfigError, PackerError
from packer.workspace import ASSET_FILE, CONFIG_FILE, REGISTRY_FILE, Workspace


def real_rel(real_base: str, real: str) -> str | None:
    """The workspace-relative path of a resolved absolute path ("." for the root), or None
    when it is outside the workspace. ``real_base`` is the root's real path and a separator."""
    if real + os.sep == real_base:
        return "."
    if real.startswith(real_base):
        return real[len(real_base) :].replace(os.sep, "/")
    return None


def within(rel: str, folder: str) -> bool:
    """Whether workspace-relative ``rel`` is ``folder`` or below it."""
    return folder in (".", rel) or rel.startswith(folder + "/")


def _real_roots(ws: Workspace, real_base: str) -> list[str]:
    """The asset roots' resolved workspace-relative paths, in the order of ``asset_roots``.

    Refuses a root that is missing, one that a link on its way leads out of the workspace, and
    one that a link makes an alias of (or a folder inside) another root, whose assets the scan
    would then find twice under two paths.
    """
    real_roots: list[str] = []
    for root in ws.asset_roots:
        if not os.path.isdir(ws.abspath(root)):
            raise ConfigError(
                f"asset folder {root!r} does not exist", CONFIG_FILE, field="workspace.assets"
            )
        parts = [] if root == "." else root.split("/")
        real = "."
        # Each folder on the way, not only the last: the scan relies on every folder that an
        # asset folder's path passes through resolving inside (``InputChecker.leaves_by_link``).
        for end in range(len(parts), 0, -1):
            resolved = real_rel(real_base, os.path.realpath(ws.abspath("/".join(parts[:end]))))
            if resolved is None:
                raise ConfigError(
                    f"asset folder {root!r} reaches outside the workspace through a link",
                    CONFIG_FILE,
                    field="workspace.assets",
                )
            if end == len(parts):
                real = resolved
        real_roots.append(real)
    pairs = zip(ws.asset_roots, real_roots, strict=True)
    for (root, real), (other, other_real) in itertools.permutations(pairs, 2):
        if within(real, other_real) and not within(root, other):
            raise ConfigError(
                f"asset folder {root!r} is {other!r} or inside it through a link; list one of them",
                CONFIG_FILE,
                field="workspace.assets",
            )
    return real_roots


_OWN_FILES = {CONFIG_FILE: "the workspace's config", REGISTRY_FILE: "the workspace's registry"}


def _check_out(ws: Workspace, real_base: str, real_roots: list[str], found: list[str]) -> None:
    """Refuse an output folder that is, or holds, what a build must never write over: the
    workspace's own files or an asset folder (the scan skips the output folder, so an asset
    there would look deleted and its id be retired). Links are resolved first: an output
    folder that links to an asset folder is found among the scanned folders (``found``, sorted)
    by bisection. Registered assets in it are refused by ``api`` (they show as missing)."""
    out = real_rel(real_base, os.path.realpath(ws.out_dir))
    if out is None:
        return  # outputs outside the workspace (a host graph's out_dir): nothing of it there
    roots = zip(ws.asset_roots, real_roots, strict=True)
    if out == ".":
        problem = "is the workspace root, which holds packer.toml and registry.json"
    elif out in _OWN_FILES:
        problem = f"is {_OWN_FILES[out]}, not a folder for outputs"
    elif held := [root for root, real in roots if within(real, out)]:
        problem = f"is or holds the asset folder {held[0]!r}"
    elif os.path.lexists(os.path.join(ws.out_dir, ASSET_FILE)):
        problem = f"is an asset folder (it holds {ASSET_FILE})"
    elif (at := _first_within(found, out)) is not None:
        problem = f"is or holds the asset folder {at!r}"
    else:
        return
    raise ConfigError(
        f"{ws.config.workspace.out!r} {problem}; choose another output folder",
        CONFIG_FILE,
        field="workspace.out",
    )


def _first_within(folders: list[str], folder: str) -> str | None:
    """The first of sorted ``folders`` that is ``folder`` or below it (they sort together)."""
    for candidate in (folder, folder + "/"):
        index = bisect.bisect_left(folders, candidate)
        if index < len(folders) and within(folders[index], folder):
            return folders[index]
    return None


@dataclass(frozen=True)
class Walked:
    folders: list[str]
    """Workspace-relative folders that hold an asset.json, sorted."""
    linked: set[str]
    """Those of them whose asset.json is a symbolic link."""
    unreadable: list[PackerError]
    """Folders the walk could not list."""
    listed: list[str]
    """Every folder the walk listed, workspace-relative ("." for the root): a change to what
    one holds changes its stat (``packer.statrecord``)."""


def walk(ws: Workspace, real_base: str) -> Walked:
    """Find every asset.json under the asset roots, never entering a folder link.

    Paths are built by string concatenation: ``os.path.join`` per folder is a measurable part
    of a no-op build at 10,000 assets. A root inside another root is skipped by the outer walk
    and walked as itself, so every asset is found once.
    """
    real_roots = _real_roots(ws, real_base)
    walked = _descend(ws, ["" if root == "." else root + "/" for root in ws.asset_roots])
    _check_out(ws, real_base, real_roots, walked.folders)
    return walked


def _descend(ws: Workspace, stack: list[str]) -> Walked:
    """The asset folders at and below the folders on ``stack`` (workspace-relative, each
    ending in "/", or "" for the root), found as ``walk`` finds them, sorted."""
    found: list[str] = []
    linked: set[str] = set()
    unreadable: list[PackerError] = []
    listed: list[str] = []
    skip = {ws.out_rel, *ws.asset_roots}
    base = os.path.join(ws.root, "")
    while stack:
        prefix = stack.pop()
        listed.append(prefix[:-1] or ".")
        try:
            with os.scandir(base + prefix if prefix else ws.root) as entries:
                for entry in entries:
                    name = entry.name
                    if name[0] == ".":
                        continue
                    if name == ASSET_FILE:
                        found.append(prefix[:-1] if prefix else ".")
                        if entry.is_symlink():  # from the directory entry: no system call
                            linked.add(found[-1])
                    elif entry.is_dir(follow_symlinks=False) and prefix + name not in skip:
                        stack.append(prefix + name + "/")
        except OSError as err:
            unreadable.append(
                PackerError(f"cannot read folder: {err.strerror}", prefix[:-1] or ".")
            )
    found.sort()
    return Walked(found, linked, unreadable, listed)


def check_roots(ws: Workspace, real_base: str, folders: list[str]) -> None:
    """What ``walk`` refuses in packer.toml's folders, for a scan that found the asset folders
    ``folders`` (sorted) another way: a bad asset root or output folder is a ConfigError."""
    _check_out(ws, real_base, _real_roots(ws, real_base), folders)


def reached(ws: Workspace, folder: str) -> bool:
    """Whether ``walk`` goes into ``folder`` (workspace-relative): it is an asset root, or below
    one through plain folders whose names do not start with "." and that are not the output
    folder (checked with an lstat each)."""
    roots = [root for root in ws.asset_roots if within(folder, root)]
    if not roots:
        return False
    root = max(roots, key=len)  # the innermost: an inner root is walked as itself
    if folder == root:
        return True
    prefix = "" if root == "." else root + "/"
    skip = {ws.out_rel, *ws.asset_roots}
    base = os.path.join(ws.root, "")
    for name in (folder if root == "." else folder[len(prefix) :]).split("/"):
        prefix += name
        if name.startswith(".") or prefix in skip:
            return False
        try:
            if not stat.S_ISDIR(os.lstat(base + prefix).st_mode):
                return False
        except OSError:
            return False
        prefix += "/"
    return True


def walk_below(ws: Workspace, folder: str) -> Walked:
    """The asset folders ``walk`` finds at and below ``folder`` (workspace-relative), sorted:
    none when the walk does not go into it (``reached``)."""
    if not reached(ws, folder):
        return Walked([], set(), [], [])
    return _descend(ws, ["" if folder == "." else folder + "/"])
