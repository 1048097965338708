"""Faults a build meets (SPEC §6), through plain ``doit`` and ``packer build`` as real processes.

Each fault must give a clear error naming the workspace-relative file, no traceback, a non-zero
exit (``packer build``: 1), an untouched registry.json, and the previous pack and manifest
byte-for-byte where they were. Frozen mode (SPEC §3), an input changed while the build reads it,
and a build killed with SIGKILL are covered here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    built_template,
    copy_built,
    ids_by_name,
    pack_bytes,
    run_doit,
    run_packer,
    text_asset,
    write_asset,
)
from doit.exceptions import TaskFailed

from packer import api
from packer.artifact import read_artifact
from packer.doit import PackerTasks
from packer.pack import verify_pack
from packer.plan import plan_build
from packer.workspace import open_workspace

FROZEN = {"PACKER_FROZEN": "1"}


def populate(root: Path) -> None:
    """intro (text), blob (raw), config (json, deps intro)."""
    assets = root / "assets"
    text_asset(assets, "text/intro", "intro", "hello\n")
    decl = {"asset_name": "blob", "kind": "raw", "inputs": ["b.bin"]}
    write_asset(assets, "raw/blob", decl, {"b.bin": b"\x00\x01\x02"})
    decl = {"asset_name": "config", "kind": "json", "inputs": ["c.json"], "deps": ["intro"]}
    write_asset(assets, "data/config", decl, {"c.json": '{"b": 1, "a": 2}'})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, first = built_template(tmp_path_factory, populate)
    assert first.code == 0, first.err
    assert len(first.executed) == 4
    return root


@pytest.fixture
def built(template: Path, tmp_path: Path) -> Path:
    """A built workspace (a copy of the module's template)."""
    return copy_built(template, tmp_path)


def edit_decl(root: Path, folder: str, **changes: Any) -> None:
    path = root / "assets" / folder / "asset.json"
    path.write_text(json.dumps({**json.loads(path.read_text("utf-8")), **changes}), "utf-8")


# --- bad input: each case breaks a built workspace, then names what the error must say ----------

Fault = Callable[[Path], None]


def _invalid_json(root: Path) -> None:
    (root / "assets/text/intro/asset.json").write_text('{"asset_name": "intro",\n  "kind": ')


def _unknown_kind(root: Path) -> None:
    edit_decl(root, "raw/blob", kind="rawr")


def _duplicate_name(root: Path) -> None:
    text_asset(root / "assets", "text/copy", "intro", "hello again\n")


def _missing_input(root: Path) -> None:
    (root / "assets/raw/blob/b.bin").unlink()


def _escaping_input(root: Path) -> None:
    edit_decl(root, "raw/blob", inputs=["../../../../outside.bin"])


def _cycle(root: Path) -> None:
    edit_decl(root, "text/intro", deps=["config"])


def _asset_id_in_asset_json(root: Path) -> None:
    edit_decl(root, "raw/blob", asset_id="0123456789abcdef")


def _corrupt_registry(root: Path) -> None:
    text = (root / "registry.json").read_text("utf-8")
    (root / "registry.json").write_text(text[: len(text) // 2], "utf-8")


FAULTS: dict[str, tuple[Fault, str]] = {
    "invalid-json": (_invalid_json, r"assets/text/intro/asset\.json:2:\d+: invalid JSON"),
    "unknown-kind": (
        _unknown_kind,
        r"assets/raw/blob/asset\.json:\d+:\d+: kind: unknown kind 'rawr' .*known kinds: .*raw",
    ),
    "duplicate-name": (
        _duplicate_name,
        r"assets/text/(copy|intro)/asset\.json:\d+:\d+: .*'intro' is also declared in "
        r"assets/text/(intro|copy)/asset\.json",
    ),
    "missing-input": (
        _missing_input,
        r"assets/raw/blob/asset\.json:\d+:\d+: inputs\.\d: .*'b\.bin' does not exist",
    ),
    "escaping-input": (
        _escaping_input,
        r"assets/raw/blob/asset\.json:\d+:\d+: .*escapes the workspace",
    ),
    "cycle": (
        _cycle,
        r"assets/(text/intro|data/config)/asset\.json:\d+:\d+: deps: dependency cycle: "
        r"(intro -> config -> intro|config -> intro -> config)",
    ),
    "asset-id-in-asset-json": (
        _asset_id_in_asset_json,
        r"assets/raw/blob/asset\.json:\d+:\d+: .*asset_id is owned by registry\.json",
    ),
    "corrupt-registry": (_corrupt_registry, r"registry\.json:\d+:\d+: invalid JSON"),
}


def assert_clean_failure(output: str, pattern: str, root: Path) -> None:
    assert re.search(pattern, output), output
    assert "Traceback" not in output
    assert str(root) not in output  # workspace-relative, not absolute


@pytest.mark.parametrize("case", sorted(FAULTS))
def test_bad_input_fails_the_build_and_keeps_registry_and_previous_pack(
    case: str, built: Path
) -> None:
    fault, pattern = FAULTS[case]
    outputs = pack_bytes(built)
    fault(built)
    registry = (built / "registry.json").read_bytes()

    plain = run_doit(built)
    assert plain.code != 0
    assert plain.executed == ()
    assert_clean_failure(plain.out + plain.err, "ERROR: packer: " + pattern, built)

    packer = run_packer("build", cwd=built)
    assert packer.code == 1
    assert_clean_failure(packer.err, "^error: " + pattern, built)
    assert "Traceback" not in packer.out

    assert (built / "registry.json").read_bytes() == registry
    assert pack_bytes(built) == outputs


# --- frozen mode --------------------------------------------------------------------------------


def _unregistered(root: Path) -> None:
    text_asset(root / "assets", "text/new", "new", "new\n")


def _deleted(root: Path) -> None:
    shutil.rmtree(root / "assets/raw/blob")


def _renamed(root: Path) -> None:
    edit_decl(root, "raw/blob", asset_name="blob2")


def _moved(root: Path) -> None:
    (root / "assets/raw/blob").rename(root / "assets/blob-moved-by-hand")


DRIFT: dict[str, tuple[Fault, str]] = {
    "unregistered": (_unregistered, r"assets/text/new/asset\.json: asset 'new' is not registered"),
    "deleted": (_deleted, r"assets/raw/blob: registered asset [0-9a-f]+ is missing"),
    "renamed": (_renamed, r"assets/raw/blob: asset [0-9a-f]+ renamed from 'blob'"),
    "moved": (_moved, r"assets/blob-moved-by-hand: asset [0-9a-f]+ moved from assets/raw/blob"),
}


@pytest.mark.parametrize("case", sorted(DRIFT))
def test_frozen_refuses_registry_drift_and_unfrozen_syncs(case: str, built: Path) -> None:
    drift, pattern = DRIFT[case]
    outputs = pack_bytes(built)
    drift(built)
    registry = (built / "registry.json").read_bytes()

    packer = run_packer("build", "--frozen", cwd=built)
    assert packer.code == 1
    assert_clean_failure(packer.err, "^error: " + pattern + r".*\(frozen: ", built)
    plain = run_doit(built, env=FROZEN)
    assert plain.code != 0
    assert_clean_failure(plain.out + plain.err, "ERROR: packer: " + pattern, built)
    assert (built / "registry.json").read_bytes() == registry
    assert pack_bytes(built) == outputs

    synced = run_doit(built)
    assert synced.code == 0, synced.err
    assert "pack" in synced.executed
    assert (built / "registry.json").read_bytes() != registry
    verify_pack(str(built / "build/game.pack"))


# --- an input changed while the build reads it --------------------------------------------------


def _name_and_action(task: Any) -> tuple[str, Callable[[], Any]]:
    """The task's name and its (single) Python action, from a task dict or a doit Task."""
    if isinstance(task, dict):
        func, args = task["actions"][0]
        return task["basename"], lambda: func(*args)
    action = task.actions[0]
    return task.name, lambda: action.py_callable(*action.args, **action.kwargs)


def test_input_changed_after_the_snapshot_fails_that_task_through_the_api(
    workspace: Path,
) -> None:
    populate(workspace)
    snapshot = api.snapshot(open_workspace(str(workspace)))
    plan = plan_build(snapshot)
    created = PackerTasks(str(workspace), plan=plan).create_doit_tasks()
    actions = dict(_name_and_action(task) for task in created)
    ids = ids_by_name(workspace)
    (workspace / "assets/text/intro/data.txt").write_text("changed\n", encoding="utf-8")

    result = actions[f"asset:{ids['intro']}"]()
    assert isinstance(result, TaskFailed)
    assert "changed during build" in str(result)
    assert "assets/text/intro/data.txt" in str(result)
    assert not (workspace / "build/assets" / f"{ids['intro']}.bin").exists()
    # An asset whose inputs still match its snapshot builds.
    assert actions[f"asset:{ids['blob']}"]() == {"outcome": "built"}
    assert read_artifact(str(workspace / "build/assets" / f"{ids['blob']}.bin")) == b"\x00\x01\x02"


HOST_DODO = """\
from packer.doit import packer_tasks

game = packer_tasks("game", prefix="game/")


def task_edit_input():
    # Runs after packer's tasks were created (their snapshot taken), before they run.
    def edit():
        with open("game/assets/text/intro/data.txt", "a", encoding="utf-8") as handle:
            handle.write("edited while building\\n")

    return {"actions": [edit], "uptodate": [False]}
"""


def test_input_changed_during_a_doit_build_fails_the_task_and_keeps_the_pack(
    built: Path, tmp_path: Path
) -> None:
    outputs = pack_bytes(built)
    # New content (not in the cache), so the asset's task must read its input.
    (built / "assets/text/intro/data.txt").write_text("new content\n", encoding="utf-8")
    (tmp_path / "dodo.py").write_text(HOST_DODO, encoding="utf-8")
    result = run_doit(tmp_path, "edit_input", "game/pack")
    assert result.code != 0
    assert result.executed[0] == "edit_input"
    output = result.out + result.err
    assert "assets/text/intro/data.txt: changed during build" in output
    assert "Traceback" not in output
    assert "game/pack" not in result.executed
    assert pack_bytes(built) == outputs


# --- a killed build -----------------------------------------------------------------------------


def test_killed_build_leaves_previous_pack_and_manifest_whole(workspace: Path) -> None:
    populate(workspace)
    big = bytes(range(256)) * (128 * 1024)  # 32 MiB: pack writing takes long enough to hit
    decl = {"asset_name": "big", "kind": "raw", "inputs": ["big.bin"]}
    write_asset(workspace / "assets", "raw/big", decl, {"big.bin": big})
    assert run_doit(workspace).code == 0
    pack = workspace / "build/game.pack"
    outputs = pack_bytes(workspace)

    (workspace / "assets/text/intro/data.txt").write_text("rebuilt\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "doit"],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Niced, so this polling loop gets the CPU as soon as the pack's temp file appears.
        preexec_fn=lambda: os.nice(10),
    )
    written = 0  # bytes of the new pack's temp file when the build was killed
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        for entry in os.scandir(pack.parent):
            if entry.name.startswith(".game.pack.tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    written = entry.stat().st_size
        if written:  # killed half-way through streaming the blobs
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    process.wait(timeout=60)
    assert written, "the build finished before its pack was being written; make the asset bigger"
    assert process.returncode == -signal.SIGKILL

    assert pack_bytes(workspace) == outputs
    verify_pack(str(pack))
    again = run_doit(workspace)
    assert again.code == 0, again.err
    verify_pack(str(pack))
    assert pack_bytes(workspace) != outputs


# --- doit's record is a cache ---------------------------------------------------------------------


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe{}")


def _wrong_shape(path: Path) -> None:
    path.write_text('{"pack": [1, 2]}', encoding="utf-8")


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


DAMAGED_RECORD: dict[str, Callable[[Path], None]] = {
    "truncated": _truncated,
    "not-utf8": _not_utf8,
    "wrong-shape": _wrong_shape,
    "fifo": _fifo,
}


@pytest.mark.parametrize("case", sorted(DAMAGED_RECORD))
def test_a_damaged_doit_record_costs_a_rebuild_never_a_failure(case: str, built: Path) -> None:
    record = built / ".packer/doit.json"
    outputs = pack_bytes(built)

    DAMAGED_RECORD[case](record)
    plain = run_doit(built, timeout=60)
    assert plain.code == 0, plain.out + plain.err
    assert len(plain.executed) == 4 and plain.err == ""
    assert run_doit(built, timeout=60).executed == ()

    DAMAGED_RECORD[case](record)
    packer = run_packer("build", cwd=built, timeout=60)
    assert packer.code == 0, packer.out + packer.err
    assert ".  pack" in packer.out and packer.err == ""
    assert run_doit(built, timeout=60).executed == ()
    assert pack_bytes(built) == outputs


def test_doit_record_is_written_only_when_it_changes_and_then_replaced(built: Path) -> None:
    record = built / ".packer/doit.json"
    before = record.stat()
    assert run_doit(built).executed == ()
    assert run_packer("build", "-n", "2", cwd=built).code == 0
    unchanged = record.stat()
    assert (unchanged.st_ino, unchanged.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    (built / "assets/text/intro/data.txt").write_text("changed\n", encoding="utf-8")
    assert run_doit(built).code == 0
    # A new file renamed over the old one: a reader sees the old record or the new, never half.
    assert record.stat().st_ino != before.st_ino
    assert list(record.parent.glob(".doit.json.tmp-*")) == []


def test_a_record_that_cannot_be_written_is_one_warning_and_the_build_succeeds(
    built: Path,
) -> None:
    record = built / ".packer/doit.json"
    record.unlink()
    record.mkdir()  # neither readable as a record nor replaceable by one
    (built / "assets/text/intro/data.txt").write_text("changed\n", encoding="utf-8")
    done = run_doit(built, timeout=60)
    assert done.code == 0, done.out + done.err
    assert done.err == (
        "packer: warning: .packer/doit.json: doit's record not saved (Is a directory); "
        "the tasks built now will run again next time\n"
    )
    verify_pack(str(built / "build/game.pack"))


# --- packer build: doit's commands and failures ----------------------------------------------


@pytest.mark.parametrize("command", [["clean"], ["forget"], ["info", "pack"], ["ignore", "pack"]])
def test_packer_build_passes_doit_commands_with_their_exit_code(
    command: list[str], built: Path
) -> None:
    assert run_doit(built, *command).code == 0
    done = run_packer("build", *command, cwd=built)
    assert done.code == 0, done.out + done.err


def test_packer_build_reports_a_failed_task_as_one_error_line(built: Path) -> None:
    outputs = pack_bytes(built)
    (built / "assets/data/config/c.json").write_text('{"b": ', encoding="utf-8")
    plain = run_doit(built)
    assert plain.code == 1
    assert "TaskFailed - taskid:asset:" in plain.out  # plain doit keeps doit's own report

    packer = run_packer("build", cwd=built)
    assert packer.code == 1
    assert re.fullmatch(r"error: assets/data/config/asset\.json: c\.json:1:7: [^\n]+\n", packer.err)
    assert "TaskFailed" not in packer.out and "####" not in packer.out
    assert pack_bytes(built) == outputs


def test_a_lock_path_taken_by_a_folder_is_one_line_at_task_loading(built: Path) -> None:
    (built / ".packer/build.lock").unlink()
    (built / ".packer/build.lock").mkdir()
    plain = run_doit(built, timeout=60)
    assert plain.code == 3
    assert plain.err == "ERROR: packer: .packer/build.lock: Is a directory\n"
    packer = run_packer("build", cwd=built, timeout=60)
    assert packer.code == 1
    assert packer.err == "error: .packer/build.lock: Is a directory\n"


FIFO_DODO = """\
import os

from packer.doit import packer_tasks

game = packer_tasks("game", prefix="game/")


def task_swap_input():
    # Runs after packer's tasks were created (their snapshot taken), before they run.
    def swap():
        os.unlink("game/assets/text/intro/data.txt")
        os.mkfifo("game/assets/text/intro/data.txt")

    return {"actions": [swap], "uptodate": [False]}
"""


def test_a_fifo_swapped_in_for_an_input_fails_its_task_without_blocking(
    built: Path, tmp_path: Path
) -> None:
    outputs = pack_bytes(built)
    # New content (not in the cache), so the asset's task must read its input.
    (built / "assets/text/intro/data.txt").write_text("new content\n", encoding="utf-8")
    (tmp_path / "dodo.py").write_text(FIFO_DODO, encoding="utf-8")
    result = run_doit(tmp_path, "swap_input", "game/pack", timeout=60)
    assert result.code == 1
    output = result.out + result.err
    assert "assets/text/intro/data.txt: cannot read input during build: a FIFO" in output
    assert "Traceback" not in output
    assert pack_bytes(built) == outputs
