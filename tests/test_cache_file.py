"""The shared cache on its ``file://`` backend: real folders, real ``packer build`` processes.

The workspace, fresh clones and ``packer build --json`` runs are tests/remote_cache.py's, shared
with the S3 backend's tests (tests/test_cache_s3.py). Every build here is checked against the
pack and manifest of a one-machine build with no remote at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pack_bytes, run_doit, run_packer, text_asset
from remote_cache import (
    ASSETS,
    SECRET,
    asset_ids,
    build_json,
    cache_template,
    damaged,
    downstream,
    entry_count,
    entry_places,
    fresh_clone,
    output_key,
    warnings,
)

from packer.cache.bundle import INDEX_PREFIX, bundle_name


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[bytes, bytes]]:
    return cache_template(tmp_path_factory)


def remote_env(remote: Path, *, write: bool) -> dict[str, str]:
    return {"PACKER_CACHE_REMOTE": remote.as_uri(), "PACKER_CACHE_WRITE": "1" if write else "0"}


def objects(remote: Path) -> dict[str, bytes]:
    """Every object of a file:// remote: name -> bytes."""
    return {
        path.relative_to(remote).as_posix(): path.read_bytes()
        for path in remote.rglob("*")
        if path.is_file()
    }


def inodes(remote: Path) -> dict[str, int]:
    """Every object of a file:// remote: name -> its file's inode (a replaced file has another)."""
    return {
        path.relative_to(remote).as_posix(): path.stat().st_ino
        for path in remote.rglob("*")
        if path.is_file()
    }


def warm_remote(
    template: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """A remote filled by one clone's clean build (with write on); returns it and that clone."""
    remote = tmp_path / "remote"
    remote.mkdir(parents=True)
    writer = fresh_clone(template, tmp_path / "writer")
    summary = build_json(writer, env={**remote_env(remote, write=True), **(env or {})})
    assert summary["processed"] == ASSETS and summary["uploaded"] == ASSETS
    # A few small outputs: one bundle and its index hold them all.
    stored = objects(remote)
    assert len(stored) == 2 and entry_count(stored) == ASSETS
    return remote, writer


def test_a_warm_remote_serves_a_fresh_clone_without_running_a_kind(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    remote, _ = warm_remote(source, tmp_path)
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env=remote_env(remote, write=False))
    assert summary["ok"] is True and summary["pack"] is not None
    assert summary["processed"] == 0
    assert summary["cache_remote"] == ASSETS
    assert summary["uploaded"] == 0
    assert warnings(summary) == []
    assert pack_bytes(clone) == reference
    # Each fetched output is one file with two names, as a build leaves it: its artifact and its
    # output cache entry.
    artifacts = {p.stat().st_ino for p in (clone / "build" / "assets").glob("*.bin")}
    entries = {p.stat().st_ino for p in (clone / ".packer" / "cache").rglob("*") if p.is_file()}
    assert len(artifacts) == ASSETS and artifacts == entries
    # Fetched outputs are recorded as built: plain doit (no remote) finds everything up to date.
    again_doit = run_doit(clone)
    assert again_doit.code == 0 and again_doit.executed == ()
    # The human summary counts them too.
    again = fresh_clone(source, tmp_path / "again")
    done = run_packer("build", cwd=again, env=remote_env(remote, write=False))
    assert f"from remote cache {ASSETS}" in done.out.splitlines()[-1]
    # doit's worker processes find what the build fetched before it started them.
    parallel = fresh_clone(source, tmp_path / "parallel")
    summary = build_json(parallel, "-n", "2", env=remote_env(remote, write=False))
    assert summary["processed"] == 0 and summary["cache_remote"] == ASSETS
    assert pack_bytes(parallel) == reference


def test_cache_table_in_packer_toml_reads_and_writes(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    remote = tmp_path / "remote"
    remote.mkdir()

    def configured(folder: str, write: bool) -> Path:
        root = fresh_clone(source, tmp_path / folder)
        with (root / "packer.toml").open("a", encoding="utf-8") as toml:
            toml.write(f'\n[cache]\nremote = "{remote.as_uri()}"\nwrite = {str(write).lower()}\n')
        return root

    writer = configured("writer", True)
    first = build_json(writer)
    assert first["processed"] == ASSETS and first["uploaded"] == ASSETS
    reader = configured("reader", False)
    second = build_json(reader)
    assert second["processed"] == 0 and second["cache_remote"] == ASSETS
    assert pack_bytes(writer) == pack_bytes(reader) == reference
    # The environment wins over the table: an empty PACKER_CACHE_REMOTE means no remote.
    local = configured("local", False)
    alone = build_json(local, env={"PACKER_CACHE_REMOTE": ""})
    assert alone["processed"] == ASSETS and alone["cache_remote"] == 0
    assert pack_bytes(local) == reference


def test_bad_settings_are_one_error_line(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, _ = template
    clone = fresh_clone(source, tmp_path / "clone")
    env = {"PACKER_CACHE_REMOTE": tmp_path.as_uri(), "PACKER_CACHE_WRITE": "yes"}
    bad_write = run_packer("build", cwd=clone, env=env)
    assert bad_write.code == 1
    assert bad_write.err == "error: PACKER_CACHE_WRITE: must be 1 or 0, not 'yes'\n"
    bad_url = run_packer("build", cwd=clone, env={"PACKER_CACHE_REMOTE": "http://x/y"})
    assert bad_url.code == 1
    assert bad_url.err.startswith("error: PACKER_CACHE_REMOTE: 'http://x/y' is not a remote")
    with (clone / "packer.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[cache]\nremote = "ftp://nas/cache"\n')
    in_toml = run_packer("build", cwd=clone)
    assert in_toml.code == 1
    assert in_toml.err.startswith("error: packer.toml: cache.remote: ")
    assert not (clone / "build").exists()


def test_corrupt_and_truncated_entries_are_never_used(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    remote, writer = warm_remote(source, tmp_path, SECRET)
    places = entry_places(objects(remote))
    (flipped,) = places[output_key(writer, "text/t5")]
    last = max((found[0] for found in places.values()), key=lambda place: place.offset)
    (last_name,) = (n for n in asset_ids(writer) if places[output_key(writer, n)] == [last])
    bundle = remote / bundle_name(last.bundle)
    # A flipped bit in one entry and a bundle cut short in its last one: both refused (with
    # what depends on them), the other entries still used.
    data = damaged(bundle.read_bytes(), flipped, truncated=False)
    bundle.write_bytes(damaged(data, last, truncated=True))
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env={**remote_env(remote, write=False), **SECRET})
    rebuilt = downstream("text/t5") | downstream(last_name)
    assert summary["processed"] == len(rebuilt)
    assert summary["cache_remote"] == ASSETS - len(rebuilt)
    (line,) = warnings(summary)
    assert "2 entries failed verification" in line
    assert pack_bytes(clone) == reference


def test_a_corrupt_index_or_a_fifo_for_a_bundle_is_never_used(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    remote, _ = warm_remote(source, tmp_path)
    (index,) = (remote / INDEX_PREFIX).iterdir()
    data = bytearray(index.read_bytes())
    data[-1] ^= 0x01
    index.write_bytes(bytes(data))
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env=remote_env(remote, write=False))
    assert summary["processed"] == ASSETS and summary["cache_remote"] == 0
    (line,) = warnings(summary)
    assert "1 index failed verification" in line
    assert pack_bytes(clone) == reference
    # A FIFO under a bundle's name is read as no bundle, and never waited on.
    fifo_remote, _ = warm_remote(source, tmp_path / "fifo")
    (bundle,) = (fifo_remote / "bundles").iterdir()
    bundle.unlink()
    os.mkfifo(bundle)
    other = fresh_clone(source, tmp_path / "other")
    summary = build_json(other, env=remote_env(fifo_remote, write=False))
    assert summary["processed"] == ASSETS and warnings(summary) == []
    assert pack_bytes(other) == reference


def test_unsigned_or_foreign_entries_are_never_used_with_a_key(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    unsigned, _ = warm_remote(source, tmp_path / "unsigned")
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env={**remote_env(unsigned, write=False), **SECRET})
    assert summary["processed"] == ASSETS and summary["cache_remote"] == 0
    assert len(warnings(summary)) == 1
    assert pack_bytes(clone) == reference
    # Entries signed with another secret (a pull request's own) fail like unsigned ones.
    foreign, _ = warm_remote(source, tmp_path / "foreign", {"PACKER_CACHE_KEY": "pull-request"})
    other = fresh_clone(source, tmp_path / "other")
    signed_elsewhere = build_json(other, env={**remote_env(foreign, write=False), **SECRET})
    assert signed_elsewhere["processed"] == ASSETS
    assert len(warnings(signed_elsewhere)) == 1
    assert pack_bytes(other) == reference


def test_an_existing_entry_is_never_replaced(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    remote, _ = warm_remote(source, tmp_path)
    before, before_inodes = objects(remote), inodes(remote)
    # A second writer whose entries differ (signed) and who cannot use the unsigned ones: its
    # kinds run and it uploads its own entries, in a bundle of its own, beside the others.
    second = fresh_clone(source, tmp_path / "second")
    summary = build_json(second, env={**remote_env(remote, write=True), **SECRET})
    assert summary["processed"] == ASSETS and summary["uploaded"] == ASSETS
    after = objects(remote)
    assert {name: after[name] for name in before} == before
    assert {name: inodes(remote)[name] for name in before} == before_inodes
    assert entry_count(after) == 2 * ASSETS
    assert pack_bytes(second) == reference
    # A reader with the key finds each output twice: the unsigned entry is refused, the signed
    # one used, whichever it tries first.
    reader = fresh_clone(source, tmp_path / "reader")
    signed = build_json(reader, env={**remote_env(remote, write=False), **SECRET})
    assert signed["processed"] == 0 and signed["cache_remote"] == ASSETS
    assert len(warnings(signed)) <= 1
    assert pack_bytes(reader) == reference


@pytest.mark.parametrize("kind", ["missing", "a file", "a FIFO"])
def test_a_remote_that_is_down_costs_one_warning(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path, kind: str
) -> None:
    source, reference = template
    remote = tmp_path / "remote"
    if kind == "a file":
        remote.write_bytes(b"not a folder")
    elif kind == "a FIFO":
        os.mkfifo(remote)
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env=remote_env(remote, write=True))
    assert summary["processed"] == ASSETS
    assert summary["uploaded"] == 0
    (line,) = warnings(summary)
    assert "remote cache unavailable" in line
    assert pack_bytes(clone) == reference


def test_three_shards_and_an_assembler_equal_one_machine(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    remote = tmp_path / "remote"
    remote.mkdir()
    processed = 0
    for k in (1, 2, 3):
        shard = fresh_clone(source, tmp_path / f"shard{k}")
        summary = build_json(shard, "--shard", f"{k}/3", env=remote_env(remote, write=True))
        assert summary["pack"] is None
        assert not (shard / "build" / "game.pack").exists()
        processed += summary["processed"]
    assert processed == ASSETS  # each asset's kind ran exactly once across the shards
    assert entry_count(objects(remote)) == ASSETS
    assembler = fresh_clone(source, tmp_path / "assembler")
    summary = build_json(assembler, env=remote_env(remote, write=False))
    assert summary["processed"] == 0 and summary["cache_remote"] == ASSETS
    assert pack_bytes(assembler) == reference


@pytest.mark.parametrize("shard", ["0/3", "4/3", "x/y", "1/0", "3"])
def test_a_bad_shard_is_a_usage_error(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path, shard: str
) -> None:
    source, _ = template
    clone = fresh_clone(source, tmp_path / "clone")
    env = remote_env(tmp_path, write=True)
    done = run_packer("build", "--json", "--shard", shard, cwd=clone, env=env)
    assert done.code == 2
    assert done.err.startswith("error: --shard ")
    failure = json.loads(done.out.splitlines()[-1])  # --json: the last line is the object
    assert failure["ok"] is False and failure["errors"][0]["message"].startswith("--shard ")
    assert not (clone / "build").exists()


def test_a_shard_needs_a_remote_it_can_write(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, _ = template
    clone = fresh_clone(source, tmp_path / "clone")
    done = run_packer("build", "--shard", "1/2", cwd=clone, env=remote_env(tmp_path, write=False))
    assert done.code == 2
    assert "needs a remote cache with write on" in done.err
    no_remote = run_packer("build", "--shard", "1/2", cwd=clone)
    assert no_remote.code == 2
    assert not (clone / "build").exists()


def test_prune_keeps_exactly_what_the_current_assets_need(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, _ = template
    remote, _ = warm_remote(source, tmp_path)
    # A later commit changes one leaf asset: its new output is uploaded beside the old one.
    edited = fresh_clone(source, tmp_path / "edited")
    (edited / "assets" / "t5" / "data.txt").write_text("line five, edited\n", encoding="utf-8")
    write = remote_env(remote, write=True)
    assert build_json(edited, env=write)["uploaded"] == 1
    before = objects(remote)
    assert len(before) == 4  # two bundles, each with its index
    (edited_place,) = entry_places(before)[output_key(edited, "text/t5")]
    stale = {name for name in before if edited_place.bundle not in name}
    assert len(stale) == 2  # the first build's bundle and index, which hold the old t5

    dry = run_packer("cache", "prune", "--dry-run", "--json", cwd=edited, env=write)
    assert dry.code == 0, dry.err
    listed = json.loads(dry.out)
    assert listed["dry_run"] is True and listed["kept"] == 4
    assert set(listed["deleted"]) == stale
    assert listed["copied"] == ASSETS - 1  # the needed entries of the stale bundle
    assert objects(remote) == before  # a dry run deletes and writes nothing

    done = run_packer("cache", "prune", cwd=edited, env=write)
    assert done.code == 0, done.err
    assert done.out.splitlines()[-1].endswith(
        f"deleted 2 objects, kept 4, copied {ASSETS - 1} entries into new bundles"
    )
    after = objects(remote)
    assert len(after) == 4 and not stale & set(after)
    assert entry_count(after) == ASSETS  # one entry for each current output, none stale
    # What is left serves the edited content completely.
    clone = fresh_clone(edited, tmp_path / "clone")
    summary = build_json(clone, env=remote_env(remote, write=False))
    assert summary["processed"] == 0 and summary["cache_remote"] == ASSETS
    assert pack_bytes(clone) == pack_bytes(edited)


def test_prune_deletes_nothing_when_it_cannot_tell_what_is_needed(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, _ = template
    remote, _ = warm_remote(source, tmp_path)
    before = objects(remote)
    # Content that nobody built: no cache holds its output, so its key stays unknown.
    fresh = fresh_clone(source, tmp_path / "fresh")
    (fresh / "assets" / "t0" / "data.txt").write_text("never built\n", encoding="utf-8")
    unknown = run_packer("cache", "prune", cwd=fresh, env=remote_env(remote, write=True))
    assert unknown.code == 1
    assert "cannot tell which entries" in unknown.err and "nothing pruned" in unknown.err
    down = run_packer("cache", "prune", cwd=fresh, env=remote_env(tmp_path / "gone", write=True))
    assert down.code == 1
    assert down.err.count("\n") == 1 and "remote cache unavailable" in down.err
    no_remote = run_packer("cache", "prune", cwd=fresh)
    assert no_remote.code == 1 and "no remote cache to prune" in no_remote.err
    assert objects(remote) == before


def test_a_build_without_a_remote_never_imports_the_cache(
    template: tuple[Path, tuple[bytes, bytes]], tmp_path: Path
) -> None:
    source, reference = template
    clone = fresh_clone(source, tmp_path / "clone")
    script = (
        "import sys\n"
        "from packer.cli import main\n"
        "code = main(['build'])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('packer.cache'))\n"
        "print('cache modules:', loaded)\n"
        "raise SystemExit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=clone,
        env={k: v for k, v in os.environ.items() if not k.startswith("PACKER_CACHE")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "cache modules: []"
    assert pack_bytes(clone) == reference


def test_assets_with_equal_outputs_share_one_entry(tmp_path: Path) -> None:
    source = tmp_path / "source"
    assert run_packer("init", str(source), "--name", "game").code == 0
    for name in ("twin/a", "twin/b", "twin/c"):
        text_asset(source, f"assets/{name}", name, "the same bytes\n")
    assert run_packer("sync", cwd=source).code == 0
    remote = tmp_path / "remote"
    remote.mkdir()
    writer = fresh_clone(source, tmp_path / "writer")
    first = build_json(writer, env=remote_env(remote, write=True))
    # One output key: the kind runs once, the local cache serves the twins, one entry.
    assert (first["processed"], first["cache_local"], first["uploaded"]) == (1, 2, 1)
    assert entry_count(objects(remote)) == 1
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env=remote_env(remote, write=False))
    assert summary["processed"] == 0 and summary["cache_remote"] == 3
    assert pack_bytes(clone) == pack_bytes(writer)
