"""The manifest: the pack's index as JSON beside it, in one canonical text.

Owns that text (written one asset at a time), loading a manifest within a size limit through
packer's strict JSON parser, and comparing one with a pack's index. docs/pack-format.md §2 is
the contract.
Imports: stdlib, packer.errors, packer.fsutil, packer.jsontext, packer.pack.format.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring

from packer.errors import PackError
from packer.fsutil import GIB, FileTooLarge, read_regular
from packer.jsontext import JsonTextError, parse_json
from packer.pack.format import FORMAT_COMPRESSED, IndexEntry, cut_short

MANIFEST_LIMIT = GIB
"""Largest manifest read (a million assets take about 250 MB): a link to a device or a runaway
file in its place is refused, never read until memory runs out."""

_MANIFEST_KEYS = ("format", "pack", "snapshot", "assets")
_ASSET_KEYS = ("asset_id", "asset_name", "kind", "offset", "size", "xxh3_128")
_CODING_KEYS = ("codec", "raw_size")
"""What a format-2 manifest adds to each asset."""


def _asset_keys(version: int) -> tuple[str, ...]:
    return _ASSET_KEYS + _CODING_KEYS if version == FORMAT_COMPRESSED else _ASSET_KEYS


class ManifestSyntaxError(PackError):
    """The manifest is not valid JSON; ``line`` and ``col`` say where when known
    (``PATH:LINE:COL``)."""

    def __init__(self, message: str, path: str, line: int | None, col: int | None) -> None:
        # PackError's constructor takes no position, so this subclass adds it in its own.
        super().__init__(message, path)
        self.line, self.col = line, col


def default_manifest_path(pack_path: str) -> str:
    """``build/x.pack`` -> ``build/x.manifest.json``: the manifest sits beside its pack."""
    return pack_path.removesuffix(".pack") + ".manifest.json"


def manifest_chunks(
    pack_name: str, snapshot: str, entries: Sequence[IndexEntry], version: int
) -> Iterator[bytes]:
    """The manifest's one canonical text, one asset at a time.

    The text is exactly ``json.dumps(document, indent=2, ensure_ascii=False) + "\\n"``, but
    rendered per asset: dumping 100,000 assets at once peaks at several times the manifest's
    size. An asset is filled into a template (``_asset_template``) rather than dumped, since
    ``json.dumps`` with an indent runs its pure-Python encoder: a third of writing a pack.
    ``is_canonical`` compares a manifest against these chunks byte for byte.
    """
    head = (
        f'{{\n  "format": {version},\n  "pack": {encode_basestring(pack_name)},\n'
        f'  "snapshot": {encode_basestring(snapshot)},\n  "assets": '
    )
    if not entries:
        yield (head + "[]\n}\n").encode("utf-8")
        return
    yield (head + "[\n    ").encode("utf-8")
    template = _asset_template(version)
    separator = ""
    coded = version == FORMAT_COMPRESSED
    for entry in entries:
        values = [
            encode_basestring(entry.asset_id),
            encode_basestring(entry.asset_name),
            encode_basestring(entry.kind),
            _integer(entry.offset),
            _integer(entry.size),
            encode_basestring(entry.xxh3_128),
        ]
        if coded:
            values += [encode_basestring(entry.codec), _integer(entry.raw_size)]
        rendered = template % tuple(values)
        yield (separator + rendered).encode("utf-8")
        separator = ",\n    "
    yield b"\n  ]\n}\n"


def _asset_template(version: int) -> str:
    """One asset as ``json.dumps(asset, indent=2)`` lays it out, indented to its place in the
    list (strings escape their own newlines, so every newline is structure), with a ``%s``
    for each value's JSON text."""
    fields = ",\n".join(f'      "{key}": %s' for key in _asset_keys(version))
    return "{\n" + fields + "\n    }"


def _integer(value: int) -> str:
    """An integer's JSON text; anything else is a TypeError, as the manifest holds no other
    numbers (a bool would render as JSON's ``true``)."""
    if type(value) is not int:
        raise TypeError(f"manifest numbers are integers, not {type(value).__name__}")
    return int.__repr__(value)


def is_canonical(
    raw: bytes, pack_name: str, snapshot: str, entries: Sequence[IndexEntry], version: int
) -> bool:
    """Whether ``raw`` is, byte for byte, the manifest packer writes for these entries."""
    position = 0
    for chunk in manifest_chunks(pack_name, snapshot, entries, version):
        if not raw.startswith(chunk, position):
            return False
        position += len(chunk)
    return position == len(raw)


def load_manifest(path: str) -> tuple[bytes, dict[str, object]]:
    """The manifest's bytes and its document, checked for the documented top-level keys."""
    try:
        size = os.stat(path).st_size
        if size > MANIFEST_LIMIT:  # refused unread
            raise PackError(
                f"manifest is larger than the limit of {MANIFEST_LIMIT // GIB} GiB", path
            )
        # Asking for no more than the size seen: read_regular reserves its whole limit up front.
        raw = read_regular(path, size)
    except FileNotFoundError:
        raise PackError("manifest not found", path) from None
    except FileTooLarge:
        raise PackError("manifest grew while it was read", path) from None
    except OSError as err:
        raise PackError(f"cannot read the manifest: {err.strerror or err}", path) from err
    try:
        document = parse_json(raw)
    except JsonTextError as err:
        raise ManifestSyntaxError(
            f"manifest is not valid JSON: {err.message}", path, err.line, err.col
        ) from None
    if not isinstance(document, dict) or tuple(document) != _MANIFEST_KEYS:
        raise PackError(f"manifest must be an object with keys {', '.join(_MANIFEST_KEYS)}", path)
    return raw, document


def _compare_asset(
    path: str, number: int, asset: object, entry: IndexEntry, keys: tuple[str, ...]
) -> None:
    """Check the manifest's asset ``number`` against the pack's entry at the same place."""
    if not isinstance(asset, dict) or tuple(asset) != keys:
        raise PackError(
            f"manifest asset {number} must be an object with keys {', '.join(keys)}", path
        )
    if asset["asset_id"] != entry.asset_id:
        raise PackError(
            f"manifest lists {cut_short(asset['asset_id'])} where the pack has this entry",
            path,
            entry.asset_id,
        )
    for key in keys[1:]:
        value, actual = asset[key], getattr(entry, key)
        if value != actual or type(value) is not type(actual):
            raise PackError(
                f"manifest {key} {cut_short(value)} does not match the pack ({cut_short(actual)})",
                path,
                entry.asset_id,
            )


def compare_manifest(
    path: str,
    document: dict[str, object],
    pack_name: str,
    entries: Sequence[IndexEntry],
    version: int,
) -> str:
    """Check the manifest against the pack (of format ``version``) field by field, naming the
    first entry that differs.

    Returns the manifest's snapshot, which the pack cannot check (it holds no snapshot).
    """
    listed = document["format"]
    if type(listed) is not int or listed != version:
        raise PackError(f"manifest format is {cut_short(listed)}, the pack's is {version}", path)
    if document["pack"] != pack_name:
        raise PackError(
            f"manifest is for pack {cut_short(document['pack'])}, not {pack_name!r}", path
        )
    snapshot = document["snapshot"]
    if not isinstance(snapshot, str):
        raise PackError("manifest snapshot must be a string", path)
    try:
        snapshot.encode("utf-8")  # JSON's escapes can spell a lone surrogate
    except UnicodeEncodeError:
        raise PackError("manifest snapshot is not valid Unicode text", path) from None
    assets = document["assets"]
    if not isinstance(assets, list):
        raise PackError("manifest assets must be a list", path)
    keys = _asset_keys(version)
    for number, (asset, entry) in enumerate(zip(assets, entries, strict=False)):
        _compare_asset(path, number, asset, entry, keys)
    if len(assets) > len(entries):
        extra = assets[len(entries)]
        named = extra.get("asset_id") if isinstance(extra, dict) else None
        raise PackError(
            "manifest lists an entry the pack does not have",
            path,
            named if isinstance(named, str) else None,
        )
    if len(assets) < len(entries):
        raise PackError("manifest is missing this entry", path, entries[len(assets)].asset_id)
    return snapshot
