"""The previous pack's bytes reused (``write_pack(..., reuse_record=...)``, packer.pack.reuse):
the same pack and manifest bytes as a pack written from the artifacts alone, whatever was
changed, damaged or replaced since the record was written.

Sources are made older than the racy window once per module (a source changed within 2 s of
being packed is never recorded, and any new name for a file, even a hard link, changes it),
so one module-scoped sleep serves every test: each takes its own folder from a pool.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from packer.artifact import HEADER_SIZE as ARTIFACT_HEADER_SIZE
from packer.artifact import write_artifact
from packer.errors import PackError
from packer.pack import PackEntry, PackReader, ZstdCodec, verify_pack, write_pack
from packer.statcache import RACY_NS

Item = tuple[str, bytes]  # asset_id, data

ITEMS: list[Item] = [(f"{n:02x}", bytes([n]) * (n * 37 % 200)) for n in range(1, 40)] + [
    # Larger than the writer's 1 MiB read-back buffer together: entries straddle its edges.
    (f"f{n}", bytes([n]) * 700_001)
    for n in range(3)
]


POOL = 20


@pytest.fixture(scope="module")
def aged_folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Folders of ITEMS' artifacts, old enough to be recorded, one for each test."""
    folders = []
    for number in range(POOL):
        folder = tmp_path_factory.mktemp(f"aged{number}")
        (folder / "src").mkdir()
        for asset_id, data in ITEMS:
            write_artifact(str(folder / "src" / f"{asset_id}.bin"), data)
        folders.append(folder)
    time.sleep(RACY_NS / 1e9 + 0.2)
    return folders


def _entries(folder: Path, items: Sequence[Item] = ITEMS) -> list[PackEntry]:
    return [PackEntry(i, f"name-{i}", "raw", str(folder / f"{i}.bin")) for i, _ in items]


def _write(out: Path, entries: Sequence[PackEntry], record: Path | None, **kw: object) -> int:
    out.mkdir(exist_ok=True)
    return write_pack(
        str(out / "game.pack"),
        str(out / "game.manifest.json"),
        "snap",
        entries,
        reuse_record=None if record is None else str(record),
        **kw,  # type: ignore[arg-type]
    )


def _pair(out: Path) -> tuple[bytes, bytes]:
    return (out / "game.pack").read_bytes(), (out / "game.manifest.json").read_bytes()


@pytest.fixture
def work(aged_folders: list[Path]) -> Path:
    """A folder of aged sources (``src/``) of this test's own."""
    return aged_folders.pop()


def _reference(tmp_path: Path, entries: Sequence[PackEntry], **kw: object) -> tuple[bytes, bytes]:
    """The pair written from the artifacts alone, in another folder."""
    out = tmp_path / "reference"
    _write(out, entries, None, **kw)
    return _pair(out)


def test_unchanged_entries_are_copied_and_the_bytes_are_the_same(work: Path) -> None:
    entries, record = _entries(work / "src"), work / "packed"
    assert _write(work / "out", entries, record) == 0  # nothing recorded yet
    assert _write(work / "out", entries, record) == len(ITEMS)
    assert _pair(work / "out") == _reference(work, entries)
    assert verify_pack(str(work / "out/game.pack")).entry_count == len(ITEMS)


@pytest.mark.parametrize("new_data", [b"\x07" * 74, b"longer now " * 9, b""])
def test_a_changed_entry_is_read_and_the_rest_copied(work: Path, new_data: bytes) -> None:
    entries, record = _entries(work / "src"), work / "packed"
    _write(work / "out", entries, record)
    changed = work / "src" / f"{ITEMS[1][0]}.bin"  # same size, longer, empty: offsets shift
    write_artifact(str(changed), new_data)
    assert _write(work / "out", entries, record) == len(ITEMS) - 1
    assert _pair(work / "out") == _reference(work, entries)
    with PackReader(str(work / "out/game.pack")) as reader:
        assert reader.get(ITEMS[1][0]) == new_data


def test_an_artifact_edited_in_place_is_read_and_refused(work: Path) -> None:
    entries, record = _entries(work / "src"), work / "packed"
    _write(work / "out", entries, record)
    before = _pair(work / "out")
    victim = work / "src" / f"{ITEMS[2][0]}.bin"
    with open(victim, "r+b") as handle:  # same inode, same size, header as it was
        handle.seek(ARTIFACT_HEADER_SIZE)
        handle.write(b"\xff")
    with pytest.raises(PackError, match="artifact damaged"):
        _write(work / "out", entries, record)
    assert _pair(work / "out") == before


@pytest.mark.parametrize("damage", ["blob", "last blob", "gap", "truncated", "replaced"])
def test_a_previous_pack_changed_since_the_record_costs_a_read(work: Path, damage: str) -> None:
    entries, record = _entries(work / "src"), work / "packed"
    _write(work / "out", entries, record)
    pack = work / "out/game.pack"
    data = bytearray(pack.read_bytes())
    with PackReader(str(pack)) as reader:
        place = next(e for e in reader.entries if e.size % 16)  # a blob with a gap after it
        last = max(reader.entries, key=lambda e: e.offset)
    if damage == "blob":
        data[place.offset] ^= 0x40
    elif damage == "last blob":
        data[last.offset + last.size - 1] ^= 0x40
    elif damage == "gap":
        data[place.offset + place.size] = 1  # the alignment gap after it must stay zero
    elif damage == "truncated":
        del data[place.offset + 1 :]
    else:
        _write(work / "other", entries[:5], None)
        data = bytearray((work / "other/game.pack").read_bytes())
    with open(pack, "r+b") as handle:  # in place, as the record's stat keys never saw it
        handle.write(data)
        handle.truncate()
    assert _write(work / "out", entries, record) == 0
    assert _pair(work / "out") == _reference(work, entries)


def test_a_record_for_another_layout_reuses_nothing(work: Path) -> None:
    pytest.importorskip("zstandard")
    entries, record = _entries(work / "src"), work / "packed"
    _write(work / "out", entries, record)
    assert _write(work / "out", entries, record, codec=ZstdCodec(3)) == 0
    assert _pair(work / "out") == _reference(work, entries, codec=ZstdCodec(3))
    assert _write(work / "out", entries, record, codec=ZstdCodec(3)) == len(ITEMS)
    assert _pair(work / "out") == _reference(work, entries, codec=ZstdCodec(3))
    assert _write(work / "out", entries, record, codec=ZstdCodec(4)) == 0
    assert _pair(work / "out") == _reference(work, entries, codec=ZstdCodec(4))


@pytest.mark.parametrize("record_text", [b"", b"not marshal", b"\x00" * 64])
def test_a_damaged_record_reuses_nothing(work: Path, record_text: bytes) -> None:
    entries, record = _entries(work / "src"), work / "packed"
    _write(work / "out", entries, record)
    record.write_bytes(record_text)
    assert _write(work / "out", entries, record) == 0
    assert _pair(work / "out") == _reference(work, entries)


def test_fresh_sources_are_not_recorded(tmp_path: Path) -> None:
    sources = tmp_path / "src"
    sources.mkdir()
    for asset_id, data in ITEMS:
        write_artifact(str(sources / f"{asset_id}.bin"), data)
    entries, record = _entries(sources), tmp_path / "packed"
    _write(tmp_path / "out", entries, record)
    assert _write(tmp_path / "out", entries, record) == 0  # written within the racy window
