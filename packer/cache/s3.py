"""The S3-compatible remote store (``s3://BUCKET/PREFIX``), on boto3 (extra ``packer[s3]``).

Imported only when a remote names ``s3://``: boto3 takes about a third of a second to import,
and no other command needs it. Credentials come from the standard AWS variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``) or the other places
botocore looks, as every S3 tool reads them.

Write-once: ``put_if_absent`` is one PutObject with ``If-None-Match: *``, which S3 and SeaweedFS
refuse with 412 (or 409 for two writes racing) when the name exists. A server that answers the
header with "not implemented" gets a HEAD before each write instead; two machines writing the
same name between the HEAD and the PUT may then both write, which is harmless because a name is
an output key and both write the same verified entry. A PutObject is atomic on S3: readers see
the old state or the whole new object, never a part, and Content-MD5 makes the server refuse a
body damaged on the way.

Bounded time: every request has a connect and a read timeout and one retry; what still fails
(refused or dropped connection, timeout, 5xx, a refused signature or a missing bucket) raises
``RemoteUnavailable`` with one line saying why, so a build warns once and goes on locally.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.handlers import add_expect_header

from packer.cache.store import RemoteUnavailable

# Small transfers run concurrently from a pool of threads; one connection each avoids waiting
# for a free connection (urllib3 would otherwise open and drop extra ones).
MAX_CONNECTIONS = 32
# Names a ListObjectsV2 request asks for (S3's own maximum).
LIST_PAGE_SIZE = 1000
# A connection that takes longer than this to open is a remote that is down (a shorter
# ``timeout_s`` wins).
CONNECT_TIMEOUT_S = 2.0
# botocore needs a region to sign; an S3-compatible server at an explicit endpoint ignores it.
DEFAULT_REGION = "us-east-1"

_ABSENT = frozenset({"NoSuchKey", "404", "NotFound"})
# A range that starts past the object's end: no bytes there, as for an object that is not there.
_PAST_END = frozenset({"InvalidRange", "416"})
_EXISTS = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_UNSUPPORTED = frozenset({"NotImplemented", "501"})
_CREDENTIALS = frozenset(
    {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken", "403"}
)


def _code(err: ClientError) -> str:
    code: Any = err.response.get("Error", {}).get("Code", "")
    return str(code)


class S3Store:
    """Objects under ``PREFIX/`` in one bucket of an S3-compatible object store."""

    def __init__(self, bucket: str, prefix: str, endpoint: str | None, timeout_s: float) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._endpoint = endpoint
        self._timeout_s = timeout_s
        # One session and one client for the store's life: a client is safe to share between
        # threads, a session is not, and making either costs tens of milliseconds.
        session = boto3.session.Session()
        config = Config(
            connect_timeout=min(CONNECT_TIMEOUT_S, timeout_s),
            read_timeout=timeout_s,
            retries={"total_max_attempts": 2, "mode": "standard"},  # one retry
            max_pool_connections=MAX_CONNECTIONS,
            # Content-MD5 is the body's checksum; the newer default trailing checksums are not
            # understood by every S3-compatible server.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # Servers at an explicit endpoint (SeaweedFS, MinIO, a NAS) want path-style URLs.
            s3={"addressing_style": "path"} if endpoint else {},
        )
        self._client: Any = session.client(
            "s3",
            endpoint_url=endpoint,
            region_name=session.region_name or DEFAULT_REGION,
            config=config,
        )
        # botocore asks for "100 Continue" before any PutObject body: a round trip per upload
        # for bodies that fit in a packet or two, and one more timeout when the server hangs.
        self._client.meta.events.unregister("before-call.s3", add_expect_header)
        self._head_before_put = False

    @property
    def url(self) -> str:
        where = f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"
        return f"{where} at {self._endpoint}" if self._endpoint else where

    def _key(self, name: str) -> str:
        return f"{self._prefix}/{name}" if self._prefix else name

    def _unavailable(self, err: Exception) -> RemoteUnavailable:
        if isinstance(err, ClientError):
            code = _code(err)
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            why = f"{code} (HTTP {status})" if code != str(status) else f"HTTP {status}"
            if code in _CREDENTIALS:
                why += ": check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            return RemoteUnavailable(f"{self.url}: {why}")
        if isinstance(err, ReadTimeoutError | ConnectTimeoutError):
            why = f"no answer within {self._timeout_s:g} s (timeout, after one retry)"
        elif isinstance(err, EndpointConnectionError):
            why = "could not connect"
        elif isinstance(err, NoCredentialsError):
            why = "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        else:
            why = str(err)
        return RemoteUnavailable(f"{self.url}: {why}")

    def _get(self, name: str, **options: str) -> bytes | None:
        try:
            reply = self._client.get_object(Bucket=self._bucket, Key=self._key(name), **options)
            data: bytes = reply["Body"].read()
        except ClientError as err:
            if _code(err) in _ABSENT or (options and _code(err) in _PAST_END):
                return None
            raise self._unavailable(err) from err
        except BotoCoreError as err:
            raise self._unavailable(err) from err
        return data

    def get(self, name: str) -> bytes | None:
        return self._get(name)

    def get_range(self, name: str, start: int, size: int) -> bytes | None:
        if size <= 0:
            return b""
        return self._get(name, Range=f"bytes={start}-{start + size - 1}")

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as err:
            if _code(err) in _ABSENT:
                return False
            raise
        return True

    def put_if_absent(self, name: str, data: bytes) -> bool:
        key = self._key(name)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            if not self._head_before_put:
                try:
                    self._client.put_object(
                        Bucket=self._bucket, Key=key, Body=data, ContentMD5=md5, IfNoneMatch="*"
                    )
                    return True
                except ClientError as err:
                    if _code(err) not in _UNSUPPORTED:
                        raise
                    # No conditional writes on this server: check, then write, from now on.
                    self._head_before_put = True
            if self._exists(key):
                return False
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentMD5=md5)
            return True
        except ClientError as err:
            if _code(err) in _EXISTS:
                return False
            raise self._unavailable(err) from err
        except BotoCoreError as err:
            raise self._unavailable(err) from err

    def names(self, prefix: str = "") -> Iterator[str]:
        base = f"{self._prefix}/" if self._prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket,
            Prefix=base + prefix,
            PaginationConfig={"PageSize": LIST_PAGE_SIZE},
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    key: str = item["Key"]
                    yield key[len(base) :]
        except (ClientError, BotoCoreError) as err:
            raise self._unavailable(err) from err

    def delete(self, name: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._key(name))
        except (ClientError, BotoCoreError) as err:
            raise self._unavailable(err) from err
