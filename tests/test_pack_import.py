"""``import packer.pack`` is what a game-side tool or a runtime loader pays: it stays light.

Each import check runs a fresh interpreter, so nothing an earlier test imported can hide a
heavy import. The writer's and verifier's names still resolve from the package, on first use.
The pack's own errors (an absent entry, a manifest that is not JSON) are built whole and pickle
like every packer error.
"""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from packer.artifact import write_artifact
from packer.errors import PackError
from packer.pack import (
    EntryNotFound,
    ManifestSyntaxError,
    PackEntry,
    PackReader,
    verify_pack,
    write_pack,
)

HEAVY = (
    "pydantic",
    "filelock",
    "doit",
    "PIL",
    "zstandard",
    "boto3",
    "botocore",
    "packer.api",
    "packer.lane",
    "packer.model",
)
"""Modules a pack reader must never load: the API's validation, the lane's lock, the engine;
zstandard only on a compressed entry's first read; the S3 client."""

WRITER_SIDE = (
    "packer.artifact",
    "packer.jsontext",
    "packer.pack.commit",
    "packer.pack.manifest",
    "packer.pack.verify",
    "packer.pack.writer",
)
"""Loaded only by whoever writes, commits or verifies packs."""


def _modules_after(code: str) -> tuple[list[str], str]:
    """Run ``code`` in a fresh interpreter; return the modules it left loaded and what it
    printed before them (printed with ``repr``, so reading them back imports nothing there)."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *printed, modules = done.stdout.splitlines()
    return ast.literal_eval(modules), "\n".join(printed)


def _heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name in HEAVY or name.split(".")[0] in HEAVY]


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    source = tmp_path / "hero.bin"
    write_artifact(str(source), b"hero pixels")
    path = tmp_path / "game.pack"
    entries = [PackEntry("0a1b", "sprites/hero", "raw", str(source))]
    write_pack(str(path), str(tmp_path / "game.manifest.json"), "snapshot", entries)
    return path


def test_import_loads_no_heavy_module() -> None:
    modules, _ = _modules_after("import packer.pack")
    assert _heavy(modules) == []
    assert [name for name in WRITER_SIDE if name in modules] == []


def test_packer_and_its_cli_load_no_s3_client() -> None:
    """boto3 is for a remote that names s3://; importing it costs about a third of a second."""
    modules, _ = _modules_after("import packer\nimport packer.cli\nimport packer.doit")
    assert [name for name in modules if name.split(".")[0] in ("boto3", "botocore")] == []
    assert "packer.cache.s3" not in modules


def test_reader_works_from_the_light_import(pack: Path) -> None:
    modules, printed = _modules_after(
        "import packer.pack\n"
        f"with packer.pack.PackReader({str(pack)!r}) as reader:\n"
        "    print(reader.asset_ids, reader.get_by_name('sprites/hero'))"
    )
    assert printed == "('0a1b',) b'hero pixels'"
    assert _heavy(modules) == []
    assert [name for name in WRITER_SIDE if name in modules] == []


def test_writer_and_verify_names_load_on_first_use() -> None:
    modules, printed = _modules_after(
        "from packer.pack import VerifyResult, recover_outputs, verify_pack, write_pack\n"
        "print(verify_pack.__module__, write_pack.__module__, recover_outputs.__module__)"
    )
    assert printed == "packer.pack.verify packer.pack.writer packer.pack.commit"
    assert _heavy(modules) == []


def test_unknown_name_is_an_attribute_error() -> None:
    import packer.pack

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = packer.pack.nothing_here  # type: ignore[attr-defined]


@pytest.mark.parametrize(("look_up", "key"), [("get", "ffff"), ("get_by_name", "no/such")])
def test_absent_entry_is_a_pack_error_and_a_key_error(pack: Path, look_up: str, key: str) -> None:
    with PackReader(str(pack)) as reader, pytest.raises(EntryNotFound) as caught:
        getattr(reader, look_up)(key)
    error = caught.value
    assert isinstance(error, PackError)
    assert isinstance(error, KeyError)
    assert error.key == key
    field = "asset_id" if look_up == "get" else "asset_name"
    assert str(error) == f"{pack}: no entry has {field} {key!r}"  # one line, not KeyError's repr
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is EntryNotFound
    assert (str(copy), copy.key, copy.path) == (str(error), key, str(pack))


def test_manifest_syntax_error_keeps_its_position_through_pickling(pack: Path) -> None:
    manifest = pack.with_name("game.manifest.json")
    manifest.write_text('{\n  "format": ,\n}\n', encoding="utf-8")
    with pytest.raises(ManifestSyntaxError) as caught:
        verify_pack(str(pack))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (type(copy), copy.line, copy.col, str(copy)) == (
        ManifestSyntaxError,
        2,
        13,
        str(caught.value),
    )
    assert str(copy).startswith(f"{manifest}:2:13: manifest is not valid JSON")
