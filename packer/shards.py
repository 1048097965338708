"""Shards of a build (``packer build --shard K/N``): which assets shard K of N builds.

An asset's shard is ``xxh3_64(asset_id) % N + 1``: a function of the id alone, so every machine
computes the same partition, and the N shards cover every asset exactly once. A shard also
needs its assets' deps (``with_deps``): they come from the cache or are built there too.
Imports: stdlib, xxhash, packer.plan (the ``AssetTask`` value).
"""

from __future__ import annotations

from collections.abc import Sequence

import xxhash

from packer.plan import AssetTask


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), 1 <= K <= N; ValueError saying what is wrong otherwise."""
    k_text, slash, n_text = text.partition("/")
    if not (slash and k_text.isdecimal() and n_text.isdecimal()):
        raise ValueError(f"--shard takes K/N (two whole numbers), not {text!r}")
    k, n = int(k_text), int(n_text)
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_of(asset_id: str, count: int) -> int:
    """The shard (1..count) that builds ``asset_id``."""
    return xxhash.xxh3_64_intdigest(asset_id.encode("utf-8")) % count + 1


def shard_tasks(tasks: Sequence[AssetTask], shard: int, count: int) -> list[AssetTask]:
    """The tasks of shard ``shard`` of ``count``, in plan order."""
    return [t for t in tasks if shard_of(t.asset_id, count) == shard]


def with_deps(tasks: Sequence[AssetTask], selected: Sequence[AssetTask]) -> list[AssetTask]:
    """``selected`` and every asset they depend on, directly or not, in the order of ``tasks``."""
    by_id = {t.asset_id: t for t in tasks}
    needed: set[str] = set()
    stack = [t.asset_id for t in selected]
    while stack:
        asset_id = stack.pop()
        if asset_id not in needed:
            needed.add(asset_id)
            stack.extend(by_id[asset_id].dep_ids)
    return [t for t in tasks if t.asset_id in needed]


__all__ = ["parse_shard", "shard_of", "shard_tasks", "with_deps"]
