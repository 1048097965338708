"""registry.json: parsing, validation, canonical text and the three-way merge.

This module never writes the file (``packer.lane`` does). The canonical text is a pure function
of the registry value: entries sorted by asset_id, fixed key order, two-space indent, trailing
newline, and no field that every write changes, so two branches' registries merge line by line.

Reading is strict, since a registry that parses wrongly can retire or misplace identities: the
file is read through ``fsutil.read_regular`` (no FIFO, device or folder, at most
``REGISTRY_LIMIT``, 512 MiB, some millions of assets), parsed by ``jsontext.parse_json``
(strict UTF-8 without a byte-order mark, no duplicate keys, depth and number limits), and every
``path`` must be a normalised workspace-relative path (``model.path_problem``).
Imports: stdlib, pydantic, packer.model, packer.hashing, packer.fsutil, packer.jsontext,
packer.workspace, packer.errors.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from pydantic import ValidationError

from packer.errors import ConflictError, RegistryError
from packer.fsutil import MIB, read_regular
from packer.hashing import hash_bytes, hash_parts
from packer.jsontext import JsonTextError, parse_json
from packer.model import REGISTRY_FORMAT, RegistryEntry, RegistryFile, field_problem
from packer.workspace import REGISTRY_FILE

REGISTRY_LIMIT = 512 * MIB

MERGE_DRIVER = "packer-registry"
"""The git merge driver's name, as .gitattributes and the git config spell it."""
MERGE_DRIVER_COMMAND = "packer merge-registry %O %A %B"
GITATTRIBUTES_LINE = f"{REGISTRY_FILE} merge={MERGE_DRIVER}"

# A line git writes around each side of a conflict it could not merge.
_CONFLICT_MARKER = re.compile(rb"^(?:<{7}|={7}|>{7})(?: |\r?$)", re.MULTILINE)


@dataclass(frozen=True)
class Registry:
    """An immutable registry value: active entries sorted by asset_id, plus retired ids."""

    entries: tuple[RegistryEntry, ...] = ()
    retired: frozenset[str] = field(default_factory=frozenset)

    # The indexes are read-only views of dicts nobody else holds: a frozen value stays frozen
    # all the way down, at the cost of one small object per index.
    @cached_property
    def by_id(self) -> Mapping[str, RegistryEntry]:
        return MappingProxyType({entry.asset_id: entry for entry in self.entries})

    @cached_property
    def by_path(self) -> Mapping[str, RegistryEntry]:
        return MappingProxyType({entry.path: entry for entry in self.entries})

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its fields: the cached indexes (mapping proxies) do not pickle.
        return (Registry, (self.entries, self.retired))

    @cached_property
    def identity_hash(self) -> str:
        """A digest of the identities alone (ids, names, paths, retired ids), not of the
        advisory ``content`` fields: what a snapshot's fingerprint names of the registry."""
        parts = [part for entry in self.entries for part in entry.identity]
        return hash_parts(["entries", *parts, "retired", *sorted(self.retired, key=str.encode)])

    def taken_ids(self) -> frozenset[str]:
        """Every id that may never be drawn again: active and retired."""
        return frozenset(self.by_id) | self.retired

    def replace(
        self,
        *,
        upsert: Iterable[RegistryEntry] = (),
        retire: Iterable[str] = (),
    ) -> Registry:
        """A new registry with entries added or updated and ids retired."""
        entries = dict(self.by_id)
        for entry in upsert:
            entries[entry.asset_id] = entry
        retired = set(self.retired)
        for asset_id in retire:
            entries.pop(asset_id, None)
            retired.add(asset_id)
        return make_registry(entries.values(), retired)


def make_registry(entries: Iterable[RegistryEntry], retired: Iterable[str]) -> Registry:
    return Registry(tuple(sorted(entries, key=lambda e: e.asset_id.encode())), frozenset(retired))


def new_asset_id(taken: frozenset[str] | set[str]) -> str:
    """A fresh id from a 64-bit random space, re-drawn on collision with any active or retired id.

    Random rather than sequential so that two branches registering assets do not draw the same id.
    """
    while True:
        candidate = secrets.token_hex(8)
        if candidate not in taken:
            return candidate


def render(registry: Registry) -> bytes:
    """The canonical text of a registry."""
    data = {
        "format": REGISTRY_FORMAT,
        "assets": [_entry_json(e) for e in registry.entries],
        "retired": sorted(registry.retired, key=str.encode),
    }
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _entry_json(entry: RegistryEntry) -> dict[str, str]:
    data = {"asset_id": entry.asset_id, "asset_name": entry.asset_name, "path": entry.path}
    if entry.content is not None:
        data["content"] = entry.content
    return data


def parse(text: bytes, path: str = REGISTRY_FILE) -> Registry:
    """Parse and check registry text; anything hand-broken is a RegistryError naming ``path``."""
    try:
        raw = parse_json(text)
    except JsonTextError as err:
        marker = _CONFLICT_MARKER.search(text)
        if marker is not None:
            raise _unresolved_merge(path, text.count(b"\n", 0, marker.start()) + 1) from None
        raise RegistryError(f"invalid JSON: {err.message}", path, err.line, err.col) from None
    try:
        data = RegistryFile.model_validate(raw)
    except ValidationError as err:
        problem = field_problem(err, RegistryFile)
        raise RegistryError(problem.message, path, field=problem.field) from None
    registry = make_registry(data.assets, data.retired)
    _check_consistent(registry, len(data.assets), len(data.retired), path)
    return registry


def _unresolved_merge(path: str, line: int) -> RegistryError:
    # git merged registry.json as text: its merge driver was not installed in this clone.
    return RegistryError(
        "unresolved git merge (conflict markers <<<<<<< ======= >>>>>>>); registry.json is "
        "merged by packer's merge driver: undo the merge (git merge --abort), install the "
        f"driver with `packer merge-registry --install` (that is, `git config "
        f'merge.{MERGE_DRIVER}.driver "{MERGE_DRIVER_COMMAND}"`), check that .gitattributes '
        f"holds `{GITATTRIBUTES_LINE}`, and merge again",
        path,
        line,
        1,
    )


def _check_consistent(registry: Registry, n_entries: int, n_retired: int, path: str) -> None:
    if len(registry.by_id) != n_entries:
        raise RegistryError("an asset_id is listed twice", path, field="assets")
    if len(registry.retired) != n_retired:
        raise RegistryError("a retired id is listed twice", path, field="retired")
    if len(registry.by_path) != n_entries:
        seen: dict[str, str] = {}
        for entry in registry.entries:
            if entry.path in seen:
                raise RegistryError(
                    f"path {entry.path!r} is claimed by {seen[entry.path]} and {entry.asset_id}",
                    path,
                    field="assets",
                )
            seen[entry.path] = entry.asset_id
    both = registry.retired & set(registry.by_id)
    if both:
        raise RegistryError(f"id {min(both)} is both active and retired", path, field="retired")


def read_registry(
    path: str, display: str = REGISTRY_FILE, known: tuple[Registry, str] | None = None
) -> tuple[Registry, str]:
    """Read a registry file: the value and the xxh3 of its text (which names it in snapshots).

    A missing file is an empty registry (a fresh clone before the first sync). ``known`` is a
    registry read before and its hash: when the text still has that hash it is not parsed again.
    """
    text = _text_if_present(path, display)
    if text is None:
        return Registry(), hash_bytes(b"")
    digest = hash_bytes(text)
    if known is not None and known[1] == digest:
        return known
    return parse(text, display), digest


def read_registry_hash(path: str, display: str = REGISTRY_FILE) -> str:
    """The hash ``read_registry`` would give for the file as it is now, without parsing it."""
    text = _text_if_present(path, display)
    return hash_bytes(b"" if text is None else text)


def _text_if_present(path: str, display: str) -> bytes | None:
    try:
        return read_registry_text(path, display)
    except FileNotFoundError:
        return None


def read_registry_text(path: str, display: str) -> bytes:
    """The bytes of a registry file; FileNotFoundError when there is none, and RegistryError
    naming ``display`` when it cannot be read (a special file, too large, no permission)."""
    try:
        return read_regular(path, REGISTRY_LIMIT)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise RegistryError(f"cannot read: {err.strerror}", display) from None


# --- three-way merge (the git merge driver) ---------------------------------------------------

_RETIRED = "retired"
_State = RegistryEntry | str | None


def _state(registry: Registry, asset_id: str) -> _State:
    """The identity of ``asset_id`` on one side: retired, absent, or its entry without the
    advisory ``content`` (which never makes a conflict; ``_content`` picks it afterwards)."""
    if asset_id in registry.retired:
        return _RETIRED
    entry = registry.by_id.get(asset_id)
    return None if entry is None else entry.model_copy(update={"content": None})


def _content(asset_id: str, base: Registry, ours: Registry, theirs: Registry) -> str | None:
    """The merged entry's ``content``: the side that changed it from the base, ours if both
    did (either is what a sync saw; the next sync records the merged workspace's own)."""
    was, mine, their = (side.by_id.get(asset_id) for side in (base, ours, theirs))
    before = None if was is None else was.content
    if mine is not None and (mine.content != before or their is None):
        return mine.content
    return None if their is None else their.content


def merge(base: Registry, ours: Registry, theirs: Registry) -> Registry:
    """Union both sides' registrations, moves, renames and retirements.

    Per id, a side that left the base state unchanged yields to the other; a move on one side
    and a rename on the other combine field by field; both sides changing the same field of an
    id differently (or one retiring what the other changed), or two ids ending up at one path,
    is a real conflict.
    """
    ids = set(base.by_id) | base.retired | set(ours.by_id) | ours.retired
    ids |= set(theirs.by_id) | theirs.retired
    conflicts: list[str] = []
    entries: list[RegistryEntry] = []
    retired: set[str] = set()
    side: dict[str, str] = {}  # by asset_id: whose change the merged entry is, for conflicts
    for asset_id in sorted(ids):
        was, mine, their = _state(base, asset_id), _state(ours, asset_id), _state(theirs, asset_id)
        if mine == their or their == was:
            result = mine
            side[asset_id] = "ours" if mine != their else "unchanged" if mine == was else "both"
        elif mine == was:
            result = their
            side[asset_id] = "theirs"
        elif (combined := _merge_fields(was, mine, their)) is not None:
            result = combined
            side[asset_id] = "ours and theirs"
        else:
            conflicts.append(
                f"asset_id {asset_id}: ours {_describe(mine)}, theirs {_describe(their)}"
            )
            continue
        if result == _RETIRED:
            retired.add(asset_id)
        elif isinstance(result, RegistryEntry):
            content = _content(asset_id, base, ours, theirs)
            entries.append(result.model_copy(update={"content": content}))
    claimed: dict[str, RegistryEntry] = {}
    for entry in entries:
        other = claimed.setdefault(entry.path, entry)
        if other is not entry:
            first, second = (other, entry) if side[other.asset_id] != "theirs" else (entry, other)
            conflicts.append(f"path {entry.path!r}: {_claim(first, side)}, {_claim(second, side)}")
    if conflicts:
        raise ConflictError("; ".join(conflicts), REGISTRY_FILE)
    return make_registry(entries, retired)


def _merge_fields(was: _State, mine: _State, their: _State) -> RegistryEntry | None:
    """One entry changed on both sides in different fields (a move here, a rename there): both.

    None when a field changed differently on both sides, or when either side retired or removed it.
    """
    if not (
        isinstance(was, RegistryEntry)
        and isinstance(mine, RegistryEntry)
        and isinstance(their, RegistryEntry)
    ):
        return None
    fields: dict[str, str] = {}
    for name in ("asset_name", "path"):
        base, a, b = getattr(was, name), getattr(mine, name), getattr(their, name)
        if a == b or b == base:
            fields[name] = a
        elif a == base:
            fields[name] = b
        else:
            return None
    return mine.model_copy(update=fields)


def _claim(entry: RegistryEntry, side: Mapping[str, str]) -> str:
    """Who puts ``entry`` at its path: ``ours has ID ('NAME') there``, and so on."""
    whose = side[entry.asset_id]
    who = {"unchanged": "base and both sides have", "both": "both sides have"}.get(
        whose, f"{whose} {'have' if whose == 'ours and theirs' else 'has'}"
    )
    return f"{who} {entry.asset_id} ({entry.asset_name!r}) there"


def _describe(state: _State) -> str:
    if state is None:
        return "removed it"
    if isinstance(state, RegistryEntry):
        return f"has {state.asset_name!r} at {state.path!r}"
    return "retired it"
