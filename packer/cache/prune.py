"""``packer cache prune``: delete the remote's objects that the current assets do not need.

What is needed is the entry of each asset's current completed output key. Keys fold in the
deps' output digests, so they are resolved as a build's prefetch resolves them
(``RemoteCache.resolve``: the local cache first, then the remote, in waves); an output found
only in the remote is fetched into the local cache on the way. When an asset's key cannot be
resolved (a dep's output is in neither cache), prune cannot tell which object that asset needs
and deletes nothing. Everything else under the prefix is deleted: the entries of other
branches and of older content too, which is why it must not run while builds of other branches
write to the same prefix (docs/cache.md#eviction). It is the only deleter of remote objects.
Imports: stdlib, packer.api, packer.plan, packer.errors, packer.workspace, packer.cache.entry,
packer.cache.remote, packer.cache.store.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from packer import api
from packer.cache.entry import object_name
from packer.cache.remote import TRANSFER_THREADS, open_remote
from packer.cache.store import RemoteUnavailable
from packer.errors import ConfigError, PackerError, counted
from packer.plan import plan_build
from packer.workspace import CONFIG_FILE, Workspace


@dataclass(frozen=True)
class PruneResult:
    remote: str
    kept: int
    """Objects kept: the entries the current assets need."""
    deleted: tuple[str, ...]
    """Names of the objects deleted (with ``dry_run``: that would be), sorted."""
    dry_run: bool


def prune(ws: Workspace, *, dry_run: bool, warn: Callable[[str], None]) -> PruneResult:
    """Delete (or, with ``dry_run``, list) the remote's objects that no current asset needs.
    Reads the workspace frozen: it never writes the registry."""
    warnings: list[str] = []  # held back: a remote that fails is an error here, not a warning
    remote = open_remote(ws.config.cache, warnings.append)
    if remote is None:
        raise ConfigError(
            "no remote cache to prune ([cache] remote or PACKER_CACHE_REMOTE)", CONFIG_FILE
        )
    plan = plan_build(api.snapshot(ws, frozen=True), ws.config.pack)
    found = remote.resolve(plan.tasks, ws.output_cache_dir)
    url = remote.store.url
    if remote.failure is not None:
        raise PackerError(f"remote cache unavailable ({remote.failure}): nothing pruned", url)
    for line in warnings:
        warn(line)
    unknown = len(plan.tasks) - len(found)
    if unknown:
        raise PackerError(
            f"cannot tell which entries {counted(unknown, 'asset')} need (a dep's output is in "
            "neither cache): run `packer build` first; nothing pruned",
            url,
        )
    needed = {object_name(f.key) for f in found.values()}
    try:
        names = sorted(remote.store.names())
        doomed = tuple(name for name in names if name not in needed)
        if not dry_run:
            with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
                list(pool.map(remote.store.delete, doomed))
    except RemoteUnavailable as err:
        raise PackerError(f"remote cache unavailable ({err})", url) from None
    return PruneResult(url, len(names) - len(doomed), doomed, dry_run)


__all__ = ["PruneResult", "prune"]
