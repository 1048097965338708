"""Values are immutable all the way down (docs/architecture.md §3): a snapshot and its registry
cannot be changed through any field or map they expose, also after a pickle round trip (doit
worker processes), and errors carry their subject as attributes that survive pickling."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Result, text_asset

from packer import api
from packer.errors import LaneBusy, MoveError
from packer.registry import Registry
from packer.snapshot import Snapshot
from packer.workspace import open_workspace

Cli = Callable[..., Result]


@pytest.fixture
def snapshot(workspace: Path) -> Snapshot:
    for name in ("hero", "tree"):
        text_asset(workspace, f"assets/{name}", name)
    return api.snapshot(open_workspace(str(workspace), search_up=False))


def loose(value: object) -> Any:
    """``value`` with its static type dropped, to call what its type does not offer."""
    return value


MUTATIONS: dict[str, Callable[[Snapshot], object]] = {
    "by_id.clear": lambda s: loose(s.registry.by_id).clear(),
    "by_id[]=": lambda s: loose(s.registry.by_id).__setitem__("x", s.registry.entries[0]),
    "by_path.pop": lambda s: loose(s.registry.by_path).pop("assets/hero"),
    "by_path del": lambda s: loose(s.registry.by_path).__delitem__("assets/hero"),
    "retired.add": lambda s: loose(s.registry.retired).add("x"),
    "entries.append": lambda s: loose(s.registry.entries).append(s.registry.entries[0]),
    "input_hashes[]=": lambda s: loose(s.input_hashes).__setitem__("x", "y"),
    "input_hashes.clear": lambda s: loose(s.input_hashes).clear(),
    "registry=": lambda s: setattr(s, "registry", Registry()),
    "fingerprint=": lambda s: setattr(s, "fingerprint", "0"),
    "input_hashes=": lambda s: setattr(s, "input_hashes", {}),
    "registry.entries=": lambda s: setattr(s.registry, "entries", ()),
    "registry.retired=": lambda s: setattr(s.registry, "retired", frozenset()),
}


def _check_refused(snapshot: Snapshot, mutate: Callable[[Snapshot], object]) -> None:
    before = pickle.dumps(snapshot)
    with pytest.raises((TypeError, AttributeError, dataclasses.FrozenInstanceError)):
        mutate(snapshot)
    assert pickle.dumps(snapshot) == before


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_mutating_a_snapshot_raises(snapshot: Snapshot, mutation: str) -> None:
    assert len(snapshot.registry.by_id) == 2 and len(snapshot.input_hashes) == 2
    _check_refused(snapshot, MUTATIONS[mutation])


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_snapshot_stays_immutable_across_pickling(snapshot: Snapshot, mutation: str) -> None:
    copy: Snapshot = pickle.loads(pickle.dumps(snapshot))
    assert copy == snapshot
    assert dict(copy.registry.by_id) == dict(snapshot.registry.by_id)
    _check_refused(copy, MUTATIONS[mutation])


def test_a_snapshot_keeps_its_own_copy_of_the_hashes_it_was_given(snapshot: Snapshot) -> None:
    given = dict(snapshot.input_hashes)
    made = Snapshot(
        snapshot.registry, snapshot.registry_hash, snapshot.scan, given, snapshot.fingerprint
    )
    given.clear()
    assert dict(made.input_hashes) == dict(snapshot.input_hashes)


def test_registry_indexes_are_read_only_and_built_once(snapshot: Snapshot) -> None:
    registry = snapshot.registry
    assert registry.by_id is registry.by_id  # cached: no new view per lookup at 10,000 assets
    assert set(registry.by_path) == {"assets/hero", "assets/tree"}
    changed = registry.replace(retire=[registry.entries[0].asset_id])
    assert len(changed.by_id) == 1 and len(registry.by_id) == 2  # a new value, the old intact


# --- errors carry their subject ------------------------------------------------------------------


def _round_trip(err: Any) -> Any:
    return pickle.loads(pickle.dumps(err))


def test_lane_busy_carries_its_holder_and_lock_and_pickles() -> None:
    err = LaneBusy("pid 7 on box (packer sync)", ".packer/lane.lock", 0.5, "PACKER_LANE_TIMEOUT")
    for seen in (err, _round_trip(err)):
        assert isinstance(seen, LaneBusy)
        assert seen.holder == "pid 7 on box (packer sync)"
        assert seen.lock_path == seen.path == ".packer/lane.lock"
        assert seen.waited_s == 0.5
        assert str(seen) == (
            ".packer/lane.lock: write lane busy for 0.5s: held by pid 7 on box (packer sync); "
            "wait for it to finish, or set PACKER_LANE_TIMEOUT to wait longer"
        )


def test_a_refused_move_is_a_move_error(workspace: Path, cli: Cli) -> None:
    text_asset(workspace, "assets/hero", "hero")
    assert cli("-C", str(workspace), "sync").code == 0
    ws = open_workspace(str(workspace), search_up=False)
    with pytest.raises(MoveError) as caught:
        api.mv(ws, str(workspace / "assets/nothing"), str(workspace / "assets/else"))
    assert caught.value.path == "assets/nothing"
    assert isinstance(_round_trip(caught.value), MoveError)
    result = cli(
        "-C",
        str(workspace),
        "mv",
        *(str(workspace / p) for p in ("assets/hero", "assets/hero/inner")),
    )
    assert result.code == 1
    assert result.err == (
        "error: assets/hero/inner: destination must be inside the workspace, outside the source\n"
    )


# A distribution on sys.path whose packer.kinds entry point takes the built-in name "raw".
_CLASHING_KIND = """\
class Raw:
    name = "raw"
    version = 1
"""


def test_a_clashing_kind_plugin_is_a_kind_registration_error(
    workspace: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    dist = site / "clashing_kind-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clashing-kind\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[packer.kinds]\nraw = clashing_kind:Raw\n")
    (site / "clashing_kind.py").write_text(_CLASHING_KIND)
    script = (
        "import sys\n"
        "from packer.errors import KindRegistrationError\n"
        "from packer.kinds.registry import load_kinds\n"
        "try:\n    load_kinds()\n"
        "except KindRegistrationError as err:\n    print(err)\n    sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("packer.kinds: entry point 'clashing_kind:Raw' registers kind")
