"""``packer cache prune``: delete the remote's objects that the current assets do not need.

What is needed is the entry of each asset's current completed output key, so the bundle that
holds it and that bundle's index (``packer.cache.bundle``). A bundle whose entries are all
needed is kept as it is; the needed entries of any other bundle are copied, as stored, into new
bundles, and then the others are deleted, indexes first. Keys fold in the
deps' output digests, so they are resolved as a build's prefetch resolves them
(``RemoteCache.resolve``: the local cache first, then the remote, in waves); an output found
only in the remote is fetched into the local cache on the way. When an asset's key cannot be
resolved (a dep's output is in neither cache), prune cannot tell which entry that asset needs
and deletes nothing. Everything else under the prefix is deleted: the entries of other
branches and of older content too, which is why it must not run while builds of other branches
write to the same prefix (docs/cache.md#eviction). It is the only deleter of remote objects.
Imports: stdlib, packer.api, packer.plan, packer.errors, packer.workspace, packer.cache.bundle,
packer.cache.remote, packer.cache.store.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from packer import api
from packer.cache.bundle import (
    INDEX_PREFIX,
    BundleFiller,
    Location,
    SealedBundle,
    bundle_name,
    index_name,
    seal_bundle,
)
from packer.cache.remote import TRANSFER_THREADS, open_remote
from packer.cache.store import RemoteUnavailable
from packer.errors import ConfigError, PackerError, counted
from packer.plan import plan_build
from packer.workspace import CONFIG_FILE, Workspace


@dataclass(frozen=True)
class PruneResult:
    remote: str
    kept: int
    """Objects the remote holds after the prune: bundles (and their indexes) kept whole or
    written to hold the needed entries of the others."""
    deleted: tuple[str, ...]
    """Names of the objects deleted (with ``dry_run``: that would be), sorted."""
    copied: int
    """Needed entries copied out of bundles deleted for their other entries, into new ones."""
    dry_run: bool


def prune(ws: Workspace, *, dry_run: bool, warn: Callable[[str], None]) -> PruneResult:
    """Delete (or, with ``dry_run``, list) the remote's objects that no current asset needs,
    first copying the needed entries of a bundle that also holds others into new bundles.
    Reads the workspace frozen: it never writes the registry."""
    warnings: list[str] = []  # held back: a remote that fails is an error here, not a warning
    remote = open_remote(ws.config.cache, warnings.append)
    if remote is None:
        raise ConfigError(
            "no remote cache to prune ([cache] remote or PACKER_CACHE_REMOTE)", CONFIG_FILE
        )
    plan = plan_build(api.snapshot(ws, frozen=True), ws.config.pack)
    found = remote.resolve(plan.tasks, ws.output_cache_dir)
    contents = remote.bundle_contents()
    url = remote.store.url

    def check_remote() -> None:
        if remote.failure is not None:
            raise PackerError(f"remote cache unavailable ({remote.failure}): nothing pruned", url)

    check_remote()
    unknown = len(plan.tasks) - len(found)
    if unknown:
        raise PackerError(
            f"cannot tell which entries {counted(unknown, 'asset')} need (a dep's output is in "
            "neither cache): run `packer build` first; nothing pruned",
            url,
        )
    needed = {f.key for f in found.values()}
    whole = {b for b, placed in contents.items() if all(key in needed for key, _ in placed)}
    held = {key for b in whole for key, _ in contents[b]}
    elsewhere: dict[str, Location] = {}
    for b, placed in contents.items():
        if b not in whole:
            for key, location in placed:
                if key in needed and key not in held:
                    elsewhere.setdefault(key, location)
    # Copied as stored: verified on the way, and a signature stays valid without the key.
    filler = BundleFiller()
    copies: list[SealedBundle] = []
    for key, entry in remote.read_entries(elsewhere.items()).items():
        if (full := filler.add(key, entry)) is not None:
            copies.append(seal_bundle(full))
    if rest := filler.rest():
        copies.append(seal_bundle(rest))
    check_remote()
    keep = {
        name(bundle_id)
        for bundle_id in [*whole, *(copy.bundle_id for copy in copies)]
        for name in (index_name, bundle_name)
    }
    try:
        names = sorted(remote.store.names())
        doomed = tuple(name for name in names if name not in keep)
        if not dry_run:
            # The copies are stored before anything is deleted, indexes before their bundles:
            # a build that reads the remote meanwhile finds every needed entry somewhere.
            for copy in copies:
                remote.store_bundle(copy)
            check_remote()
            indexes = [name for name in doomed if name.startswith(INDEX_PREFIX)]
            with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
                list(pool.map(remote.store.delete, indexes))
                list(pool.map(remote.store.delete, set(doomed).difference(indexes)))
    except RemoteUnavailable as err:
        raise PackerError(f"remote cache unavailable ({err})", url) from None
    for line in warnings:
        warn(line)
    copied = sum(len(copy.keys) for copy in copies)
    return PruneResult(url, len(keep), doomed, copied, dry_run)


__all__ = ["PruneResult", "prune"]
