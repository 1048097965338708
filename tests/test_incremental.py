"""Incremental builds through real doit runs (SPEC §4): which tasks run after each kind of change.

Every test starts from a built workspace holding a text asset, a raw asset, a json asset that
deps on the text asset, and an image asset, then makes one change and reads doit's own reporter
(``.  NAME`` executed, ``-- NAME`` up to date) from a plain ``python -m doit`` subprocess.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import (
    DoitRun,
    built_template,
    copy_built,
    ids_by_name,
    pack_bytes,
    run_doit,
    run_packer,
    text_asset,
    write_asset,
)

from packer.artifact import HEADER_SIZE, read_artifact
from packer.pack import PackReader, verify_pack


def png(color: tuple[int, int, int, int] = (200, 100, 50, 255), size: int = 2) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


def populate(root: Path) -> None:
    """intro (text), blob (raw), config (json, deps intro), hero (image)."""
    assets = root / "assets"
    text_asset(assets, "text/intro", "intro", "hello\n")
    write_asset(
        assets, "raw/blob", {"asset_name": "blob", "kind": "raw", "inputs": ["b.bin"]},
        {"b.bin": b"\x00\x01\x02\x03"},
    )  # fmt: skip
    write_asset(
        assets,
        "data/config",
        {"asset_name": "config", "kind": "json", "inputs": ["c.json"], "deps": ["intro"]},
        {"c.json": '{"b": 1, "a": [1, 2]}'},
    )
    write_asset(
        assets,
        "sprites/hero",
        {
            "asset_name": "hero",
            "kind": "image",
            "inputs": ["hero.png"],
            "params": {"format": "rgba8"},
        },
        {"hero.png": png()},
    )


def task(root: Path, name: str) -> str:
    return f"asset:{ids_by_name(root)[name]}"


def tasks(root: Path, *names: str) -> set[str]:
    return {task(root, name) for name in names}


ALL = ("intro", "blob", "config", "hero")


def ran(result: DoitRun) -> set[str]:
    assert result.code == 0, result.out + result.err
    return set(result.executed)


def cache_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root / ".packer" / "cache"))


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built workspace per module; each test gets a copy (a doit run saved per test)."""
    root, first = built_template(tmp_path_factory, populate)
    assert ran(first) == tasks(root, *ALL) | {"pack"}
    return root


@pytest.fixture
def built(template: Path, tmp_path: Path) -> Path:
    """A copy of the built template at another path: doit's state and packer's caches hold
    no absolute path, so everything in it is up to date where it lands."""
    return copy_built(template, tmp_path)


def test_nothing_changed_every_task_is_up_to_date(built: Path) -> None:
    again = run_doit(built)
    assert ran(again) == set()
    assert set(again.up_to_date) == tasks(built, *ALL) | {"pack"}


def test_touch_rebuilds_nothing(built: Path) -> None:
    before = pack_bytes(built)
    later = time.time_ns() + 3_600 * 10**9
    for path in (built / "assets").rglob("*"):
        if path.is_file():
            os.utime(path, ns=(later, later))
    again = run_doit(built)
    assert ran(again) == set()
    assert pack_bytes(built) == before


def test_content_change_rebuilds_that_asset_its_dependents_and_pack(built: Path) -> None:
    (built / "assets/text/intro/data.txt").write_text("goodbye\n", encoding="utf-8")
    again = run_doit(built)
    assert ran(again) == tasks(built, "intro", "config") | {"pack"}
    assert set(again.up_to_date) == tasks(built, "blob", "hero")
    # doit's order: the dep before its dependent, the pack last.
    order = list(again.executed)
    assert order.index(task(built, "intro")) < order.index(task(built, "config"))
    assert order[-1] == "pack"
    with PackReader(str(built / "build/game.pack")) as reader:
        assert reader.get_by_name("intro") == b"goodbye\n"


def test_same_size_change_with_restored_mtime_still_rebuilds(workspace: Path) -> None:
    # Files written less than 2 s before a scan are never trusted to the stat cache ("racily
    # clean"); wait that out so the first build caches every input's stat, which is the state
    # in which a size+mtime checker (doit's MD5Checker) would call the edit below unchanged.
    populate(workspace)
    time.sleep(2.2)
    assert ran(run_doit(workspace)) == tasks(workspace, *ALL) | {"pack"}
    data = workspace / "assets/raw/blob/b.bin"
    before = os.stat(data)
    with open(data, "r+b") as handle:  # in place: same inode, same size
        handle.write(b"\x09\x08\x07\x06")
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(data)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    again = run_doit(workspace)
    assert ran(again) == tasks(workspace, "blob") | {"pack"}
    with PackReader(str(workspace / "build/game.pack")) as reader:
        assert reader.get_by_name("blob") == b"\x09\x08\x07\x06"


def test_params_change_rebuilds_that_asset(built: Path) -> None:
    edit_json(built / "assets/sprites/hero/asset.json", params={"format": "rgb8"})
    again = run_doit(built)
    assert ran(again) == tasks(built, "hero") | {"pack"}
    with PackReader(str(built / "build/game.pack")) as reader:
        hero = reader.get_by_name("hero")
    assert len(hero) == 16 + 2 * 2 * 3  # header + 2x2 RGB pixels


def test_dep_output_change_reruns_the_dependent(built: Path) -> None:
    # The dep's own asset.json changes its output (params), not the dependent's files.
    intro = built / "assets/text/intro"
    (intro / "data.txt").write_text("hello", encoding="utf-8")
    edit_json(intro / "asset.json", params={"trailing_newline": False})
    again = run_doit(built)
    assert ran(again) == tasks(built, "intro", "config") | {"pack"}
    with PackReader(str(built / "build/game.pack")) as reader:
        assert reader.get_by_name("intro") == b"hello"


def test_dep_input_change_with_same_output_leaves_the_dependent_up_to_date(built: Path) -> None:
    # The text kind turns CRLF into LF: the dep's input changes, its output bytes do not.
    (built / "assets/text/intro/data.txt").write_bytes(b"hello\r\n")
    again = run_doit(built)
    assert task(built, "intro") in ran(again)
    assert task(built, "config") in again.up_to_date


def test_a_damaged_cache_entry_is_not_trusted(built: Path) -> None:
    # Every cache entry is damaged in place; forgetting the tasks makes them consult the cache.
    for entry in (built / ".packer" / "cache").rglob("*"):
        if entry.is_file():
            entry.write_bytes(entry.read_bytes()[:-1] + b"!")
    expected = pack_bytes(built)
    assert run_doit(built, "forget", "--all").code == 0
    assert run_doit(built).code == 0
    assert pack_bytes(built) == expected


def test_editing_an_artifact_in_place_does_not_reach_the_cache(built: Path) -> None:
    asset_id = ids_by_name(built)["blob"]
    artifact = built / "build" / "assets" / f"{asset_id}.bin"
    with open(artifact, "r+b") as handle:  # in place, as an editor may write
        handle.seek(HEADER_SIZE)
        handle.write(b"\xff")
    expected = pack_bytes(built)
    # The damaged artifact is refused, not packed...
    assert run_doit(built, "forget", "pack").code == 0
    refused = run_doit(built)
    assert refused.code != 0
    assert f"doit forget asset:{asset_id}" in refused.out + refused.err
    assert pack_bytes(built) == expected
    # ...and once its task runs again, the cache (which shared the file) is not trusted either.
    assert run_doit(built, "forget", "--all").code == 0
    assert run_doit(built).code == 0
    assert read_artifact(str(artifact)) == b"\x00\x01\x02\x03"
    assert pack_bytes(built) == expected


# A third-party kind, registered the way any installed package registers one: an entry point
# in the ``packer.kinds`` group, from a dist-info folder on the subprocess's PYTHONPATH.
PLUGIN = """
from typing import ClassVar
from pydantic import BaseModel
from packer.kinds.base import KindContext, NoParams

VERSION = {version}


class ShoutKind:
    name: ClassVar[str] = "shout"
    version: ClassVar[int] = VERSION
    Params: ClassVar[type[BaseModel]] = NoParams

    def process(self, ctx: KindContext) -> bytes:
        return b"v%d:" % VERSION + b"".join(ctx.inputs).upper()
"""


def install_plugin(folder: Path, version: int) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "packer_test_shout.py").write_text(PLUGIN.format(version=version), "utf-8")
    dist = folder / "packer_test_shout-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: packer-test-shout\nVersion: 1.0\n", "utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[packer.kinds]\nshout = packer_test_shout:ShoutKind\n", "utf-8"
    )


def test_kind_version_change_rebuilds_that_kinds_assets(workspace: Path, tmp_path: Path) -> None:
    # A real kind whose version is bumped between builds, as a package upgrade does; no
    # in-process patching: the version is read from the plugin's source by each doit process.
    plugins = tmp_path / "plugins"
    install_plugin(plugins, version=1)
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))
    }
    populate(workspace)
    write_asset(
        workspace / "assets",
        "loud",
        {"asset_name": "loud", "kind": "shout", "inputs": ["l.txt"]},
        {"l.txt": "hey"},
    )
    assert ran(run_doit(workspace, env=env)) == tasks(workspace, *ALL, "loud") | {"pack"}
    assert ran(run_doit(workspace, env=env)) == set()
    install_plugin(plugins, version=2)
    again = run_doit(workspace, env=env)
    assert ran(again) == tasks(workspace, "loud") | {"pack"}
    with PackReader(str(workspace / "build/game.pack")) as reader:
        assert reader.get_by_name("loud") == b"v2:HEY"


def test_rename_keeps_id_and_reuses_cached_bytes(built: Path) -> None:
    hero_id = ids_by_name(built)["hero"]
    cached = cache_files(built)
    _, manifest_before = pack_bytes(built)
    edit_json(built / "assets/sprites/hero/asset.json", asset_name="sprites/hero")
    again = run_doit(built)
    # The asset task runs (its asset.json changed) and so does the pack (the name is in it)...
    assert ran(again) == {f"asset:{hero_id}", "pack"}
    assert ids_by_name(built)["sprites/hero"] == hero_id
    assert "hero" not in ids_by_name(built)
    manifest = json.loads((built / "build/game.manifest.json").read_text("utf-8"))
    names = {a["asset_id"]: a["asset_name"] for a in manifest["assets"]}
    assert names[hero_id] == "sprites/hero"
    # ...but the kind did not run again: the content-addressed cache served the same bytes.
    assert cache_files(built) == cached
    checksums = {a["asset_id"]: a["xxh3_128"] for a in manifest["assets"]}
    assert checksums == {
        a["asset_id"]: a["xxh3_128"] for a in json.loads(manifest_before)["assets"]
    }
    verify_pack(str(built / "build/game.pack"))


def test_packer_mv_keeps_id_and_pack_bytes(built: Path) -> None:
    blob_id = ids_by_name(built)["blob"]
    pack_before, manifest_before = pack_bytes(built)
    moved = run_packer("mv", "assets/raw/blob", "assets/moved/deeper/blob", cwd=built)
    assert moved.code == 0, moved.err
    assert ids_by_name(built)["blob"] == blob_id
    again = run_doit(built)
    # Nothing the asset's bytes depend on changed, so its task is up to date; the pack task
    # runs (the snapshot fingerprint covers paths) and writes the same bytes.
    assert f"asset:{blob_id}" in again.up_to_date
    assert ran(again) == {"pack"}
    pack_after, manifest_after = pack_bytes(built)
    assert pack_after == pack_before
    assert json.loads(manifest_after)["assets"] == json.loads(manifest_before)["assets"]
    assert json.loads(manifest_after)["snapshot"] != json.loads(manifest_before)["snapshot"]


def test_doit_clean_removes_outputs_and_the_rebuild_is_identical(built: Path) -> None:
    before = pack_bytes(built)
    cleaned = run_doit(built, "clean")
    assert cleaned.code == 0, cleaned.err
    out = built / "build"
    assert not (out / "game.pack").exists()
    assert not (out / "game.manifest.json").exists()
    assert [p.name for p in (out / "assets").iterdir()] == []
    assert ran(run_doit(built)) == tasks(built, *ALL) | {"pack"}
    assert pack_bytes(built) == before


def test_always_execute_runs_every_task_and_keeps_the_record(built: Path) -> None:
    # An up-to-date asset's check is settled when its task is made (uptodate True); run anyway,
    # it still saves its key, so the next run finds everything up to date.
    before = pack_bytes(built)
    assert ran(run_doit(built, "run", "-a")) == tasks(built, *ALL) | {"pack"}
    assert ran(run_doit(built)) == set()
    assert pack_bytes(built) == before
    # A settled task whose artifact is gone still runs: doit checks its target.
    victim = next(iter(ids_by_name(built).values()))
    (built / "build" / "assets" / f"{victim}.bin").unlink()
    assert f"asset:{victim}" in ran(run_doit(built))


def test_doit_forget_makes_tasks_run_again(built: Path) -> None:
    forgot = run_doit(built, "forget", "--all")
    assert forgot.code == 0, forgot.err
    assert ran(run_doit(built)) == tasks(built, *ALL) | {"pack"}
    # No task name: doit forgets its default tasks (the pack) instead of crashing.
    plain = run_doit(built, "forget")
    assert plain.code == 0, plain.err
    assert "Traceback" not in plain.err
    assert ran(run_doit(built)) == {"pack"}
    # Re-running a task whose output sits in the cache leaves no temp file behind.
    assert sorted(p.name for p in (built / "build/assets").iterdir()) == sorted(
        f"{asset_id}.bin" for asset_id in ids_by_name(built).values()
    )


def test_doit_info_and_list_show_every_asset_task_and_pack(built: Path) -> None:
    ids = ids_by_name(built)
    listed = run_doit(built, "list")
    assert listed.code == 0, listed.err
    names = {line.split()[0] for line in listed.out.splitlines() if line.strip()}
    assert names == {f"asset:{i}" for i in ids.values()} | {"pack"}
    info = run_doit(built, "info", f"asset:{ids['config']}")
    assert info.code == 0, info.err
    assert "config (json, assets/data/config)" in info.out
    assert f"build/assets/{ids['config']}.bin" in info.out
    assert "up-to-date" in info.out


def test_doit_ignore_skips_the_task(built: Path) -> None:
    hero = task(built, "hero")
    assert run_doit(built, "ignore", hero).code == 0
    (built / "assets/sprites/hero/hero.png").write_bytes(png((1, 2, 3, 255)))
    again = run_doit(built)
    assert again.code == 0, again.err
    assert f"!! {hero}" in again.out.splitlines()
    assert hero not in again.executed


@pytest.mark.parametrize("jobs", [("-n", "2"), ("-n", "2", "-P", "thread")])
def test_parallel_doit_builds_the_same_bytes(built: Path, jobs: tuple[str, ...]) -> None:
    before = pack_bytes(built)
    shutil.rmtree(built / "build")
    shutil.rmtree(built / ".packer")
    first = run_doit(built, *jobs)
    assert ran(first) == tasks(built, *ALL) | {"pack"}
    assert pack_bytes(built) == before
