"""The remote cache's settings: packer.toml's ``[cache]`` table, overridden by the environment,
and the store a ``remote`` URL names.

Each key of ``[cache]`` (``model.CacheSection``) has an environment override that wins:
``PACKER_CACHE_REMOTE`` (empty: no remote), ``PACKER_CACHE_ENDPOINT``, ``PACKER_CACHE_WRITE``
(``1`` or ``0``). ``PACKER_CACHE_KEY`` is the shared secret that signs and verifies entries; it is
never written in packer.toml, which is committed. A URL's scheme picks the backend: ``file://``
the shared folder (``FileStore``), ``s3://BUCKET/PREFIX`` an S3-compatible bucket (``S3Store``,
imported only then: it needs the ``s3`` extra).
Imports: stdlib, packer.model, packer.errors, packer.cache.store, packer.cache.filestore
(packer.cache.s3 lazily).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from packer.cache.filestore import FileStore
from packer.cache.store import RemoteStore
from packer.errors import ConfigError
from packer.model import CACHE_REMOTE_ENV, CACHE_SCHEMES, CacheSection

ENDPOINT_ENV = "PACKER_CACHE_ENDPOINT"
WRITE_ENV = "PACKER_CACHE_WRITE"
KEY_ENV = "PACKER_CACHE_KEY"
CONFIG_FIELD = "packer.toml"

REMOTE_TIMEOUT_S = 5.0
"""A remote's read timeout (its connect timeout is shorter): a hanging remote costs about twice
this (the store retries once) once, then the build goes on without it."""


@dataclass(frozen=True)
class CacheSettings:
    """The remote cache a build uses, once the environment has had its say."""

    remote: str | None
    """The store's URL; None: no remote."""
    endpoint: str | None
    write: bool
    secret: bytes | None
    """``PACKER_CACHE_KEY``: entries are signed with it and only verified ones are used."""
    source: str
    """Where ``remote`` was set (packer.toml or the variable), for error lines."""


def cache_settings(section: CacheSection, environ: Mapping[str, str] = os.environ) -> CacheSettings:
    """``[cache]`` with the environment's overrides applied (an override wins)."""
    remote, source = section.remote, CONFIG_FIELD
    if CACHE_REMOTE_ENV in environ:
        remote, source = environ[CACHE_REMOTE_ENV] or None, CACHE_REMOTE_ENV
        if remote is not None and not remote.startswith(CACHE_SCHEMES):
            raise ConfigError(
                f"{remote!r} is not a remote cache URL (s3://BUCKET/PREFIX or file:///PATH)",
                CACHE_REMOTE_ENV,
            )
    write = section.write
    if WRITE_ENV in environ:
        if environ[WRITE_ENV] not in ("0", "1"):
            raise ConfigError(f"must be 1 or 0, not {environ[WRITE_ENV]!r}", WRITE_ENV)
        write = environ[WRITE_ENV] == "1"
    endpoint = environ.get(ENDPOINT_ENV) or section.endpoint
    secret = environ.get(KEY_ENV, "").encode("utf-8") or None
    return CacheSettings(remote, endpoint, write, secret, source)


def open_store(settings: CacheSettings) -> RemoteStore | None:
    """The store ``settings.remote`` names, or None without a remote. Opening does no I/O: a
    store that is down says so on first use (``RemoteUnavailable``)."""
    url = settings.remote
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not os.path.isabs(path):
            raise ConfigError(
                f"{url!r}: a file:// remote names an absolute folder (file:///PATH)",
                settings.source,
            )
        return FileStore(url, path)
    if not parts.netloc:
        raise ConfigError(
            f"{url!r}: an s3:// remote names a bucket (s3://BUCKET/PREFIX)", settings.source
        )
    try:
        from packer.cache.s3 import S3Store
    except ImportError:  # boto3 is not installed
        raise ConfigError(
            "an s3:// remote needs the s3 extra: pip install 'packer[s3]'", settings.source
        ) from None
    return S3Store(parts.netloc, parts.path.strip("/"), settings.endpoint, REMOTE_TIMEOUT_S)


__all__ = ["CacheSettings", "cache_settings", "open_store"]
