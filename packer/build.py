"""Building one asset: read its inputs, check them against the snapshot, run its kind, store.

The asset's artifact ``<out>/assets/<asset_id>.bin`` (``packer.artifact``) is also kept, by
hard link, in ``<state>/cache/`` under the task's output key (kind, version, params, input names
and hashes, deps' output bytes; never path or name). So a moved or renamed asset, or a branch
switched back, reuses bytes without running its kind. The cache is never an authority: every
artifact carries the checksum of its bytes, and one that does not match (edited in place, torn)
is ignored and rebuilt; without the cache the kind runs again and writes the same bytes.
Imports: stdlib, pydantic, packer.artifact, packer.kinds, packer.plan, packer.hashing,
packer.fsutil, packer.errors.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from functools import cache

from pydantic import ValidationError

from packer.artifact import read_artifact, write_artifact
from packer.errors import InputError, KindError, PackerError
from packer.fsutil import open_regular
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


@cache
def _kinds_of_this_process() -> dict[str, Kind]:
    # Kinds are code: loading entry points once per worker process is enough, and spares a
    # metadata scan per asset in a clean build.
    return dict(load_kinds())


def cache_path(cache_dir: str, output_key: str) -> str:
    return os.path.join(cache_dir, output_key[:2], output_key)


def _link(source: str, target: str) -> bool:
    """Make ``target`` another name of ``source`` (replacing it atomically); False if the file
    system cannot link."""
    if os.path.exists(target) and os.path.samefile(source, target):
        return True
    temp = f"{target}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(source, temp)
    except OSError:
        return False
    try:
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)  # a second name of a good file: never leave it behind
        raise
    return True


def read_checked_input(root: str, rel: str, expected: str) -> bytes:
    """An input's bytes, refused if they are not the bytes the snapshot hashed."""
    try:
        # open_regular: a FIFO or device swapped in after the scan fails the task, never blocks.
        with os.fdopen(open_regular(os.path.join(root, rel)), "rb") as handle:
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
        data = read_artifact(artifact)
        if data is None:
            message = f"output of dep {name!r} is missing or damaged: build that asset first"
            raise InputError(message, job.asset_file)
        deps[name] = data
    output_key = with_dep_outputs(
        job.output_key, [(name, hash_bytes(data)) for name, data in deps.items()]
    )
    cached = cache_path(job.cache_dir, output_key)
    output = read_artifact(cached)
    if output is not None:
        if not _link(cached, job.artifact):
            write_artifact(job.artifact, output)
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
    write_artifact(job.artifact, output)
    if not _link(job.artifact, cached):
        write_artifact(cached, output)
    return True
