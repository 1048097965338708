"""Deterministic output (SPEC §5): the same content and registry give the same pack and manifest.

One reference workspace is built once with a fixed environment; every other build (another path,
another creation order, another job count, no caches, another time zone, locale or hash seed,
an incremental history) must write byte-identical pack and manifest files. Every test runs
twice: for a plain pack (format 1) and for one compressed with zstd (format 2).
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import pack_bytes, run_doit, run_packer, text_asset, write_asset

from packer import api
from packer.pack import verify_pack

# Every build in this file spells its environment out, so "varied" means varied.
BASE_ENV = {"TZ": "UTC", "LC_ALL": "C", "LANG": "C", "PYTHONHASHSEED": "0"}


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.new("RGBA", (3, 2))
    image.putdata([(x * 40, y * 90, 7, 255) for y in range(2) for x in range(3)])
    image.save(buffer, "PNG")
    return buffer.getvalue()


def wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<4h", 0, 1000, -1000, 5))
    return buffer.getvalue()


def _text(assets: Path) -> None:
    text_asset(assets, "text/intro", "texte/été", "bonjour\r\nle monde\n")


def _raw(assets: Path) -> None:
    decl = {"asset_name": "blob", "kind": "raw", "inputs": ["a.bin", "b.bin"]}
    write_asset(assets, "raw/blob", decl, {"a.bin": b"\x00\xff", "b.bin": b"tail"})


def _json(assets: Path) -> None:
    decl = {"asset_name": "config", "kind": "json", "inputs": ["c.json"], "deps": ["texte/été"]}
    write_asset(assets, "data/config", decl, {"c.json": '{"z": 1, "a": {"y": [3, 2.50]}}'})


def _image(assets: Path) -> None:
    decl = {"asset_name": "hero", "kind": "image", "inputs": ["hero.png"]}
    write_asset(assets, "sprites/hero", decl, {"hero.png": png()})


def _audio(assets: Path) -> None:
    decl = {"asset_name": "beep", "kind": "audio", "inputs": ["beep.wav"]}
    write_asset(assets, "sfx/beep", decl, {"beep.wav": wav()})


def _level(assets: Path) -> None:
    # Large and repetitive enough that zstd shrinks it: a format-2 pack holds a real frame.
    rows = "".join(f"{'#.' * (row % 9)}{'~' * (40 - row % 9)}\n" for row in range(200))
    decl = {"asset_name": "level", "kind": "raw", "inputs": ["map.txt"]}
    write_asset(assets, "data/level", decl, {"map.txt": rows})


CREATORS: list[Callable[[Path], None]] = [_text, _raw, _json, _image, _audio, _level]


def make_workspace(root: Path, creators: list[Callable[[Path], None]]) -> Path:
    api.init(str(root), "game")
    for create in creators:
        create(root / "assets")
    return root


def built_ok(result: object) -> None:
    code = getattr(result, "code", None)
    assert code == 0, f"{getattr(result, 'out', '')}{getattr(result, 'err', '')}"


PACK_TABLES = {"format-1": "", "format-2": '\n[pack]\ncompression = "zstd"\nlevel = 5\n'}
"""packer.toml's ``[pack]`` table for each kind of pack the tests build."""


@pytest.fixture(scope="module", params=sorted(PACK_TABLES))
def reference(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, tuple[bytes, bytes]]:
    """Built once, plain ``doit -n 1``, assets created in one order, fixed environment.

    Its folder is named after the host, so a leaked absolute path would also leak the host name.
    """
    base = tmp_path_factory.mktemp(f"{socket.gethostname()}-ref")
    root = make_workspace(base / "game", CREATORS)
    with open(root / "packer.toml", "a", encoding="utf-8") as config:
        config.write(PACK_TABLES[request.param])
    first = run_doit(root, "-n", "1", env=BASE_ENV)
    built_ok(first)
    assert len(first.executed) == len(CREATORS) + 1
    verify_pack(str(root / "build/game.pack"))
    pack, manifest = pack_bytes(root)
    document = json.loads(manifest)
    assert document["format"] == int(request.param[-1])
    if document["format"] == 2:
        assert {asset["codec"] for asset in document["assets"]} == {"none", "zstd"}
    return root, (pack, manifest)


def copy_of(reference_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy" / "of" / "game"
    shutil.copytree(reference_root, root, symlinks=True)
    return root


def test_same_bytes_at_another_path_with_assets_created_in_reverse_order(
    reference: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    ref_root, expected = reference
    root = make_workspace(tmp_path / "elsewhere" / "game", list(reversed(CREATORS)))
    registry = (ref_root / "registry.json").read_bytes()
    (root / "registry.json").write_bytes(registry)
    shutil.copyfile(ref_root / "packer.toml", root / "packer.toml")
    result = run_packer("build", "--frozen", cwd=root, env=BASE_ENV)
    built_ok(result)
    assert pack_bytes(root) == expected
    assert (root / "registry.json").read_bytes() == registry


@pytest.mark.parametrize(
    ("args", "env", "drop"),
    [
        pytest.param(("-n", "2"), {}, ("build", ".packer"), id="jobs-2-processes"),
        pytest.param(("-n", "2", "-P", "thread"), {}, ("build", ".packer"), id="jobs-2-threads"),
        pytest.param((), {}, (".packer",), id="caches-deleted"),
        pytest.param((), {"TZ": "Asia/Tokyo"}, ("build", ".packer"), id="time-zone"),
        pytest.param(
            (), {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}, ("build", ".packer"), id="locale"
        ),
        pytest.param((), {"PYTHONHASHSEED": "12345"}, ("build", ".packer"), id="hash-seed"),
    ],
)
def test_same_bytes_whatever_jobs_caches_time_zone_locale_or_hash_seed(
    reference: tuple[Path, tuple[bytes, bytes]],
    tmp_path: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    drop: tuple[str, ...],
) -> None:
    ref_root, expected = reference
    root = copy_of(ref_root, tmp_path)
    for folder in drop:
        shutil.rmtree(root / folder)
    result = run_doit(root, *args, env={**BASE_ENV, **env})
    built_ok(result)
    assert len(result.executed) == len(CREATORS) + 1  # really rebuilt, not found up to date
    assert pack_bytes(root) == expected


def test_incremental_build_equals_clean_build_of_the_final_state(
    reference: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    ref_root, expected = reference
    root = copy_of(ref_root, tmp_path)
    # A history: one content change, one rename, one new asset, built on top of the old state.
    (root / "assets/text/intro/data.txt").write_text("au revoir\n", encoding="utf-8")
    hero = root / "assets/sprites/hero/asset.json"
    hero.write_text(json.dumps({**json.loads(hero.read_text()), "asset_name": "héros"}), "utf-8")
    text_asset(root / "assets", "text/new", "new", "fresh\n")
    built_ok(run_doit(root, env=BASE_ENV))
    incremental = pack_bytes(root)
    assert incremental != expected
    # The same final content (registry included), built from nothing at another path.
    clean = tmp_path / "clean" / "game"
    shutil.copytree(root, clean, symlinks=True, ignore=shutil.ignore_patterns("build", ".packer"))
    built_ok(run_doit(clean, env=BASE_ENV))
    assert pack_bytes(clean) == incremental
    assert (clean / "registry.json").read_bytes() == (root / "registry.json").read_bytes()


def test_no_absolute_path_or_host_name_in_any_output_byte(
    reference: tuple[Path, tuple[bytes, bytes]],
) -> None:
    root, (pack, manifest) = reference
    registry = (root / "registry.json").read_bytes()
    host = socket.gethostname().encode()
    assert host in str(root).encode()  # so the path checks below cover the host name too
    for output in (pack, manifest, registry):
        for leak in (str(root), str(root.parent), str(root.parent.parent)):
            assert leak.encode() not in output
    assert host not in manifest
    assert host not in registry
    if len(host) >= 4:  # a 2-byte name may occur by chance inside binary checksums
        assert host not in pack


def test_packer_build_with_jobs_gives_the_same_bytes(
    reference: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    # `packer build -n 2` hands -n to doit (SPEC §3) instead of failing as a usage error.
    ref_root, expected = reference
    root = copy_of(ref_root, tmp_path)
    shutil.rmtree(root / "build")
    shutil.rmtree(root / ".packer")
    result = run_packer("build", "-n", "2", env=BASE_ENV, cwd=root)
    built_ok(result)
    assert result.out.count(".  ") == len(CREATORS) + 1
    assert pack_bytes(root) == expected
