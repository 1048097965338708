"""The keys of a build: the one definition of what an asset's output and task depend on.

An asset has two keys, both made from its declaration and its inputs' hashes by the plan, and
both completed with its deps' output digests once the deps have run:

- the **output key** names the asset's output bytes: ``KEY_VERSION``, the kind, the kind's
  fingerprint (its ``version`` and the installed version of every library it declares,
  ``kinds.base.kind_fingerprint``), the canonical params, the input names as written in
  asset.json and the xxh3_128 of each input, and the deps' asset_names as the asset declares
  them (they are the keys of the ``deps`` mapping its kind sees), then the digests of the
  deps' outputs. That is everything a kind may see, and kinds are pure: equal keys mean equal
  bytes, on any machine. So it holds no path, no asset_id, not the asset's own asset_name and
  nothing absolute: a moved or renamed asset, another clone or another machine finds the same
  output under the same key. The output cache stores outputs under it, locally and (later)
  shared across machines.
- the **task key** is the output key and the xxh3_128 of the asset.json bytes: doit runs the
  asset's task again exactly when it changes (an edit of asset.json's whitespace or its
  asset_name re-runs the task, and the output cache then serves the bytes).

A dep's output digest is the xxh3_128 of its data that its artifact's header holds
(``packer.artifact``): the doit adapter reads it from the header to decide whether a task is up
to date, the build reads it with the data it checks against it; both complete keys here, with
the same digests, so the key a task is checked with is the key its output is cached under.

Changing what goes into a key, or how, is a format change: bump ``KEY_VERSION``. That changes
every key (so every task runs once and the output cache starts afresh), never a pack byte.
The pack key is here too: the pack task's key, over the snapshot fingerprint and the assets'
output keys, with ``PACK_LAYOUT_VERSION`` for the pack writer's layout and, for a compressed
pack, the codec's fingerprint (level and library versions: an upgrade of zstandard or libzstd
writes the pack again rather than keep bytes a clean build might not give).
Imports: stdlib, packer.artifact, packer.hashing, packer.scan (the ``Declaration`` value).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from packer.artifact import artifact_digest
from packer.hashing import hash_parts
from packer.scan import Declaration

KEY_VERSION = "1"
"""Part of every output key and task key: bump when what goes into them, or how, changes."""

PACK_LAYOUT_VERSION = "1"
"""Part of every pack key: bump when the pack writer's output changes for the same entries."""


def output_key(decl: Declaration, input_hashes: Sequence[str]) -> str:
    """The output key before the deps' outputs are folded in (``completed``)."""
    return hash_parts(
        [
            "output",
            KEY_VERSION,
            decl.kind,
            decl.kind_fingerprint,
            decl.params_json,
            str(len(decl.input_names)),
            *decl.input_names,
            *input_hashes,
            *decl.deps,
        ]
    )


def task_key(decl: Declaration, output: str) -> str:
    """The task key, from the asset.json bytes and the output key (not yet completed)."""
    return hash_parts(["task", KEY_VERSION, decl.decl_hash, output])


def completed(key: str, dep_digests: Sequence[str]) -> str:
    """``key`` (an output or task key) with the output digests of the asset's deps, in declared
    order, folded in. Deps' outputs are known only once their tasks ran: an asset rebuilds when
    a dep's bytes change, not merely when a dep's inputs do."""
    if not dep_digests:
        return key
    return hash_parts(["deps", key, *dep_digests])


def recorded_dep_digests(dep_artifacts: Sequence[str]) -> tuple[str, ...] | None:
    """The output digests the deps' artifacts record in their headers; None when one is
    missing or is no artifact (the task must run, and says so)."""
    try:
        return tuple(artifact_digest(path) for path in dep_artifacts)
    except OSError:
        return None


def pack_key(
    snapshot_fingerprint: str, outputs: Iterable[tuple[str, str]], codec: str | None = None
) -> str:
    """The pack task's key: the snapshot fingerprint and each (asset_id, output key) in pack
    order, then the codec's fingerprint when the pack is compressed (``None``: format 1, whose
    key is what it always was). Output keys before completion are enough: a dep's output, and
    so its dependents', changes only with the dep's own output key, which is in the list too."""
    parts = ["pack", PACK_LAYOUT_VERSION, KEY_VERSION, snapshot_fingerprint]
    if codec is not None:
        parts += ["codec", codec]
    for asset_id, output in outputs:
        parts += [asset_id, output]
    return hash_parts(parts)
