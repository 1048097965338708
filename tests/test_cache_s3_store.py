"""The S3 remote store against a real S3 server (SeaweedFS, tests/seaweed.py).

Each test writes under its own prefix of the session's bucket. Credentials reach the store as
the standard AWS variables, set for one test at a time; a refused signature, a missing bucket,
a closed port and a server that never answers all end as ``RemoteUnavailable`` in bounded time.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import S3Server
from seaweed import closed_port, hanging_endpoint

from packer.cache import s3
from packer.cache.filestore import FileStore
from packer.cache.s3 import S3Store
from packer.cache.store import RemoteStore, RemoteUnavailable

# The real server, on a machine shared by many processes, gets room to answer.
TIMEOUT_S = 10.0
# A remote that is down or hangs: two attempts of FAULT_TIMEOUT_S each and the standard retry
# mode's backoff before the second (up to a second), with room for a loaded machine.
FAULT_TIMEOUT_S = 0.5
BOUND_S = 2 * FAULT_TIMEOUT_S + 2.0


@pytest.fixture
def aws_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    # botocore would otherwise look for credentials in these files and at the cloud metadata
    # address too.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_server


def _store(server: S3Server, prefix: str) -> S3Store:
    return S3Store(server.bucket, prefix, server.endpoint, TIMEOUT_S)


def test_the_store_keeps_the_interface(aws_env: S3Server) -> None:
    store: RemoteStore = _store(aws_env, "interface")
    assert store.url == f"s3://{aws_env.bucket}/interface at {aws_env.endpoint}"


def test_put_then_get_returns_the_bytes(aws_env: S3Server) -> None:
    store = _store(aws_env, "roundtrip")
    data = bytes(range(256)) * 9
    assert store.get("ab/cdef") is None
    assert store.put_if_absent("ab/cdef", data) is True
    assert store.get("ab/cdef") == data
    assert store.put_if_absent("empty", b"") is True
    assert store.get("empty") == b""


def test_a_ranged_read_returns_part_of_an_object(aws_env: S3Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    folder = FileStore(tmp_path.as_uri(), str(tmp_path))  # the file:// store reads the same way
    stores: list[RemoteStore] = [_store(aws_env, "ranges"), folder]
    for store in stores:
        assert store.put_if_absent("bundles/b", data)
        assert store.get_range("bundles/b", 0, 10) == data[:10]
        assert store.get_range("bundles/b", 700, 24) == data[700:724]
        assert store.get_range("bundles/b", 1000, 100) == data[1000:]  # the object ends sooner
        assert store.get_range("bundles/b", len(data), 5) is None  # it ends before the range
        assert store.get_range("bundles/missing", 0, 5) is None


def test_an_existing_object_is_never_replaced(aws_env: S3Server) -> None:
    store = _store(aws_env, "write-once")
    assert store.put_if_absent("entry", b"first bytes") is True
    assert store.put_if_absent("entry", b"other bytes") is False
    assert store.get("entry") == b"first bytes"
    # The refusal is the server's (If-None-Match), not a check this store made first.
    raw = aws_env.client().get_object(Bucket=aws_env.bucket, Key="write-once/entry")
    assert raw["Body"].read() == b"first bytes"


def test_objects_live_under_the_prefix_and_names_list_only_it(aws_env: S3Server) -> None:
    store = _store(aws_env, "listing/a/")
    neighbour = _store(aws_env, "listing/ab")
    written = {f"{i:02x}/entry-{i}" for i in range(7)} | {"top"}
    for name in written:
        assert store.put_if_absent(name, name.encode())
    assert neighbour.put_if_absent("00/other", b"not the store's")
    keys = aws_env.client().list_objects_v2(Bucket=aws_env.bucket, Prefix="listing/a/")
    assert {item["Key"] for item in keys["Contents"]} == {f"listing/a/{n}" for n in written}
    assert set(store.names()) == written
    assert set(store.names("0")) == {n for n in written if n.startswith("0")}
    assert set(neighbour.names()) == {"00/other"}


def test_names_pages_through_a_long_listing(
    aws_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(aws_env, "long-listing")
    written = {f"entry-{i:02d}" for i in range(25)}
    for name in written:
        store.put_if_absent(name, b"x")
    monkeypatch.setattr(s3, "LIST_PAGE_SIZE", 4)  # seven pages, not S3's 1,000 names a page
    assert sorted(store.names()) == sorted(written)


def test_delete_removes_one_object(aws_env: S3Server) -> None:
    store = _store(aws_env, "delete")
    store.put_if_absent("gone", b"1")
    store.put_if_absent("kept", b"2")
    store.delete("gone")
    assert store.get("gone") is None
    assert store.get("kept") == b"2"
    assert set(store.names()) == {"kept"}
    assert store.put_if_absent("gone", b"3") is True


def test_threads_share_one_store(aws_env: S3Server) -> None:
    store = _store(aws_env, "threads")
    names = [f"{i:03d}" for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(lambda n: store.put_if_absent(n, n.encode() * 50), names))
        assert list(pool.map(store.get, names)) == [n.encode() * 50 for n in names]


def test_a_wrong_secret_is_a_remote_failure_naming_the_credentials(
    aws_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-" + aws_env.secret_key)
    store = _store(aws_env, "wrong-secret")
    refused = r"SignatureDoesNotMatch.*AWS_SECRET_ACCESS_KEY"
    for call in (lambda: store.get("x"), lambda: store.put_if_absent("x", b"x")):
        with pytest.raises(RemoteUnavailable, match=refused):
            call()
    with pytest.raises(RemoteUnavailable, match="SignatureDoesNotMatch"):
        list(store.names())


def test_missing_credentials_are_a_remote_failure(
    aws_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(RemoteUnavailable, match="credentials"):
        _store(aws_env, "no-credentials").get("x")


def test_a_missing_bucket_is_a_remote_failure(aws_env: S3Server) -> None:
    store = S3Store("no-such-bucket", "p", aws_env.endpoint, TIMEOUT_S)
    with pytest.raises(RemoteUnavailable, match="NoSuchBucket"):
        store.put_if_absent("x", b"x")
    with pytest.raises(RemoteUnavailable, match="NoSuchBucket"):
        store.get("x")


def test_a_remote_that_is_down_fails_fast(aws_env: S3Server) -> None:
    store = S3Store(aws_env.bucket, "down", f"http://127.0.0.1:{closed_port()}", FAULT_TIMEOUT_S)
    for call in (lambda: store.get("x"), lambda: store.put_if_absent("x", b"x")):
        started = time.monotonic()
        with pytest.raises(RemoteUnavailable, match=r"127\.0\.0\.1"):
            call()
        assert time.monotonic() - started < BOUND_S


def test_a_remote_that_hangs_fails_within_the_timeouts(aws_env: S3Server) -> None:
    with hanging_endpoint() as endpoint:
        store = S3Store(aws_env.bucket, "hangs", endpoint, FAULT_TIMEOUT_S)
        calls = (
            lambda: store.get("x"),
            lambda: store.put_if_absent("x", b"x"),
            lambda: list(store.names()),
        )
        for call in calls:
            started = time.monotonic()
            with pytest.raises(RemoteUnavailable, match=r"(?i)timeout|timed out"):
                call()
            assert time.monotonic() - started < BOUND_S
