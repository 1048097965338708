"""An asset's inputs: resolved against its folder, kept inside the workspace, statted.

Inputs are only statted here, never opened: a FIFO, device, socket or folder is refused as "not
a file". A plain input name (no ``/``) needs only the lstat it gets anyway, resolved further
only when it is itself a link: the folders on the asset folder's own path are known to be
inside (``walk``). An input name with ``/`` has the folders on its way that are not the asset
folder's own checked, each once per scan however many inputs pass through it.
Imports: stdlib, packer.model, packer.statcache, packer.errors, packer.scan.declaration,
packer.scan.walk.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Sequence

from packer.errors import InputError, MissingInputError, PackerError
from packer.model import path_problem
from packer.scan.declaration import Declaration
from packer.scan.walk import real_rel
from packer.statcache import FileStat

DOES_NOT_EXIST = "does not exist"


def resolve_input(folder: str, name: str) -> str | None:
    """Workspace-relative path of an input, or None when it escapes the workspace."""
    if "/" not in name and "\\" not in name and name not in (".", ".."):
        return name if folder == "." else f"{folder}/{name}"  # the common case, kept cheap
    rel = posixpath.normpath(posixpath.join(folder, name))
    return None if path_problem(rel) else rel


def resolve_inputs(
    folder: str, names: Sequence[str], display: str
) -> tuple[tuple[str, ...], list[PackerError]]:
    """The workspace-relative paths of the inputs that stay inside, and an error for each other."""
    inputs: list[str] = []
    problems: list[PackerError] = []
    for index, name in enumerate(names):
        rel = resolve_input(folder, name)
        if rel is None:
            message = f"input {name!r} escapes the workspace"
            problems.append(InputError(message, display, field=f"inputs.{index}"))
        else:
            inputs.append(rel)
    return tuple(inputs), problems


class InputChecker:
    """One scan's checks of input files: where each leads, and its stat when it is a file."""

    def __init__(self, base: str, real_base: str) -> None:
        self.base = base
        """The workspace root's path and a separator."""
        self.real_base = real_base
        """The root's real path and a separator."""
        self.links: set[str] = set()
        """Inputs and folders on the way to inputs that are links (each leads inside)."""
        # Folders off an asset folder's own path that inputs pass through: whether each stays
        # inside the workspace (checked once per scan however many inputs pass through it).
        self._folder_inside: dict[str, bool] = {}

    def outside(self, rel: str) -> bool:
        """Whether ``rel`` resolves (links followed) to a path outside the workspace."""
        return real_rel(self.real_base, os.path.realpath(self.base + rel)) is None

    def leaves_by_link(self, folder: str, rel: str) -> bool:
        """Whether a folder on the way to input ``rel`` of asset ``folder`` is a link out.

        The folders on the asset folder's own path are inside already (the roots and the
        folders on their way are resolved once per scan, and the walk enters no folder link),
        so only the others are checked: each with an lstat, resolved if it is a link. Checked
        in order from the root, so each one's parent is known to resolve inside.
        """
        parts = rel.split("/")[:-1]
        own = [] if folder == "." else folder.split("/")
        shared = 0
        while shared < min(len(parts), len(own)) and parts[shared] == own[shared]:
            shared += 1
        for end in range(shared + 1, len(parts) + 1):
            sub = "/".join(parts[:end])
            inside = self._folder_inside.get(sub)
            if inside is None:
                inside = self._folder_inside[sub] = not self._is_link_out(sub)
            if not inside:
                return True
        return False

    def _is_link_out(self, rel: str) -> bool:
        try:
            if not stat.S_ISLNK(os.lstat(self.base + rel).st_mode):
                return False
        except OSError:
            return False  # nothing there: the input itself is then reported missing
        self.links.add(rel)
        return self.outside(rel)

    def through_link(self, d: Declaration) -> bool:
        """Whether an input of ``d`` checked so far is, or is reached through, a link: its
        content is then also at another path (where a change to it would be seen)."""
        return bool(self.links) and any(
            rel in self.links or any(rel.startswith(link + "/") for link in self.links)
            for rel in d.inputs
        )

    def check(
        self, d: Declaration, display: str, problems: list[PackerError]
    ) -> dict[str, FileStat]:
        """Stat every input of ``d`` that stays inside: their stats, and a problem for each
        that is not a file."""
        stats: dict[str, FileStat] = {}
        for index, name in enumerate(d.input_names):
            rel = resolve_input(d.path, name)
            if rel is None:
                continue  # reported with the declaration
            found = self._stat(d.path, name, rel)
            field = f"inputs.{index}"
            if found == DOES_NOT_EXIST:
                problems.append(MissingInputError(f"input {name!r} {found}", display, field, rel))
            elif isinstance(found, str):
                problems.append(InputError(f"input {name!r} {found}", display, field=field))
            else:
                stats[rel] = found
        return stats

    def _stat(self, folder: str, name: str, rel: str) -> FileStat | str:
        """The stat of input ``rel``, or why it cannot be used."""
        if "/" in name and self.leaves_by_link(folder, rel):
            return "reaches outside the workspace through a link"
        try:
            st = os.lstat(self.base + rel)
            if stat.S_ISLNK(st.st_mode):
                self.links.add(rel)
                # A link may point anywhere: follow it only to a file inside the workspace.
                if self.outside(rel):
                    return "links outside the workspace"
                st = os.stat(self.base + rel)
        except OSError as err:
            missing = err.errno in (errno.ENOENT, errno.ENOTDIR)
            return DOES_NOT_EXIST if missing else f"cannot be read: {err.strerror}"
        if not stat.S_ISREG(st.st_mode):
            return "is not a file"
        return FileStat.of(st)
