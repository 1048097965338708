"""Building one asset: read its inputs, check them against the snapshot, run its kind, store.

Outputs are kept in ``<state>/cache/`` under the task's output key (kind, version, params,
input names and hashes, deps' output bytes; never path or name) and copied to the asset's
artifact ``<out>/assets/<asset_id>.bin``. So a moved or renamed asset, or a branch switched
back, reuses bytes without running its kind. The cache is never an authority: each entry
carries the checksum of its bytes and one that does not match is ignored and rebuilt; the
artifact is a copy, not a link, so editing an artifact cannot reach the cache; and without the
cache the kind runs again and writes the same bytes.
Imports: stdlib, pydantic, xxhash, packer.kinds, packer.plan, packer.hashing, packer.fsutil,
packer.errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import xxhash
from pydantic import ValidationError

from packer.errors import InputError, KindError, PackerError
from packer.fsutil import atomic_write
from packer.hashing import hash_bytes
from packer.kinds.base import Kind, KindContext
from packer.kinds.registry import get_kind, load_kinds
from packer.plan import with_dep_outputs


@dataclass(frozen=True)
class AssetJob:
    """What the action of one ``asset:<id>`` task needs; plain data, so it pickles for ``-n N``."""

    root: str
    asset_file: str
    """Workspace-relative path of the asset.json, for error messages."""
    kind: str
    params_json: str
    input_names: tuple[str, ...]
    inputs: tuple[str, ...]
    """Workspace-relative paths."""
    input_hashes: tuple[str, ...]
    """What the snapshot saw; a different content now means "changed during build"."""
    deps: tuple[tuple[str, str], ...]
    """(asset_name, artifact path) of each dep."""
    output_key: str
    """The plan's output key; the deps' output bytes are folded in before the cache lookup."""
    cache_dir: str
    artifact: str


_DIGEST_SIZE = 16  # xxh3_128 of the bytes, stored ahead of them in each cache entry


@cache
def _kinds_of_this_process() -> dict[str, Kind]:
    # Kinds are code: loading entry points once per worker process is enough, and spares a
    # metadata scan per asset in a clean build.
    return dict(load_kinds())


def cache_path(cache_dir: str, output_key: str) -> str:
    return os.path.join(cache_dir, output_key[:2], output_key)


def _cache_get(path: str) -> bytes | None:
    """The cached output at ``path`` if present and intact (its checksum matches), else None."""
    try:
        with open(path, "rb") as handle:
            stored = handle.read()
    except OSError:
        return None
    data = stored[_DIGEST_SIZE:]
    return data if stored[:_DIGEST_SIZE] == xxhash.xxh3_128_digest(data) else None


def _cache_put(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, xxhash.xxh3_128_digest(data) + data, durable=False)


def read_checked_input(root: str, rel: str, expected: str) -> bytes:
    """An input's bytes, refused if they are not the bytes the snapshot hashed."""
    try:
        with open(os.path.join(root, rel), "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise InputError(f"cannot read input during build: {err.strerror}", rel) from None
    if hash_bytes(data) != expected:
        raise InputError("changed during build (its content differs from the snapshot)", rel)
    return data


def build_asset(job: AssetJob) -> bool:
    """Produce the asset's artifact. Returns True when the kind ran, False on a cache hit."""
    deps: dict[str, bytes] = {}
    for name, artifact in job.deps:
        try:
            with open(artifact, "rb") as handle:
                deps[name] = handle.read()
        except OSError as err:
            message = f"output of dep {name!r} unreadable: {err.strerror}"
            raise InputError(message, job.asset_file) from None
    output_key = with_dep_outputs(
        job.output_key, [(name, hash_bytes(data)) for name, data in deps.items()]
    )
    cached = cache_path(job.cache_dir, output_key)
    output = _cache_get(cached)
    if output is not None:
        _write_artifact(job.artifact, output)
        return False
    kind = get_kind(_kinds_of_this_process(), job.kind, job.asset_file)
    try:
        params = kind.Params.model_validate_json(job.params_json)
    except ValidationError as err:
        raise KindError(f"invalid params: {err.errors()[0]['msg']}", job.asset_file) from None
    inputs = tuple(
        read_checked_input(job.root, rel, digest)
        for rel, digest in zip(job.inputs, job.input_hashes, strict=True)
    )
    context = KindContext(input_names=job.input_names, inputs=inputs, params=params, deps=deps)
    try:
        output = kind.process(context)
    except PackerError as err:
        if not err.path:
            err.path = job.asset_file
        raise
    _cache_put(cached, output)
    _write_artifact(job.artifact, output)
    return True


def _write_artifact(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, data, durable=False)
