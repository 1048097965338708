"""Plain regression tests for bugs the state machine (tests/test_state_machine.py) found.

Each test is the shrunk example hypothesis printed, replayed through the CLI as a user would
type it, with the promise of SPEC.md it broke named in its docstring.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import registry_json, write_asset

from packer import api
from packer.cli import main as cli_main


def _raw_asset(root: Path, folder: str, name: str) -> None:
    decl = {"asset_name": name, "kind": "raw", "inputs": ["p0.bin"]}
    write_asset(root, folder, decl, {"p0.bin": b"\x00"})


def test_mv_into_a_dot_folder_is_refused(tmp_path: Path) -> None:
    """Shrunk: add_asset; sync; packer_mv(to='hidden').

    ``packer mv`` moved the folder into ``assets/g0/.hidden/``, which the scan skips, and said
    "moved": the next ``packer status`` reported the asset missing and ``packer sync`` retired
    its id (SPEC §3: packer mv keeps identity). Now refused, and nothing changes.
    """
    root = tmp_path / "ws"
    api.init(str(root), "game")
    _raw_asset(root, "assets/g0/f 1", "n2")
    assert cli_main(["-C", str(root), "sync"]) == 0
    before = (root / "registry.json").read_bytes()

    code = cli_main(
        ["-C", str(root), "mv", str(root / "assets/g0/f 1"), str(root / "assets/g0/.hidden/f 4")]
    )

    assert code == 1
    assert (root / "assets/g0/f 1/asset.json").is_file()
    assert not (root / "assets/g0/.hidden").exists()
    assert (root / "registry.json").read_bytes() == before
    assert cli_main(["-C", str(root), "status"]) == 0


def test_mv_onto_the_path_of_a_registered_asset_whose_folder_is_gone(tmp_path: Path) -> None:
    """Shrunk: add_asset(g0); add_asset(g1); build; delete_group(g0); packer_mv(g1 asset,
    to='vacated').

    The deleted asset's registry entry still held ``assets/g0/f 1`` (not synced yet); ``packer
    mv`` of the other asset to ``assets/g0/f 1`` wrote a registry claiming that path twice, which
    every later command refused as hand-broken (SPEC §2: writes go through one lane, no invalid
    file). Now refused, and nothing changes.
    """
    root = tmp_path / "ws"
    api.init(str(root), "game")
    _raw_asset(root, "assets/g0/f 1", "n2")
    _raw_asset(root, "assets/g1/f3", "n4")
    assert cli_main(["-C", str(root), "sync"]) == 0  # what the build did first
    shutil.rmtree(root / "assets/g0")
    before = (root / "registry.json").read_bytes()

    code = cli_main(
        ["-C", str(root), "mv", str(root / "assets/g1/f3"), str(root / "assets/g0/f 1")]
    )

    assert code == 1
    assert (root / "assets/g1/f3/asset.json").is_file()
    assert not (root / "assets/g0").exists()
    assert (root / "registry.json").read_bytes() == before
    # The registry still reads; the sync retires the deleted asset and keeps the other.
    ids = {e["asset_name"]: e["asset_id"] for e in registry_json(root)["assets"]}
    assert cli_main(["-C", str(root), "sync"]) == 0
    registry = registry_json(root)
    assert [(e["asset_id"], e["asset_name"], e["path"]) for e in registry["assets"]] == [
        (ids["n4"], "n4", "assets/g1/f3")
    ]
    assert registry["retired"] == [ids["n2"]]
