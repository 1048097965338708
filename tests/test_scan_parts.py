"""The scan's parts through their callers: where a bad field is pointed at, and that the values a
scan and a plan hand on cannot be changed, yet cross process boundaries (``doit -n N``)."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result, text_asset, write_asset

from packer import api
from packer.kinds.registry import load_kinds
from packer.plan import plan_build
from packer.scan import scan
from packer.statcache import FileStat
from packer.workspace import open_workspace

CLI = Callable[..., Result]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # The bad field's name appears earlier as a value: the error is at the key.
        ('{\n  "asset_name": "kind",\n  "kind": 5,\n  "inputs": ["a"]\n}\n', "3:3"),
        # ...or as a key of a nested object, or spelled with an escape.
        ('{"params": {"kind": 1}, "asset_name": "x",\n "kind": [], "inputs": ["a"]}', "2:2"),
        ('{"asset_name": "x", "inputs": ["a"],\n  "k\\u0069nd": null}', "2:3"),
    ],
)
def test_a_bad_field_is_pointed_at_by_its_top_level_key(
    workspace: Path, cli: CLI, text: str, where: str
) -> None:
    write_asset(workspace / "assets", "a", text, {"a": "x"})
    result = cli("-C", str(workspace), "status")
    assert result.code == 1
    assert result.err.startswith(f"error: assets/a/asset.json:{where}: kind: "), result.err


def test_scan_and_plan_values_are_read_only_and_pickle(workspace: Path) -> None:
    text_asset(workspace / "assets", "t", "t")
    ws = open_workspace(str(workspace))
    result = scan(ws, load_kinds())
    (rel,) = result.input_stats
    with pytest.raises(TypeError):
        result.input_stats[rel] = FileStat(0, 0, 0, 0)  # type: ignore[index]
    with pytest.raises(TypeError):
        del result.input_stats[rel]  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.decls[0].asset_name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.input_stats = {}  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(result))
    assert again == result
    with pytest.raises(TypeError):
        again.input_stats[rel] = FileStat(0, 0, 0, 0)

    plan = plan_build(api.snapshot(ws, frozen=False))
    (task,) = plan.tasks
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.output_key = "0" * 32  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(task)) == task  # what a ``doit -n N`` job carries


def test_a_kind_no_asset_uses_costs_nothing_to_scan(workspace: Path) -> None:
    """A kind's fingerprint may import its library (audio: soundfile and numpy, for
    libsndfile's version); a scan asks only for the kinds its declarations name."""
    import subprocess
    import sys

    text_asset(workspace, "assets/t", "t")
    code = "from packer.cli import main; main(['status']); import sys; print(sorted(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=workspace, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "'soundfile'" not in done.stdout
    assert "'numpy'" not in done.stdout
    write_asset(
        workspace,
        "assets/s",
        {"asset_name": "s", "kind": "audio", "inputs": ["s.wav"]},
        {"s.wav": b"RIFF"},
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=workspace, capture_output=True, text=True, timeout=60
    )
    assert "'soundfile'" in done.stdout  # the audio asset's key needs libsndfile's version
