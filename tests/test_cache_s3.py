"""The shared cache on its S3 backend: real ``packer build`` processes and a real S3 server
(SeaweedFS, tests/seaweed.py) that checks every request's signature.

Each test writes under a prefix of its own in the session's bucket. The processes get the AWS
variables in their environment; this process never does. Objects are damaged with a plain
boto3 client, as anyone with write access to the bucket could.
"""

from __future__ import annotations

import json
import secrets
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import S3Server, pack_bytes, run_packer
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
from seaweed import closed_port, hanging_endpoint

from packer.cache.bundle import bundle_name

Template = tuple[Path, tuple[bytes, bytes]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return cache_template(tmp_path_factory)


@pytest.fixture
def prefix() -> str:
    return f"e2e-{secrets.token_hex(4)}"


def s3_env(
    server: S3Server, prefix: str, *, write: bool, endpoint: str | None = None
) -> dict[str, str]:
    return {
        **server.env(),
        "PACKER_CACHE_REMOTE": f"s3://{server.bucket}/{prefix}",
        "PACKER_CACHE_ENDPOINT": endpoint or server.endpoint,
        "PACKER_CACHE_WRITE": "1" if write else "0",
    }


def objects(server: S3Server, prefix: str) -> dict[str, bytes]:
    """Every object under the prefix: name below it -> bytes."""
    client = server.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=server.bucket, Prefix=f"{prefix}/"
    ):
        for item in page.get("Contents", ()):
            body = client.get_object(Bucket=server.bucket, Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix) + 1 :]] = body
    return found


def warm_remote(
    server: S3Server, template: Path, tmp_path: Path, prefix: str, env: dict[str, str] | None = None
) -> Path:
    """Fill the prefix with one clone's clean build (write on); returns that clone."""
    writer = fresh_clone(template, tmp_path / "writer")
    summary = build_json(writer, env={**s3_env(server, prefix, write=True), **(env or {})})
    assert summary["processed"] == ASSETS and summary["uploaded"] == ASSETS
    assert warnings(summary) == []
    # A few small outputs: one bundle and its index hold them all.
    stored = objects(server, prefix)
    assert len(stored) == 2 and entry_count(stored) == ASSETS
    return writer


def test_a_warm_remote_serves_a_fresh_clone_without_running_a_kind(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, reference = template
    warm_remote(s3_server, source, tmp_path, prefix)
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env=s3_env(s3_server, prefix, write=False))
    assert summary["ok"] is True
    assert summary["processed"] == 0
    assert summary["cache_remote"] == ASSETS
    assert summary["uploaded"] == 0
    assert warnings(summary) == []
    assert pack_bytes(clone) == reference


def test_cache_table_in_packer_toml_reads_and_writes(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, reference = template

    def configured(folder: str, write: bool) -> Path:
        root = fresh_clone(source, tmp_path / folder)
        with (root / "packer.toml").open("a", encoding="utf-8") as toml:
            toml.write(
                f'\n[cache]\nremote = "s3://{s3_server.bucket}/{prefix}"\n'
                f'endpoint = "{s3_server.endpoint}"\nwrite = {str(write).lower()}\n'
            )
        return root

    writer = configured("writer", True)
    first = build_json(writer, env=s3_server.env())
    assert first["processed"] == ASSETS and first["uploaded"] == ASSETS
    reader = configured("reader", False)
    second = build_json(reader, env=s3_server.env())
    assert second["processed"] == 0 and second["cache_remote"] == ASSETS
    assert warnings(first) == warnings(second) == []
    assert pack_bytes(writer) == pack_bytes(reader) == reference


def test_corrupt_and_truncated_objects_are_never_used(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, reference = template
    writer = warm_remote(s3_server, source, tmp_path, prefix, SECRET)
    places = entry_places(objects(s3_server, prefix))
    (flipped,) = places[output_key(writer, "text/t5")]
    last = max((found[0] for found in places.values()), key=lambda place: place.offset)
    (last_name,) = (n for n in asset_ids(writer) if places[output_key(writer, n)] == [last])
    # A flipped bit in one entry and a bundle cut short in its last one, as anyone with write
    # access to the bucket could leave them: both refused (with what depends on them).
    client = s3_server.client()
    bundle = f"{prefix}/{bundle_name(last.bundle)}"
    data = client.get_object(Bucket=s3_server.bucket, Key=bundle)["Body"].read()
    data = damaged(damaged(data, flipped, truncated=False), last, truncated=True)
    client.put_object(Bucket=s3_server.bucket, Key=bundle, Body=data)
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env={**s3_env(s3_server, prefix, write=False), **SECRET})
    rebuilt = downstream("text/t5") | downstream(last_name)
    assert summary["processed"] == len(rebuilt)
    assert summary["cache_remote"] == ASSETS - len(rebuilt)
    (line,) = warnings(summary)
    assert "2 entries failed verification" in line
    assert pack_bytes(clone) == reference


def test_unsigned_entries_are_never_used_with_a_key(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, reference = template
    warm_remote(s3_server, source, tmp_path, prefix)
    clone = fresh_clone(source, tmp_path / "clone")
    summary = build_json(clone, env={**s3_env(s3_server, prefix, write=False), **SECRET})
    assert summary["processed"] == ASSETS and summary["cache_remote"] == 0
    assert len(warnings(summary)) == 1
    assert pack_bytes(clone) == reference


def test_an_existing_object_is_never_replaced(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, reference = template
    warm_remote(s3_server, source, tmp_path, prefix)
    before = objects(s3_server, prefix)
    # A second writer whose entries differ (signed) and who cannot use the unsigned ones: its
    # kinds run and it uploads its own entries, in a bundle of its own, beside the others.
    second = fresh_clone(source, tmp_path / "second")
    summary = build_json(second, env={**s3_env(s3_server, prefix, write=True), **SECRET})
    assert summary["processed"] == ASSETS and summary["uploaded"] == ASSETS
    after = objects(s3_server, prefix)
    assert {name: after[name] for name in before} == before
    assert entry_count(after) == 2 * ASSETS
    assert pack_bytes(second) == reference
    # A reader with the key finds each output twice: the unsigned entry is refused, the signed
    # one used, whichever it tries first.
    reader = fresh_clone(source, tmp_path / "reader")
    signed = build_json(reader, env={**s3_env(s3_server, prefix, write=False), **SECRET})
    assert signed["processed"] == 0 and signed["cache_remote"] == ASSETS
    assert len(warnings(signed)) <= 1
    assert pack_bytes(reader) == reference


@pytest.mark.parametrize("state", ["down", "hanging"])
def test_a_remote_that_is_down_or_hangs_costs_one_warning(
    s3_server: S3Server,
    template: Template,
    tmp_path: Path,
    prefix: str,
    state: str,
) -> None:
    source, reference = template
    clone = fresh_clone(source, tmp_path / "clone")
    with ExitStack() as stack:
        endpoint = (
            f"http://127.0.0.1:{closed_port()}"
            if state == "down"
            else stack.enter_context(hanging_endpoint())
        )
        env = s3_env(s3_server, prefix, write=True, endpoint=endpoint)
        # The timeout bounds the build: a hanging remote costs its timeouts once, not per asset.
        summary = build_json(clone, env=env, timeout=60)
    assert summary["processed"] == ASSETS
    assert summary["cache_remote"] == 0 and summary["uploaded"] == 0
    (line,) = warnings(summary)
    assert "remote cache unavailable" in line
    assert pack_bytes(clone) == reference


def test_a_wrong_secret_costs_one_warning_naming_the_credentials(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, reference = template
    clone = fresh_clone(source, tmp_path / "clone")
    env = {**s3_env(s3_server, prefix, write=True), "AWS_SECRET_ACCESS_KEY": "wrong"}
    summary = build_json(clone, env=env)
    assert summary["processed"] == ASSETS and summary["uploaded"] == 0
    (line,) = warnings(summary)
    assert "SignatureDoesNotMatch" in line and "AWS_SECRET_ACCESS_KEY" in line
    assert pack_bytes(clone) == reference
    assert objects(s3_server, prefix) == {}


def test_three_shards_and_an_assembler_equal_one_machine(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, reference = template
    processed = 0
    for k in (1, 2, 3):
        shard = fresh_clone(source, tmp_path / f"shard{k}")
        summary = build_json(shard, "--shard", f"{k}/3", env=s3_env(s3_server, prefix, write=True))
        assert summary["pack"] is None
        assert not (shard / "build" / "game.pack").exists()
        processed += summary["processed"]
    assert processed == ASSETS  # each asset's kind ran exactly once across the shards
    assert entry_count(objects(s3_server, prefix)) == ASSETS
    assembler = fresh_clone(source, tmp_path / "assembler")
    summary = build_json(assembler, env=s3_env(s3_server, prefix, write=False))
    assert summary["processed"] == 0 and summary["cache_remote"] == ASSETS
    assert pack_bytes(assembler) == reference


def test_prune_deletes_only_the_stale_objects(
    s3_server: S3Server, template: Template, tmp_path: Path, prefix: str
) -> None:
    source, _ = template
    warm_remote(s3_server, source, tmp_path, prefix)
    # A later commit changes one leaf asset: its new output is uploaded beside the old one.
    edited = fresh_clone(source, tmp_path / "edited")
    (edited / "assets" / "t5" / "data.txt").write_text("line five, edited\n", encoding="utf-8")
    write = s3_env(s3_server, prefix, write=True)
    assert build_json(edited, env=write)["uploaded"] == 1
    before = objects(s3_server, prefix)
    (edited_place,) = entry_places(before)[output_key(edited, "text/t5")]
    done = run_packer("cache", "prune", "--json", cwd=edited, env=write)
    assert done.code == 0, done.err
    pruned = json.loads(done.out)
    # The first build's bundle and index go; its other entries are copied into a new bundle.
    assert set(pruned["deleted"]) == {n for n in before if edited_place.bundle not in n}
    assert pruned["copied"] == ASSETS - 1
    after = objects(s3_server, prefix)
    assert len(after) == 4 and entry_count(after) == ASSETS
    clone = fresh_clone(edited, tmp_path / "clone")
    summary = build_json(clone, env=s3_env(s3_server, prefix, write=False))
    assert summary["processed"] == 0 and summary["cache_remote"] == ASSETS
    assert pack_bytes(clone) == pack_bytes(edited)
    neighbour = f"{prefix}-neighbour"  # a prefix that starts like this one is not under it
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{neighbour}/00/x", Body=b"x")
    assert run_packer("cache", "prune", cwd=edited, env=write).code == 0
    assert set(objects(s3_server, neighbour)) == {"00/x"}
