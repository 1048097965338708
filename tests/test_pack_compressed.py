"""Compressed packs (SPEC §5, docs/pack-format.md §1a): ``[pack] compression = "zstd"``.

One workspace is built plain and compressed; both packs return the same bytes through
``PackReader``, the compressed one is format 2 with ``codec`` and ``raw_size``, an entry
that zstd would not shrink is stored as it is, damage is named, and a machine without
zstandard gets one error line.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash
import zstandard
from conftest import pack_bytes, run_doit, run_packer, text_asset, write_asset

from packer.errors import PackError
from packer.pack import FORMAT_COMPRESSED, FORMAT_VERSION, IndexEntry, PackReader, verify_pack
from packer.pack.format import Header, encode_header, encode_index_record
from packer.pack.reader import PackFile

NO_ZSTANDARD = "import sys; sys.modules['zstandard'] = None\n"
"""Run first in a child interpreter: any ``import zstandard`` then fails as if not installed."""


def set_compression(root: Path, settings: str) -> None:
    """Replace packer.toml's ``[pack]`` table (or remove it, with ``settings=""``)."""
    config = root / "packer.toml"
    text = config.read_text(encoding="utf-8").split("\n[pack]\n")[0]
    config.write_text(text + (f"\n[pack]\n{settings}\n" if settings else ""), encoding="utf-8")


def populate(root: Path) -> None:
    assets = root / "assets"
    noise = random.Random(7).randbytes(3000)
    text_asset(assets, "text/story", "story", "once upon a time\n" * 400)
    write_asset(
        assets, "raw/noise", {"asset_name": "noise", "kind": "raw", "inputs": ["n"]}, {"n": noise}
    )
    write_asset(
        assets, "raw/empty", {"asset_name": "empty", "kind": "raw", "inputs": ["e"]}, {"e": b""}
    )
    write_asset(
        assets,
        "data/table",
        {"asset_name": "table", "kind": "json", "inputs": ["t"]},
        {"t": json.dumps({"rows": [[i, i * i] for i in range(300)]})},
    )


def entries_by_name(pack: Path) -> dict[str, bytes]:
    with PackReader(str(pack)) as reader:
        return {entry.asset_name: reader.get(entry.asset_id) for entry in reader.entries}


@pytest.fixture
def built(workspace: Path) -> Path:
    """The workspace built plain, then with compression at the default level."""
    populate(workspace)
    assert run_doit(workspace).code == 0
    return workspace


def test_compressed_and_plain_packs_return_the_same_bytes(built: Path) -> None:
    pack = built / "build/game.pack"
    plain_pack, plain_manifest = pack_bytes(built)
    plain = entries_by_name(pack)
    plain_document = json.loads(plain_manifest)
    assert plain_document["format"] == FORMAT_VERSION
    assert "codec" not in plain_document["assets"][0]

    set_compression(built, 'compression = "zstd"')
    rebuilt = run_doit(built)
    assert rebuilt.code == 0, rebuilt.out + rebuilt.err
    assert rebuilt.executed == (
        "pack",
    )  # the assets' outputs are the same; only the pack's layout changes
    assert entries_by_name(pack) == plain
    verify_pack(str(pack))

    document = json.loads((built / "build/game.manifest.json").read_text(encoding="utf-8"))
    assert document["format"] == FORMAT_COMPRESSED
    assets = {asset["asset_name"]: asset for asset in document["assets"]}
    assert list(assets["story"])[-2:] == ["codec", "raw_size"]
    for name, data in plain.items():
        assert assets[name]["raw_size"] == len(data)
    # Text shrinks; 3000 random bytes and an empty entry do not, so they are stored as they are.
    assert assets["story"]["codec"] == "zstd"
    assert assets["story"]["size"] < len(plain["story"]) // 10
    assert assets["table"]["codec"] == "zstd"
    for stored in ("noise", "empty"):
        assert assets[stored]["codec"] == "none"
        assert assets[stored]["size"] == len(plain[stored])
        assert assets[stored]["xxh3_128"] == xxhash.xxh3_128_hexdigest(plain[stored])
    # offset and size describe the stored bytes: the zstd frame of the story is right there.
    story = assets["story"]
    frame = (built / "build/game.pack").read_bytes()[
        story["offset"] : story["offset"] + story["size"]
    ]
    assert zstandard.ZstdDecompressor().decompress(frame) == plain["story"]
    assert story["xxh3_128"] == xxhash.xxh3_128_hexdigest(frame)

    set_compression(built, "")
    assert run_doit(built).executed == ("pack",)
    assert pack_bytes(built) == (plain_pack, plain_manifest)  # format 1, byte for byte


def test_the_level_decides_the_bytes_and_rebuilds_the_pack(built: Path) -> None:
    plain = entries_by_name(built / "build/game.pack")
    set_compression(built, 'compression = "zstd"\nlevel = 1')
    assert run_doit(built).executed == ("pack",)
    fast = pack_bytes(built)
    assert run_doit(built).executed == ()  # up to date at the same level
    set_compression(built, 'compression = "zstd"\nlevel = 19')
    assert run_doit(built).executed == ("pack",)
    assert pack_bytes(built)[0] != fast[0]
    assert entries_by_name(built / "build/game.pack") == plain


def _built_compressed(built: Path) -> tuple[Path, IndexEntry]:
    """Build ``built`` with compression on: its pack and the story's compressed entry."""
    set_compression(built, 'compression = "zstd"')
    assert run_doit(built).code == 0
    pack = built / "build/game.pack"
    with PackReader(str(pack)) as reader:
        entry = next(entry for entry in reader.entries if entry.asset_name == "story")
    assert entry.codec == "zstd"
    return pack, entry


def _flip(pack: Path, offset: int) -> None:
    data = bytearray(pack.read_bytes())
    data[offset] ^= 0x40
    pack.write_bytes(bytes(data))


def test_a_damaged_compressed_entry_is_named_by_verify_and_refused_by_the_reader(
    built: Path,
) -> None:
    pack, entry = _built_compressed(built)
    asset_id = entry.asset_id
    _flip(pack, entry.offset + 20)
    with pytest.raises(PackError, match="checksum mismatch") as caught:
        verify_pack(str(pack))
    assert caught.value.entry == asset_id
    with PackReader(str(pack)) as reader, pytest.raises(PackError) as refused:
        reader.get(asset_id)
    assert refused.value.entry == asset_id
    result = run_packer("verify", str(pack))
    assert result.code == 1
    assert result.err.count("\n") == 1 and asset_id in result.err


def _reseal(pack: Path, asset_id: str, damage: bytes, raw_size: int | None = None) -> None:
    """Put ``damage`` in place of the entry's stored bytes (same length) and write the checksums
    it now needs, so only decoding the frame can find the fault."""
    with PackFile(str(pack)) as file:
        entries = list(file.read_index())
    data = bytearray(pack.read_bytes())
    index_offset = next(e.offset + e.size for e in reversed(entries))
    index_offset += -index_offset % 16
    for number, entry in enumerate(entries):
        if entry.asset_id == asset_id:
            assert len(damage) == entry.size
            data[entry.offset : entry.offset + entry.size] = damage
            entries[number] = type(entry)(
                *(entry.asset_id, entry.asset_name, entry.kind, entry.offset, entry.size),
                xxhash.xxh3_128_hexdigest(damage),
                entry.codec,
                entry.raw_size if raw_size is None else raw_size,
            )
    index = b"".join(encode_index_record(e, str(pack), FORMAT_COMPRESSED) for e in entries)
    header = Header(len(entries), index_offset, len(index), xxhash.xxh3_128_digest(index), 2)
    pack.write_bytes(encode_header(header) + bytes(data[64:index_offset]) + index)


@pytest.mark.parametrize("fault", ["frame-content", "frame-size", "index-raw-size"])
def test_a_resealed_compressed_entry_is_caught_when_decoded(built: Path, fault: str) -> None:
    pack, entry = _built_compressed(built)
    asset_id = entry.asset_id
    stored = pack.read_bytes()[entry.offset : entry.offset + entry.size]
    if fault == "frame-content":  # a literal byte inside the frame: its content checksum fails
        _reseal(pack, asset_id, stored[:-8] + bytes([stored[-8] ^ 1]) + stored[-7:])
    elif fault == "frame-size":  # the frame's declared size no longer matches the index
        _reseal(pack, asset_id, stored, entry.raw_size + 1)
    else:
        _reseal(pack, asset_id, stored, entry.raw_size - 1)
    with (
        PackReader(str(pack)) as reader,
        pytest.raises(PackError, match="compressed data is damaged") as caught,
    ):
        reader.get(asset_id)
    assert caught.value.entry == asset_id
    with pytest.raises(PackError, match="compressed data is damaged") as verified:
        verify_pack(str(pack))
    assert verified.value.entry == asset_id


def test_bytes_after_the_frame_are_refused_by_verify(built: Path) -> None:
    pack, entry = _built_compressed(built)
    asset_id = entry.asset_id
    frame = zstandard.ZstdCompressor(level=3).compress(reader_bytes(pack, asset_id))
    filler = entry.size - len(frame)
    assert filler > 0
    _reseal(pack, asset_id, frame + bytes(filler))
    with pytest.raises(PackError, match=f"{filler} bytes follow its frame"):
        verify_pack(str(pack))


def reader_bytes(pack: Path, asset_id: str) -> bytes:
    with PackReader(str(pack)) as reader:
        return reader.get(asset_id)


def _without_zstandard(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_ZSTANDARD + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_zstandard_a_compressed_entry_is_one_clear_error(built: Path) -> None:
    plain = entries_by_name(built / "build/game.pack")
    read_all = (
        "from packer.pack import PackReader, PackError\n"
        "with PackReader('build/game.pack') as r:\n"
        "    for e in r.entries:\n"
        "        try: r.get(e.asset_id); print('ok', e.asset_name)\n"
        "        except PackError as err: print('error:', err)\n"
    )
    done = _without_zstandard(read_all, built)
    assert done.stdout.count("ok ") == len(plain)  # a format-1 pack needs no zstandard

    set_compression(built, 'compression = "zstd"')
    assert run_doit(built).code == 0
    done = _without_zstandard(read_all, built)
    assert done.returncode == 0, done.stderr
    # Entries stored as they are still read; the compressed ones say what to install.
    assert sorted(
        line.split()[1] for line in done.stdout.splitlines() if line.startswith("ok")
    ) == [
        "empty",
        "noise",
    ]
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert all("pip install 'packer[zstd]'" in line for line in errors)

    verify = (
        "import sys; from packer.cli import main; sys.exit(main(['verify', 'build/game.pack']))"
    )
    done = _without_zstandard(verify, built)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "packer[zstd]" in done.stderr

    build = "import sys; from packer.cli import main; sys.exit(main(['build']))"
    (built / "assets/text/story/data.txt").write_text("changed\n", encoding="utf-8")
    done = _without_zstandard(build, built)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "packer.toml" in done.stderr
    assert "packer[zstd]" in done.stderr


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ('compression = "lz4"', "pack.compression"),
        ('compression = "zstd"\nlevel = 0', "pack.level"),
        ('compression = "zstd"\nlevel = 23', "pack.level"),
        ('compression = "zstd"\nlevel = true', "pack.level"),
        ('compresion = "zstd"', "pack.compresion"),
    ],
)
def test_bad_pack_settings_are_one_error_naming_the_field(
    workspace: Path, settings: str, field: str
) -> None:
    set_compression(workspace, settings)
    result = run_packer("build", cwd=workspace)
    assert result.code == 1
    assert result.err.startswith("error: packer.toml") and result.err.count("\n") == 1
    assert field in result.err
    assert not os.path.exists(workspace / "build/game.pack")
