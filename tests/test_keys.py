"""The keys of a build (``packer.keys``, SPEC §4 and §5): what they cover, what they never hold,
and that a kind's declared library versions are part of them.

Real workspaces, real plans, real ``python -m doit`` processes; the plug-in kind and its library
are installed the way any package is: dist-info folders on the subprocess's PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conftest import ids_by_name, run_doit, text_asset, write_asset

from packer import api
from packer.artifact import artifact_digest
from packer.keys import completed
from packer.pack import PackReader
from packer.plan import BuildPlan, plan_build
from packer.workspace import cached_output_path, open_workspace


def plan_of(root: Path) -> BuildPlan:
    return plan_build(api.snapshot(open_workspace(str(root)), frozen=False))


def by_name(plan: BuildPlan) -> dict[str, tuple[str, str]]:
    """(output key, task key) of each asset, by asset_name."""
    return {t.asset_name: (t.output_key, t.task_key) for t in plan.tasks}


def test_output_key_holds_no_path_name_or_location(tmp_path: Path) -> None:
    # The same asset content in two workspaces, at other places, in other folders, under other
    # names: the output key (what the shared cache will be keyed by) is the same.
    for root, folder, name in ((tmp_path / "a", "x/one", "one"), (tmp_path / "b/c", "y", "two")):
        api.init(str(root), "game")
        text_asset(root / "assets", folder, name, "same words\n")
    first, second = by_name(plan_of(tmp_path / "a")), by_name(plan_of(tmp_path / "b/c"))
    assert first["one"][0] == second["two"][0]
    # The task key covers the asset.json bytes, which hold the asset_name.
    assert first["one"][1] != second["two"][1]


def test_output_key_covers_what_the_kind_sees(workspace: Path) -> None:
    assets = workspace / "assets"
    text_asset(assets, "t", "t", "words\n")
    before = by_name(plan_of(workspace))["t"][0]
    changes = [
        ("data.txt", "other words\n"),
        ("asset.json", {"asset_name": "t", "kind": "raw", "inputs": ["data.txt"]}),
        (
            "asset.json",
            {
                "asset_name": "t",
                "kind": "text",
                "inputs": ["data.txt"],
                "params": {"trailing_newline": False},
            },
        ),
    ]
    seen = {before}
    for file, content in changes:
        text = content if isinstance(content, str) else json.dumps(content)
        (assets / "t" / file).write_text(text, encoding="utf-8")
        key = by_name(plan_of(workspace))["t"][0]
        assert key not in seen, file
        seen.add(key)


def test_doit_and_the_build_complete_keys_with_the_same_dep_digests(workspace: Path) -> None:
    # One definition: the key doit saves for a task with deps and the key its output is cached
    # under are both completed from the digest the dep's artifact records.
    assets = workspace / "assets"
    text_asset(assets, "base", "base", "base\n")
    write_asset(
        assets,
        "top",
        {"asset_name": "top", "kind": "json", "inputs": ["t.json"], "deps": ["base"]},
        {"t.json": "[1]"},
    )
    assert run_doit(workspace).code == 0
    ids = ids_by_name(workspace)
    top = next(t for t in plan_of(workspace).tasks if t.asset_name == "top")
    ws = open_workspace(str(workspace))
    digests = [artifact_digest(ws.artifact_path(ids["base"]))]
    record = json.loads(Path(ws.doit_record_path).read_text(encoding="utf-8"))
    saved = record[f"asset:{ids['top']}"]["_values_:"]["packer-key"]
    assert saved == completed(top.task_key, digests)
    entry = cached_output_path(ws.output_cache_dir, completed(top.output_key, digests))
    assert os.path.samefile(entry, ws.artifact_path(ids["top"]))


# A plug-in kind whose bytes come from a library it declares; the library's version lives in its
# own dist-info, so an upgrade changes only that library, never the kind.
LIBRARY = """
def shout(data: bytes) -> bytes:
    return b"{tag}:" + data.upper()
"""

KIND = """
from typing import ClassVar
from pydantic import BaseModel
from packer.kinds.base import KindContext, NoParams


class LoudKind:
    name: ClassVar[str] = "loud"
    version: ClassVar[int] = 1
    libraries: ClassVar[tuple[str, ...]] = ("packer-test-shoutlib",)
    Params: ClassVar[type[BaseModel]] = NoParams

    def process(self, ctx: KindContext) -> bytes:
        import packer_test_shoutlib

        return packer_test_shoutlib.shout(b"".join(ctx.inputs))
"""


def dist_info(folder: Path, name: str, version: str, entry_points: str = "") -> None:
    for old in folder.glob(f"{name.replace('-', '_')}-*.dist-info"):
        shutil.rmtree(old)
    dist = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    (dist / "METADATA").write_text(metadata, "utf-8")
    if entry_points:
        (dist / "entry_points.txt").write_text(entry_points, "utf-8")


def install_library(folder: Path, version: str, tag: str) -> None:
    (folder / "packer_test_shoutlib.py").write_text(LIBRARY.format(tag=tag), "utf-8")
    dist_info(folder, "packer-test-shoutlib", version)


def cache_entries(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root / ".packer" / "cache"))


def test_library_upgrade_runs_the_kind_again(workspace: Path, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "packer_test_loud.py").write_text(KIND, "utf-8")
    entry_point = "[packer.kinds]\nloud = packer_test_loud:LoudKind\n"
    dist_info(plugins, "packer-test-loud", "1.0", entry_point)
    install_library(plugins, "1.0", "one")
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")])),
        # The library's source is rewritten in place, maybe within the second a .pyc records.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    write_asset(
        workspace / "assets",
        "hey",
        {"asset_name": "hey", "kind": "loud", "inputs": ["h.txt"]},
        {"h.txt": "hey"},
    )
    text_asset(workspace / "assets", "other", "other")
    first = run_doit(workspace, env=env)
    assert first.code == 0, first.err
    task = f"asset:{ids_by_name(workspace)['hey']}"
    with PackReader(str(workspace / "build/game.pack")) as reader:
        assert reader.get_by_name("hey") == b"one:HEY"
    assert run_doit(workspace, env=env).executed == ()
    cached = cache_entries(workspace)

    install_library(plugins, "2.0", "two")  # the kind itself is unchanged, still version 1
    upgraded = run_doit(workspace, env=env)
    assert upgraded.code == 0, upgraded.err
    assert set(upgraded.executed) == {task, "pack"}  # only the asset whose kind declares it
    with PackReader(str(workspace / "build/game.pack")) as reader:
        assert reader.get_by_name("hey") == b"two:HEY"
    assert cache_entries(workspace) == cached + 1  # the kind ran: a new output was cached

    # Back to the first version: its output is still cached under its own key, and served.
    install_library(plugins, "1.0", "one")
    again = run_doit(workspace, env=env)
    assert set(again.executed) == {task, "pack"}
    assert cache_entries(workspace) == cached + 1
    with PackReader(str(workspace / "build/game.pack")) as reader:
        assert reader.get_by_name("hey") == b"one:HEY"
