"""The registry merge driver (SPEC §2 registry.json, §3 merge-registry): unit level and real git.

Unit tests call ``packer.registry.merge`` / ``packer.api.merge_registry`` on files in tmp_path.
The git tests make a real repository, install the driver the way a user does, and merge two
branches with ``git merge``; git runs ``packer merge-registry %O %A %B`` itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from conftest import Result, ids_by_name, registry_json, run_packer, text_asset

from packer import api
from packer.errors import ConflictError, RegistryError
from packer.model import RegistryEntry
from packer.registry import Registry, make_registry, merge, parse, render

Cli = Callable[..., Result]
TIMEOUT = 60


def aid(n: int) -> str:
    return f"{n:016x}"


def entry(
    n: int, name: str | None = None, path: str | None = None, content: str | None = None
) -> RegistryEntry:
    return RegistryEntry(
        asset_id=aid(n), asset_name=name or f"a{n}", path=path or f"assets/a{n}", content=content
    )


def content(n: int) -> str:
    return f"{n:032x}"


def reg(*entries: RegistryEntry, retired: tuple[int, ...] = ()) -> Registry:
    return make_registry(entries, (aid(n) for n in retired))


def write(path: Path, registry: Registry | bytes) -> Path:
    path.write_bytes(registry if isinstance(registry, bytes) else render(registry))
    return path


def sides(
    tmp_path: Path, base: Registry | bytes, ours: Registry | bytes, theirs: Registry | bytes
) -> tuple[Path, Path, Path]:
    return (
        write(tmp_path / "base.json", base),
        write(tmp_path / "ours.json", ours),
        write(tmp_path / "theirs.json", theirs),
    )


def merged_file(tmp_path: Path, base: Registry, ours: Registry, theirs: Registry) -> Registry:
    """Merge through the file API; checks the result replaced OURS in canonical text."""
    b, o, t = sides(tmp_path, base, ours, theirs)
    result = api.merge_registry(str(b), str(o), str(t))
    text = o.read_bytes()
    assert text == render(result)
    assert render(parse(text)) == text
    assert merge(base, ours, theirs) == result
    return result


# --- clean merges -------------------------------------------------------------------------------


def test_both_sides_register_different_assets_union(tmp_path: Path) -> None:
    base = reg(entry(1))
    ours = reg(entry(1), entry(2), entry(5))
    theirs = reg(entry(1), entry(3), entry(4))
    assert merged_file(tmp_path, base, ours, theirs) == reg(*(entry(n) for n in range(1, 6)))


def test_move_on_one_side_rename_on_the_other_both_kept(tmp_path: Path) -> None:
    base = reg(entry(1), entry(2))
    ours = reg(entry(1, path="assets/moved/a1"), entry(2))
    theirs = reg(entry(1), entry(2, name="renamed"))
    result = merged_file(tmp_path, base, ours, theirs)
    assert result == reg(entry(1, path="assets/moved/a1"), entry(2, name="renamed"))


def test_move_and_rename_of_the_same_asset_combine(tmp_path: Path) -> None:
    # Path and name are independent: git merges the folder move and the asset.json edit cleanly,
    # so the registry must not stop on them either.
    base = reg(entry(1), entry(2))
    ours = reg(entry(1, path="assets/moved/a1"), entry(2, name="two"))
    theirs = reg(entry(1, name="renamed"), entry(2, path="assets/b2"))
    result = merged_file(tmp_path, base, ours, theirs)
    assert result == reg(
        entry(1, name="renamed", path="assets/moved/a1"), entry(2, name="two", path="assets/b2")
    )
    assert merge(base, theirs, ours) == result


def test_content_records_never_conflict(tmp_path: Path) -> None:
    # Both sides edited a1's inputs (git says whether the inputs conflict); the record of what a
    # sync saw is advisory, so the merge takes ours and the next sync records the merged files.
    base = reg(entry(1, content=content(1)), entry(2, content=content(2)), entry(3))
    ours = reg(
        entry(1, content=content(11)), entry(2, content=content(2)), entry(3, content=content(3))
    )
    theirs = reg(
        entry(1, content=content(21)),
        entry(2, path="assets/moved/a2", content=content(22)),
        entry(3, name="three"),
    )
    result = merged_file(tmp_path, base, ours, theirs)
    assert result == reg(
        entry(1, content=content(11)),
        entry(2, path="assets/moved/a2", content=content(22)),
        entry(3, name="three", content=content(3)),
    )


def test_a_content_record_alone_yields_to_a_retirement(tmp_path: Path) -> None:
    base = reg(entry(1, content=content(1)), entry(2))
    ours = reg(entry(1, content=content(11)), entry(2))
    theirs = reg(entry(2), retired=(1,))
    assert merged_file(tmp_path, base, ours, theirs) == reg(entry(2), retired=(1,))


@pytest.mark.parametrize("retiring_side", ["ours", "theirs"])
def test_retirement_on_one_side_wins_over_untouched(tmp_path: Path, retiring_side: str) -> None:
    base = reg(entry(1), entry(2))
    retiring = reg(entry(1), retired=(2,))
    untouched = reg(entry(1), entry(2), entry(3))  # may add others meanwhile
    ours, theirs = (retiring, untouched) if retiring_side == "ours" else (untouched, retiring)
    result = merged_file(tmp_path, base, ours, theirs)
    assert result == reg(entry(1), entry(3), retired=(2,))
    assert aid(2) not in result.by_id


def test_retired_ids_union_and_are_never_brought_back(tmp_path: Path) -> None:
    base = reg(entry(1), entry(2), entry(3), retired=(9,))
    ours = reg(entry(2), entry(3), retired=(1, 9))
    theirs = reg(entry(1), entry(3), retired=(2, 9))
    result = merged_file(tmp_path, base, ours, theirs)
    assert result == reg(entry(3), retired=(1, 2, 9))
    assert result.taken_ids() == {aid(n) for n in (1, 2, 3, 9)}


def test_both_sides_make_the_same_change(tmp_path: Path) -> None:
    base = reg(entry(1), entry(2), entry(3))
    same = reg(entry(1, path="assets/moved/a1"), entry(3, name="three"), entry(4), retired=(2,))
    result = merged_file(tmp_path, base, same, same)
    assert result == same


def test_identical_sides_and_base_are_a_no_op(tmp_path: Path) -> None:
    base = reg(entry(1), entry(2), retired=(7,))
    assert merged_file(tmp_path, base, base, base) == base


def test_merge_is_symmetric_when_clean(tmp_path: Path) -> None:
    base = reg(entry(1), entry(2), entry(3))
    ours = reg(entry(1, path="assets/x"), entry(2), entry(3), entry(10))
    theirs = reg(entry(1), entry(2, name="two"), entry(11), retired=(3,))
    assert merge(base, ours, theirs) == merge(base, theirs, ours)
    assert render(merge(base, ours, theirs)) == render(merge(base, theirs, ours))


def test_swapping_paths_on_one_side_is_clean(tmp_path: Path) -> None:
    # Two ids exchange folders on one side; the other side adds an asset: no path is claimed twice.
    base = reg(entry(1, path="assets/p"), entry(2, path="assets/q"))
    ours = reg(entry(1, path="assets/q"), entry(2, path="assets/p"))
    theirs = reg(entry(1, path="assets/p"), entry(2, path="assets/q"), entry(3))
    result = merged_file(tmp_path, base, ours, theirs)
    assert result == reg(entry(1, path="assets/q"), entry(2, path="assets/p"), entry(3))


def test_empty_base_from_git_add_add(tmp_path: Path) -> None:
    result = merged_file_raw(tmp_path, b"", reg(entry(1)), reg(entry(2)))
    assert result == reg(entry(1), entry(2))
    # Both sides adding the very same registry is clean too.
    again = merged_file_raw(tmp_path, b"", reg(entry(1)), reg(entry(1)))
    assert again == reg(entry(1))


def merged_file_raw(tmp_path: Path, base: bytes, ours: Registry, theirs: Registry) -> Registry:
    b, o, t = sides(tmp_path, base, ours, theirs)
    result = api.merge_registry(str(b), str(o), str(t))
    assert o.read_bytes() == render(result)
    return result


def test_result_is_canonical_even_from_non_canonical_sides(tmp_path: Path) -> None:
    def scrambled(registry: Registry) -> bytes:
        data = {
            "retired": sorted(registry.retired, reverse=True),
            "assets": [
                {"path": e.path, "asset_name": e.asset_name, "asset_id": e.asset_id}
                for e in reversed(registry.entries)
            ],
            "format": 1,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    base = reg(entry(1), entry(2), retired=(8,))
    ours = reg(entry(1), entry(2), entry(3), retired=(8,))
    theirs = reg(entry(2), entry(4), retired=(1, 8))
    b, o, t = sides(tmp_path, scrambled(base), scrambled(ours), scrambled(theirs))
    result = api.merge_registry(str(b), str(o), str(t))
    text = o.read_bytes()
    assert text == render(result) == render(parse(text))
    assert text.endswith(b"}\n")
    assert b'\n  "assets": [\n    {\n      "asset_id": "' in text
    assert [e["asset_id"] for e in json.loads(text)["assets"]] == [aid(2), aid(3), aid(4)]
    assert result == reg(entry(2), entry(3), entry(4), retired=(1, 8))


def test_cli_clean_merge_writes_ours_and_exits_0(tmp_path: Path, cli: Cli) -> None:
    b, o, t = sides(tmp_path, reg(entry(1)), reg(entry(1), entry(2)), reg(entry(1), entry(3)))
    result = cli("merge-registry", str(b), str(o), str(t))
    assert (result.code, result.err) == (0, "")
    assert o.read_bytes() == render(reg(entry(1), entry(2), entry(3)))
    assert t.read_bytes() == render(reg(entry(1), entry(3)))  # only OURS is written


# --- real conflicts -----------------------------------------------------------------------------

CONFLICTS: Mapping[str, tuple[Registry, Registry, Registry, tuple[str, ...]]] = {
    "renamed_differently": (
        reg(entry(1), entry(2)),
        reg(entry(1, name="ours-name"), entry(2)),
        reg(entry(1, name="theirs-name"), entry(2)),
        (aid(1), "ours-name", "theirs-name"),
    ),
    "moved_differently": (
        reg(entry(1)),
        reg(entry(1, path="assets/ours")),
        reg(entry(1, path="assets/theirs")),
        (aid(1), "assets/ours", "assets/theirs"),
    ),
    "renamed_differently_one_also_moved": (
        reg(entry(1)),
        reg(entry(1, name="ours-name", path="assets/moved")),
        reg(entry(1, name="theirs-name")),
        (aid(1), "ours-name", "theirs-name"),
    ),
    "moved_vs_retired": (
        reg(entry(1), entry(2)),
        reg(entry(1, path="assets/moved"), entry(2)),
        reg(entry(2), retired=(1,)),
        (aid(1), "retired"),
    ),
    "same_path_new_ids": (
        reg(entry(1)),
        reg(entry(1), entry(2, name="hero", path="assets/hero")),
        reg(entry(1), entry(3, name="hero", path="assets/hero")),
        ("assets/hero", aid(2), aid(3)),
    ),
    "move_onto_a_new_path": (
        reg(entry(1)),
        reg(entry(1, path="assets/spot")),
        reg(entry(1), entry(2, path="assets/spot")),
        ("assets/spot", aid(1), aid(2)),
    ),
}


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_real_conflict_names_it_and_leaves_ours_untouched(
    tmp_path: Path, cli: Cli, case: str
) -> None:
    base, ours, theirs, named = CONFLICTS[case]
    with pytest.raises(ConflictError) as info:
        merge(base, ours, theirs)
    for word in named:
        assert word in str(info.value)

    ours_text = render(ours).replace(b"\n", b"\r\n")  # any bytes: they must stay as they are
    b, o, t = sides(tmp_path, base, ours_text, theirs)
    with pytest.raises(ConflictError):
        api.merge_registry(str(b), str(o), str(t))
    assert o.read_bytes() == ours_text

    result = cli("merge-registry", str(b), str(o), str(t))
    assert result.code == 1
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: registry.json: "), result.err
    for word in named:
        assert word in lines[0]
    assert o.read_bytes() == ours_text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.json", "ours.json", "theirs.json"]


def test_every_conflict_is_listed_at_once(tmp_path: Path) -> None:
    base = reg(entry(1), entry(2))
    ours = reg(entry(1, name="x"), entry(2, path="assets/o"))
    theirs = reg(entry(1, name="y"), entry(2, path="assets/t"))
    with pytest.raises(ConflictError) as info:
        merge(base, ours, theirs)
    assert aid(1) in str(info.value) and aid(2) in str(info.value)


def test_corrupt_side_is_an_error_naming_that_file(tmp_path: Path, cli: Cli) -> None:
    ours_text = render(reg(entry(1)))
    b, o, t = sides(tmp_path, reg(), ours_text, b'{"format": 1, "assets": [')
    with pytest.raises(RegistryError):
        api.merge_registry(str(b), str(o), str(t))
    result = cli("merge-registry", str(b), str(o), str(t))
    assert result.code == 1
    assert result.err.startswith(f"error: {t}:"), result.err
    assert "Traceback" not in result.err
    assert o.read_bytes() == ours_text


def test_cli_needs_three_files(tmp_path: Path, cli: Cli) -> None:
    result = cli("merge-registry", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.code == 2
    assert result.err.startswith("error: ")


# --- real git -----------------------------------------------------------------------------------


class Repo:
    """A git repository in tmp_path with an isolated git config and packer on PATH."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        home.mkdir(parents=True, exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        venv_bin = os.path.dirname(sys.executable)
        self.env = {
            **inherited,
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_SYSTEM": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Packer Test",
            "GIT_AUTHOR_EMAIL": "packer@example.invalid",
            "GIT_COMMITTER_NAME": "Packer Test",
            "GIT_COMMITTER_EMAIL": "packer@example.invalid",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }

    def git(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", *args],
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"git {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def packer(self, *args: str) -> Result:
        return run_packer(*args, cwd=self.root, env=self.env, timeout=TIMEOUT)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def sync(self) -> None:
        result = self.packer("sync")
        assert result.code == 0, result.out + result.err


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A git repository that is a packer workspace with the merge driver installed; one commit."""
    r = Repo(tmp_path / "repo", tmp_path / "home")
    r.root.mkdir()
    r.git("init", "-q", "-b", "main")
    assert r.packer("init", "--name", "game").code == 0
    assert (r.root / ".gitattributes").read_text().splitlines() == [
        "registry.json merge=packer-registry"
    ]
    installed = r.packer("merge-registry", "--install")
    assert installed.code == 0, installed.err
    driver = r.git("config", "merge.packer-registry.driver").stdout.strip()
    assert driver == "packer merge-registry %O %A %B"
    for name in ("one", "two", "three"):
        text_asset(r.root, f"assets/base/{name}", f"base/{name}", f"{name}\n")
    r.sync()
    r.commit("base")
    return r


def test_git_merge_unions_registrations_moves_and_renames(repo: Repo) -> None:
    base_ids = ids_by_name(repo.root)

    repo.git("checkout", "-q", "-b", "a")
    for name in ("a1", "a2", "a3"):
        text_asset(repo.root, f"assets/a/{name}", f"a/{name}")
    asset_json = repo.root / "assets/base/two/asset.json"
    decl = json.loads(asset_json.read_text())
    asset_json.write_text(json.dumps({**decl, "asset_name": "base/two-renamed"}, indent=2))
    repo.sync()
    repo.commit("a: add assets, rename two")
    a_ids = ids_by_name(repo.root)

    repo.git("checkout", "-q", "main")
    repo.git("checkout", "-q", "-b", "b")
    for name in ("b1", "b2", "b3"):
        text_asset(repo.root, f"assets/b/{name}", f"b/{name}")
    moved = repo.packer("mv", "assets/base/one", "assets/elsewhere/one")
    assert moved.code == 0, moved.err
    repo.sync()
    repo.commit("b: add assets, move one")
    b_ids = ids_by_name(repo.root)

    repo.git("checkout", "-q", "a")
    merged = repo.git("merge", "--no-edit", "b", check=False, GIT_TRACE="1")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "packer merge-registry" in merged.stderr, "git did not run the merge driver"
    assert repo.git("status", "--porcelain").stdout == ""

    text = (repo.root / "registry.json").read_bytes()
    assert render(parse(text)) == text
    ids = ids_by_name(repo.root)
    expected = {**b_ids, **a_ids}
    del expected["base/two"]  # renamed on branch a
    assert ids == expected
    assert ids["base/two-renamed"] == base_ids["base/two"]
    assert len(ids) == 3 + 3 + 3
    assert len(set(ids.values())) == len(ids)
    paths = {e["asset_name"]: e["path"] for e in registry_json(repo.root)["assets"]}
    assert paths["base/one"] == "assets/elsewhere/one"
    assert ids["base/one"] == base_ids["base/one"]
    assert ids["base/three"] == base_ids["base/three"]
    assert registry_json(repo.root)["retired"] == []

    status = repo.packer("status")
    assert status.code == 0, status.out + status.err
    assert "in sync: 9 assets registered" in status.out


def test_git_merge_of_two_different_renames_is_a_conflict(repo: Repo) -> None:
    two_id = ids_by_name(repo.root)["base/two"]
    asset_json = repo.root / "assets/base/two/asset.json"
    decl = json.loads(asset_json.read_text())

    for branch in ("a", "b"):
        repo.git("checkout", "-q", "-b", branch, "main")
        asset_json.write_text(json.dumps({**decl, "asset_name": f"base/two-{branch}"}, indent=2))
        repo.sync()
        repo.commit(f"{branch}: rename two")

    repo.git("checkout", "-q", "a")
    ours_before = (repo.root / "registry.json").read_bytes()
    merged = repo.git("merge", "--no-edit", "b", check=False)
    assert merged.returncode != 0
    output = merged.stdout + merged.stderr
    assert "CONFLICT" in output and "registry.json" in output, output
    driver_errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert any(two_id in line for line in driver_errors), output
    unmerged = repo.git("diff", "--name-only", "--diff-filter=U").stdout.split()
    assert "registry.json" in unmerged
    # The driver left OURS as it was; git keeps it as the conflicted file, still a valid registry.
    assert (repo.root / "registry.json").read_bytes() == ours_before

    # Run by hand on git's three stages, the driver names the id and writes nothing.
    stages = {}
    for stage, label in ((1, "base"), (2, "ours"), (3, "theirs")):
        shown = repo.git("show", f":{stage}:registry.json").stdout
        stages[label] = repo.root.parent / f"{label}.json"
        stages[label].write_text(shown)
    again = repo.packer(
        "merge-registry", str(stages["base"]), str(stages["ours"]), str(stages["theirs"])
    )
    assert again.code == 1
    lines = again.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: registry.json: ")
    assert two_id in lines[0] and "base/two-a" in lines[0] and "base/two-b" in lines[0]
    assert stages["ours"].read_bytes() == ours_before
    repo.git("merge", "--abort")


def test_git_merge_of_a_move_and_a_rename_of_the_same_asset(repo: Repo) -> None:
    two_id = ids_by_name(repo.root)["base/two"]

    repo.git("checkout", "-q", "-b", "a", "main")
    asset_json = repo.root / "assets/base/two/asset.json"
    decl = json.loads(asset_json.read_text())
    asset_json.write_text(json.dumps({**decl, "asset_name": "base/two-renamed"}, indent=2))
    repo.sync()
    repo.commit("a: rename two")

    repo.git("checkout", "-q", "-b", "b", "main")
    moved = repo.packer("mv", "assets/base/two", "assets/moved/two")
    assert moved.code == 0, moved.err
    repo.commit("b: move two")

    repo.git("checkout", "-q", "a")
    merged = repo.git("merge", "--no-edit", "b", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    entries = registry_json(repo.root)["assets"]
    two = next(e for e in entries if e["asset_id"] == two_id)
    assert (two["asset_name"], two["path"]) == ("base/two-renamed", "assets/moved/two")
    status = repo.packer("status")
    assert status.code == 0, status.out + status.err
