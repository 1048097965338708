"""The pack contract (SPEC §5, docs/pack-format.md): bytes, ordering, atomicity and every check.

Tests write real files in tmp_path. The layout is also parsed and re-sealed here with plain
``struct`` straight from docs/pack-format.md, so a reader in another language can trust the doc.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from packer.artifact import write_artifact
from packer.errors import PackError
from packer.pack import (
    HEADER_SIZE,
    IndexEntry,
    PackEntry,
    PackReader,
    VerifyResult,
    default_manifest_path,
    verify_pack,
    write_pack,
)

Item = tuple[str, str, str, bytes]  # asset_id, asset_name, kind, data

ITEMS: list[Item] = [
    ("7f3a", "sprites/hero", "image", b"\x00\x01hero pixels" * 50),
    ("01bc", "text/intro", "text", "héllo wörld\n".encode()),
    ("z", "empty", "raw", b""),
    ("a", "exactly-16", "raw", b"0123456789abcdef"),
    ("ü-id", "names/ü", "json", b'{"k":1}'),
]

# The documented layout, re-stated independently of packer.pack.
DOC_HEADER = struct.Struct("<8sIIQQQ16sQ")


def _sources(folder: Path, items: Sequence[Item]) -> list[PackEntry]:
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for number, (asset_id, name, kind, data) in enumerate(items):
        source = folder / f"src{number}.bin"
        write_artifact(str(source), data)
        entries.append(PackEntry(asset_id, name, kind, str(source)))
    return entries


def _build(folder: Path, items: Sequence[Item] = ITEMS, snapshot: str = "snap") -> Path:
    """Write folder/game.pack and folder/game.manifest.json from items; return the pack path."""
    pack = folder / "game.pack"
    write_pack(
        str(pack), str(folder / "game.manifest.json"), snapshot, _sources(folder / "src", items)
    )
    return pack


def _manifest(pack: Path) -> Path:
    return pack.with_name(pack.name.removesuffix(".pack") + ".manifest.json")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def _doc_parse(raw: bytes) -> tuple[tuple[Any, ...], list[IndexEntry]]:
    """Read a pack the way docs/pack-format.md tells another language to."""
    header = DOC_HEADER.unpack_from(raw, 0)
    magic, version, reserved, count, index_offset, index_size, index_digest, check = header
    assert magic == b"\x89PACKER\n" and version == 1 and reserved == 0
    assert check == xxhash.xxh3_64_intdigest(raw[:56])
    index = raw[index_offset : index_offset + index_size]
    assert index_offset + index_size == len(raw)
    assert xxhash.xxh3_128_digest(index) == index_digest
    records, position = [], 0
    for _ in range(count):
        texts = []
        for _field in range(3):
            (length,) = struct.unpack_from("<I", index, position)
            texts.append(index[position + 4 : position + 4 + length].decode("utf-8"))
            position += 4 + length
        offset, size, digest = struct.unpack_from("<QQ16s", index, position)
        position += 32
        records.append(
            IndexEntry(texts[0], texts[1], texts[2], offset, size, digest.hex(), "none", size)
        )
    assert position == index_size
    return header, records


def _doc_reseal(path: Path, records: Sequence[IndexEntry], count: int | None = None) -> None:
    """Rewrite a pack's index from records with valid checksums (a crafted, not damaged, file)."""
    raw = path.read_bytes()
    index_offset = DOC_HEADER.unpack_from(raw, 0)[4]
    index = b"".join(
        b"".join(
            struct.pack("<I", len(t)) + t
            for t in (r.asset_id.encode(), r.asset_name.encode(), r.kind.encode())
        )
        + struct.pack("<QQ16s", r.offset, r.size, bytes.fromhex(r.xxh3_128))
        for r in records
    )
    head = struct.pack(
        "<8sIIQQQ16s",
        b"\x89PACKER\n",
        1,
        0,
        len(records) if count is None else count,
        index_offset,
        len(index),
        xxhash.xxh3_128_digest(index),
    )
    head += struct.pack("<Q", xxhash.xxh3_64_intdigest(head))
    path.write_bytes(head + raw[HEADER_SIZE:index_offset] + index)


def test_round_trip_by_id_and_by_name(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    with PackReader(str(pack)) as reader:
        assert len(reader) == len(ITEMS)
        assert reader.asset_ids == tuple(sorted(i[0] for i in ITEMS))
        for asset_id, name, kind, data in ITEMS:
            assert asset_id in reader
            assert reader.get(asset_id) == data
            assert reader.get_by_name(name) == data
            entry = reader.entries[reader.asset_ids.index(asset_id)]
            assert (entry.asset_name, entry.kind, entry.size) == (name, kind, len(data))
            assert entry.xxh3_128 == xxhash.xxh3_128_hexdigest(data)
        assert "missing" not in reader
        with pytest.raises(KeyError):
            reader.get("missing")
        with pytest.raises(KeyError):
            reader.get_by_name("missing")
    with pytest.raises(ValueError):
        reader.get(ITEMS[0][0])  # closed by the with block
    result = verify_pack(str(pack))
    assert result == VerifyResult(len(ITEMS), pack.stat().st_size, str(_manifest(pack)))


def test_entries_ordered_by_id_bytes_in_data_and_index(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    _, records = _doc_parse(pack.read_bytes())
    ids = [r.asset_id for r in records]
    assert ids == sorted(ids, key=lambda i: i.encode("utf-8"))
    offsets = [r.offset for r in records]
    assert offsets == sorted(offsets)
    assert all(offset % 16 == 0 for offset in offsets)


def test_layout_matches_documentation(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    raw = pack.read_bytes()
    header, records = _doc_parse(raw)
    with PackReader(str(pack)) as reader:
        assert tuple(records) == reader.entries
    assert header[3] == len(ITEMS)
    position = HEADER_SIZE
    for record in records:  # blobs back to back, each padded with zeros to 16 bytes
        assert record.offset == position
        end = record.offset + record.size
        position = end + (-end % 16)
        assert raw[end:position] == bytes(position - end)
    assert header[4] == position


def test_shuffled_input_gives_identical_bytes(tmp_path: Path) -> None:
    first = _build(tmp_path / "one")
    shuffled = list(ITEMS)
    random.Random(7).shuffle(shuffled)
    assert shuffled != ITEMS
    second = _build(tmp_path / "two", list(reversed(shuffled)))
    assert first.read_bytes() == second.read_bytes()
    assert _manifest(first).read_bytes() == _manifest(second).read_bytes()


def test_manifest_has_documented_shape(tmp_path: Path) -> None:
    pack = _build(tmp_path, snapshot="f" * 32)
    text = _manifest(pack).read_text(encoding="utf-8")
    document = json.loads(text)
    assert list(document) == ["format", "pack", "snapshot", "assets"]
    assert (document["format"], document["pack"], document["snapshot"]) == (
        1,
        "game.pack",
        "f" * 32,
    )
    with PackReader(str(pack)) as reader:
        expected: list[dict[str, Any]] = [
            {
                "asset_id": e.asset_id,
                "asset_name": e.asset_name,
                "kind": e.kind,
                "offset": e.offset,
                "size": e.size,
                "xxh3_128": e.xxh3_128,
            }
            for e in reader.entries
        ]
    assert document["assets"] == expected
    assert all(list(a) == list(expected[0]) for a in document["assets"])
    assert all(
        len(a["xxh3_128"]) == 32 and a["xxh3_128"] == a["xxh3_128"].lower() for a in expected
    )
    assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert "wörld" not in text and "names/ü" in text  # not escaped
    assert str(tmp_path) not in text


def test_empty_pack(tmp_path: Path) -> None:
    pack = _build(tmp_path, [])
    assert pack.stat().st_size == HEADER_SIZE
    with PackReader(str(pack)) as reader:
        assert len(reader) == 0
        assert reader.asset_ids == ()
        assert reader.entries == ()
    assert verify_pack(str(pack)).entry_count == 0
    assert json.loads(_manifest(pack).read_text())["assets"] == []


@pytest.mark.parametrize(
    ("items", "entry"),
    [
        ([("x", "a", "raw", b"1"), ("y", "b", "raw", b"2"), ("x", "c", "raw", b"3")], "x"),
        ([("x", "same", "raw", b"1"), ("y", "same", "raw", b"2")], "y"),
    ],
    ids=["duplicate-id", "duplicate-name"],
)
def test_duplicates_rejected(tmp_path: Path, items: list[Item], entry: str) -> None:
    with pytest.raises(PackError) as caught:
        _build(tmp_path, items)
    assert caught.value.entry == entry
    assert not (tmp_path / "game.pack").exists()
    assert not (tmp_path / "game.manifest.json").exists()


@pytest.mark.parametrize("fault", ["missing", "directory"])
def test_unreadable_source_keeps_previous_outputs(tmp_path: Path, fault: str) -> None:
    pack = _build(tmp_path)
    before = (pack.read_bytes(), _manifest(pack).read_bytes())
    entries = _sources(tmp_path / "src2", [("n1", "new/one", "raw", b"new")])
    bad = tmp_path / "bad-source"
    if fault == "directory":
        bad.mkdir()
    entries.append(PackEntry("n2", "new/two", "raw", str(bad)))
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(PackError) as caught:
        write_pack(str(pack), str(_manifest(pack)), "other", entries)
    assert caught.value.entry == "n2"
    assert caught.value.path == str(bad)
    assert "n2" in str(caught.value)
    assert (pack.read_bytes(), _manifest(pack).read_bytes()) == before
    assert sorted(os.listdir(tmp_path)) == listing  # no temp file left behind


def test_outputs_are_plain_files_without_leftovers(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["game.manifest.json", "game.pack", "src"]
    assert pack.stat().st_mode & 0o777 == 0o644


def test_flipped_blob_byte_names_the_entry(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    with PackReader(str(pack)) as reader:
        victim = next(e for e in reader.entries if e.asset_id == "7f3a")
    _flip(pack, victim.offset + victim.size // 2)
    with PackReader(str(pack)) as reader:
        with pytest.raises(PackError) as caught:
            reader.get("7f3a")
        assert caught.value.entry == "7f3a"
        assert caught.value.path == str(pack)
        with pytest.raises(PackError):
            reader.get_by_name("sprites/hero")
        assert reader.get("01bc") == ITEMS[1][3]  # the other entries stay readable
    with pytest.raises(PackError) as caught:
        verify_pack(str(pack))
    assert caught.value.entry == "7f3a"
    assert "entry 7f3a" in str(caught.value)


def test_nonzero_padding_fails_verify(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    with PackReader(str(pack)) as reader:
        victim = reader.entries[0]
    assert victim.size % 16
    _flip(pack, victim.offset + victim.size)
    with pytest.raises(PackError) as caught:
        verify_pack(str(pack))
    assert caught.value.entry == victim.asset_id


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (0, "bad magic"),
        (8, "version"),
        (12, "header is damaged"),  # reserved field
        (16, "header is damaged"),  # entry count
        (24, "header is damaged"),  # index offset
        (32, "header is damaged"),  # index size
        (40, "header is damaged"),  # index checksum
        (60, "header is damaged"),  # header checksum
        (-40, "index is damaged"),
        (-1, "index is damaged"),
    ],
)
def test_damaged_header_or_index(tmp_path: Path, where: int, message: str) -> None:
    pack = _build(tmp_path)
    _flip(pack, where if where >= 0 else pack.stat().st_size + where)
    for check in (PackReader, verify_pack):
        with pytest.raises(PackError, match=message) as caught:
            check(str(pack))
        assert caught.value.path == str(pack)


def test_not_a_pack(tmp_path: Path) -> None:
    other = tmp_path / "game.pack"
    other.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(PackError, match="bad magic"):
        PackReader(str(other))
    with pytest.raises(PackError, match="cannot open"):
        PackReader(str(tmp_path / "nowhere.pack"))


@pytest.mark.parametrize("keep", [0, 1, HEADER_SIZE - 1, HEADER_SIZE, 100, -1])
def test_truncated_pack(tmp_path: Path, keep: int) -> None:
    pack = _build(tmp_path)
    raw = pack.read_bytes()
    pack.write_bytes(raw[:keep])
    for check in (PackReader, verify_pack):
        with pytest.raises(PackError, match="truncated") as caught:
            check(str(pack))
        assert caught.value.path == str(pack)


def test_trailing_bytes_rejected(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    with pack.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(PackError, match="after the index"):
        verify_pack(str(pack))


def _swap_first_two(records: list[IndexEntry]) -> list[IndexEntry]:
    """Swap the first two ids but keep the blobs where they are: only the order is wrong."""
    first, second = records[0], records[1]
    return [
        dataclasses.replace(first, asset_id=second.asset_id),
        dataclasses.replace(second, asset_id=first.asset_id),
        *records[2:],
    ]


def _overlap(records: list[IndexEntry]) -> list[IndexEntry]:
    return [records[0], dataclasses.replace(records[1], offset=records[0].offset + 1), *records[2:]]


def _outside(records: list[IndexEntry]) -> list[IndexEntry]:
    return [*records[:-1], dataclasses.replace(records[-1], size=records[-1].size + 4096)]


def _gap(records: list[IndexEntry]) -> list[IndexEntry]:
    last = records[-1]
    return [*records[:-1], dataclasses.replace(last, offset=last.offset + 16, size=0)]


def _same_name(records: list[IndexEntry]) -> list[IndexEntry]:
    clash = dataclasses.replace(records[1], asset_name=records[0].asset_name)
    return [records[0], clash, *records[2:]]


@pytest.mark.parametrize(
    ("mutate", "message", "entry_index"),
    [
        (_swap_first_two, "out of order", 1),
        (_overlap, "overlaps", 1),
        (_outside, "outside the data area", -1),
        (_gap, "expected at", -1),
        (_same_name, "duplicate asset_name", 1),
    ],
)
def test_crafted_index_with_valid_checksums_rejected(
    tmp_path: Path,
    mutate: Callable[[list[IndexEntry]], list[IndexEntry]],
    message: str,
    entry_index: int,
) -> None:
    pack = _build(tmp_path)
    _, records = _doc_parse(pack.read_bytes())
    crafted = mutate(records)
    _doc_reseal(pack, crafted)
    with pytest.raises(PackError, match=message) as caught:
        verify_pack(str(pack))
    assert caught.value.entry == crafted[entry_index].asset_id


def test_index_count_disagreeing_with_records_rejected(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    _, records = _doc_parse(pack.read_bytes())
    _doc_reseal(pack, records, count=len(records) - 1)
    with pytest.raises(PackError, match="index is damaged"):
        PackReader(str(pack))
    _doc_reseal(pack, records, count=len(records) + 1)
    with pytest.raises(PackError, match="index is damaged"):
        PackReader(str(pack))


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        document[key] = value

    return apply


def _set_asset(number: int, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        document["assets"][number][key] = value

    return apply


def _swap_assets(document: dict[str, Any]) -> None:
    assets = document["assets"]
    assets[0], assets[1] = assets[1], assets[0]


def _drop_last(document: dict[str, Any]) -> None:
    document["assets"].pop()


def _add_asset(document: dict[str, Any]) -> None:
    document["assets"].append(dict(document["assets"][0], asset_id="zzz"))


def _drop_key(document: dict[str, Any]) -> None:
    del document["snapshot"]


@pytest.mark.parametrize(
    ("mutate", "entry"),
    [
        (_set("format", 2), None),
        (_set("format", True), None),
        (_set("pack", "other.pack"), None),
        (_set("snapshot", 5), None),
        (_drop_key, None),
        (_set_asset(0, "size", 99), "01bc"),
        (_set_asset(1, "asset_name", "renamed"), "7f3a"),
        (_set_asset(2, "kind", "text"), "a"),
        (_set_asset(0, "offset", 80), "01bc"),
        (_set_asset(4, "xxh3_128", "0" * 32), "ü-id"),
        (_set_asset(3, "xxh3_128", None), "z"),
        (_swap_assets, "01bc"),
        (_drop_last, "ü-id"),
        (_add_asset, "zzz"),
    ],
)
def test_manifest_disagreeing_with_pack_fails_verify(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], entry: str | None
) -> None:
    pack = _build(tmp_path)
    manifest = _manifest(pack)
    document = json.loads(manifest.read_text(encoding="utf-8"))
    mutate(document)
    manifest.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(PackError) as caught:
        verify_pack(str(pack))
    assert caught.value.path == str(manifest)
    assert caught.value.entry == entry


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be an object"),
        (None, "canonical form"),  # the same content, re-formatted
    ],
)
def test_malformed_manifest_fails_verify(tmp_path: Path, text: str | None, message: str) -> None:
    pack = _build(tmp_path)
    manifest = _manifest(pack)
    if text is None:
        text = json.dumps(json.loads(manifest.read_text(encoding="utf-8")), ensure_ascii=False)
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(PackError, match=message) as caught:
        verify_pack(str(pack))
    assert caught.value.path == str(manifest)


def test_invalid_manifest_json_carries_line_and_column(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    _manifest(pack).write_text('{\n  "format": ,\n}\n', encoding="utf-8")
    with pytest.raises(PackError) as caught:
        verify_pack(str(pack))
    assert (caught.value.line, caught.value.col) == (2, 13)
    assert str(caught.value).startswith(f"{_manifest(pack)}:2:13: ")


def test_missing_manifest_fails_verify(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    _manifest(pack).unlink()
    with pytest.raises(PackError, match="manifest not found"):
        verify_pack(str(pack))


def test_explicit_manifest_path(tmp_path: Path) -> None:
    pack = tmp_path / "game.pack"
    elsewhere = tmp_path / "meta" / "m.json"
    elsewhere.parent.mkdir()
    write_pack(str(pack), str(elsewhere), "s", _sources(tmp_path / "src", ITEMS))
    assert verify_pack(str(pack), str(elsewhere)).manifest_path == str(elsewhere)
    assert default_manifest_path("build/x.pack") == "build/x.manifest.json"


def test_new_pack_beside_old_manifest_fails_verify(tmp_path: Path) -> None:
    """What a build killed between the two renames leaves: verify must notice."""
    pack = _build(tmp_path)
    old_manifest = _manifest(pack).read_bytes()
    changed = [*ITEMS[:-1], ("ü-id", "names/ü", "json", b'{"k":2}')]
    _build(tmp_path, changed)
    verify_pack(str(pack))
    _manifest(pack).write_bytes(old_manifest)
    with pytest.raises(PackError) as caught:
        verify_pack(str(pack))
    assert caught.value.entry == "ü-id"


def test_manifest_path_equal_to_pack_path_rejected(tmp_path: Path) -> None:
    with pytest.raises(PackError):
        write_pack(str(tmp_path / "x.pack"), str(tmp_path / "x.pack"), "s", [])


ids_strategy = st.text(min_size=1, max_size=12)
items_strategy = st.lists(
    st.tuples(
        ids_strategy, st.text(max_size=12), st.sampled_from(["raw", "text"]), st.binary(max_size=80)
    ),
    max_size=12,
    unique_by=(lambda item: item[0], lambda item: item[1]),
)


@settings(max_examples=60, deadline=None)
@given(items=items_strategy, data=st.data())
def test_any_entries_round_trip_independent_of_order(
    items: list[Item], data: st.DataObject
) -> None:
    permuted = data.draw(st.permutations(items))
    with tempfile.TemporaryDirectory() as scratch:
        first = _build(Path(scratch, "one"), items)
        second = _build(Path(scratch, "two"), permuted)
        assert first.read_bytes() == second.read_bytes()
        text = _manifest(first).read_text(encoding="utf-8")
        assert _manifest(second).read_text(encoding="utf-8") == text
        assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
        with PackReader(str(first)) as reader:
            assert reader.asset_ids == tuple(
                sorted((i[0] for i in items), key=lambda i: i.encode())
            )
            for asset_id, name, _kind, blob in items:
                assert reader.get(asset_id) == blob
                assert reader.get_by_name(name) == blob
        assert verify_pack(str(first)).entry_count == len(items)


def test_verify_of_a_missing_pack_names_the_pack(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pack"
    with pytest.raises(PackError) as raised:
        verify_pack(str(missing))
    assert raised.value.path == str(missing)
    assert "no such pack" in str(raised.value)


def test_damaged_artifact_is_refused_and_previous_outputs_kept(tmp_path: Path) -> None:
    pack = _build(tmp_path)
    before = (pack.read_bytes(), _manifest(pack).read_bytes())
    entries = _sources(tmp_path / "src2", [("n1", "new/one", "raw", b"new bytes")])
    _flip(Path(entries[0].source), 20)  # a data byte, past the artifact's checksum
    with pytest.raises(PackError) as caught:
        write_pack(str(pack), str(_manifest(pack)), "other", entries)
    assert caught.value.entry == "n1"
    assert "artifact damaged" in str(caught.value)
    assert (pack.read_bytes(), _manifest(pack).read_bytes()) == before
