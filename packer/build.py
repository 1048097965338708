"""Building one asset: read its inputs, check them against the snapshot, run its kind, store.

Outputs are content-addressed in ``<state>/cache/`` by the task's output key (kind, version,
params, input names and hashes, deps' output keys; never path or name), then linked to the
asset's artifact ``<out>/assets/<asset_id>.bin``. So a moved or renamed asset, or a branch
switched back, reuses bytes without running its kind. The cache is disposable: without it the
kind runs again and writes the same bytes.
Imports: stdlib, pydantic, packer.kinds, packer.hashing, packer.fsutil, packer.errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

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


@cache
def _kinds_of_this_process() -> dict[str, Kind]:
    # Kinds are code: loading entry points once per worker process is enough, and spares a
    # metadata scan per asset in a clean build.
    return dict(load_kinds())


def cache_path(cache_dir: str, output_key: str) -> str:
    return os.path.join(cache_dir, output_key[:2], output_key)


def _place(source: str, target: str) -> None:
    """Make ``target`` hold the bytes of ``source`` atomically: a hard link, else a copy."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    temp = f"{target}.tmp-{os.getpid()}"
    try:
        os.link(source, temp)
    except OSError:
        with open(source, "rb") as handle:
            atomic_write(target, handle.read(), durable=False)
        return
    os.replace(temp, target)
    if os.path.lexists(temp):
        # rename() does nothing when both names already link to one file (the target held
        # these bytes: a forgotten or re-run task hit the cache), leaving the temp name behind.
        os.unlink(temp)


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
    if os.path.exists(cached):
        _place(cached, job.artifact)
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
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    atomic_write(cached, output, durable=False)
    _place(cached, job.artifact)
    return True
