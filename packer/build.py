"""Building one asset: read its inputs, check them against the snapshot, run its kind, store.

The asset's artifact ``<out>/assets/<asset_id>.bin`` (``packer.artifact``) is also kept, by
hard link, in the output cache under its completed output key (``packer.keys``: never a path or
the asset's name). So a moved or renamed asset, or a branch switched back, reuses bytes without
running its kind. The cache is never an authority: every
artifact carries the checksum of its bytes, and one that does not match (edited in place, torn)
is ignored and rebuilt; without the cache the kind runs again and writes the same bytes.
Imports: stdlib, pydantic, packer.artifact, packer.keys, packer.kinds, packer.plan (the
``AssetTask`` value), packer.workspace (the cache's layout), packer.hashing, packer.fsutil,
packer.errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from pydantic import ValidationError

from packer.artifact import (
    link_artifact,
    read_artifact,
    read_checked_artifact,
    write_artifact,
    write_linked,
)
from packer.errors import InputError, KindError, PackerError
from packer.fsutil import open_regular
from packer.hashing import hash_bytes
from packer.keys import completed
from packer.kinds.base import Kind, KindContext
from packer.kinds.registry import get_kind, load_kinds
from packer.plan import AssetTask
from packer.workspace import cached_output_path


@dataclass(frozen=True)
class AssetJob:
    """What the action of one ``asset:<id>`` task needs: the planned task and where its files
    are. Plain data, so it pickles for ``doit -n N``."""

    root: str
    task: AssetTask
    artifact: str
    """Absolute path of the asset's artifact."""
    dep_artifacts: tuple[str, ...]
    """Absolute path of each dep's artifact, in declared order."""
    cache_dir: str
    """The output cache's folder."""
    fetched_key: str | None = None
    """The completed output key whose entry this build fetched from the remote cache into the
    output cache before doit ran (``packer.cache.remote``), if any."""


@cache
def _kinds_of_this_process() -> dict[str, Kind]:
    # Kinds are code: loading entry points once per worker process is enough, and spares a
    # metadata scan per asset in a clean build.
    return dict(load_kinds())


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


def _dep_outputs(job: AssetJob) -> tuple[dict[str, bytes], list[str]]:
    """Each dep's output by asset_name (what the kind sees) and, in declared order, its digest
    as its artifact records it (what completes the keys): checked against each other."""
    outputs: dict[str, bytes] = {}
    digests: list[str] = []
    for name, artifact in zip(job.task.decl.deps, job.dep_artifacts, strict=True):
        checked = read_checked_artifact(artifact)
        if checked is None:
            message = f"output of dep {name!r} is missing or damaged: build that asset first"
            raise InputError(message, job.task.decl.asset_file)
        digests.append(checked[0])
        outputs[name] = checked[1]
    return outputs, digests


def build_asset(job: AssetJob) -> bool:
    """Produce the asset's artifact. Returns True when the kind ran, False on a cache hit."""
    task, decl = job.task, job.task.decl
    deps, digests = _dep_outputs(job)
    cached = cached_output_path(job.cache_dir, completed(task.output_key, digests))
    output = read_artifact(cached)
    if output is not None:
        if not link_artifact(cached, job.artifact):
            write_artifact(job.artifact, output)
        return False
    kind = get_kind(_kinds_of_this_process(), decl.kind, decl.asset_file)
    try:
        params = kind.Params.model_validate_json(decl.params_json)
    except ValidationError as err:
        raise KindError(f"invalid params: {err.errors()[0]['msg']}", decl.asset_file) from None
    inputs = tuple(
        read_checked_input(job.root, rel, digest)
        for rel, digest in zip(decl.inputs, task.input_hashes, strict=True)
    )
    context = KindContext(input_names=decl.input_names, inputs=inputs, params=params, deps=deps)
    try:
        output = kind.process(context)
    except PackerError as err:
        if not err.path:
            err.path = decl.asset_file
        raise
    write_linked(job.artifact, cached, output)
    return True
