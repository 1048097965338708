"""The remote cache in a build: fetch what the local cache lacks before doit runs, upload what
this machine built after it. Never an authority, never a failure.

``packer build`` with a remote (``packer.doit.build_workspace``) calls ``prefetch`` in its own
process before doit runs any task: each fetched output lands in the local cache and is linked as
its asset's artifact, so that the build can record its task as done (doit then finds it up to
date, and ``-n N`` workers never see it). With ``write``, it uploads each asset whose kind ran
as soon as doit reports it (``uploading``), so uploads overlap the rest of the build. Both run
``TRANSFER_THREADS`` requests at once: thousands of small objects cost their latency in
parallel, not in sequence.

Keys: an asset's completed output key (``packer.keys``) folds in its deps' output digests, so
the prefetch goes in waves: an asset's key is known once every dep's output is, from the local
cache or fetched. An asset whose dep is in neither is not looked up; it builds, as its dep does.

Faults: the first ``RemoteUnavailable`` (down, refused, timed out after the store's retry) ends
the remote's use for the rest of the build, with one warning line; entries that fail
verification (``entry.decode_entry``) are counted and reported in one warning line; in both
cases the assets build locally and the bytes are the same.
Imports: stdlib, packer.artifact, packer.keys, packer.plan (the ``AssetTask`` value),
packer.workspace, packer.model, packer.cache.entry, packer.cache.settings, packer.cache.store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from packer.artifact import artifact_digest, link_artifact, read_checked_artifact, write_artifact
from packer.cache.entry import BadEntry, decode_entry, encode_entry, object_name
from packer.cache.settings import cache_settings, open_store
from packer.cache.store import RemoteStore, RemoteUnavailable
from packer.errors import counted
from packer.keys import completed, recorded_dep_digests
from packer.model import CacheSection
from packer.plan import AssetTask
from packer.workspace import Workspace, cached_output_path

TRANSFER_THREADS = 16
"""Requests in flight at once: enough to hide a loopback or LAN round trip behind the others."""


class RemoteCache:
    """One build's use of a store: what it fetched and uploaded, and whether it gave up."""

    def __init__(
        self,
        store: RemoteStore,
        *,
        secret: bytes | None,
        write: bool,
        warn: Callable[[str], None],
    ) -> None:
        self.store = store
        self.secret = secret
        self.write = write
        self._warn = warn
        self._lock = threading.Lock()
        self._down = False
        self._bad = 0
        self.failure: RemoteUnavailable | None = None
        """The fault that ended the remote's use in this build, if one did."""

    def _unavailable(self, err: RemoteUnavailable) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
            self.failure = err
        self._warn(f"warning: remote cache unavailable ({err}): building without it")

    def _fetch(self, key: str, cache_dir: str, artifact: str | None) -> tuple[str, bool] | None:
        """The output under ``key`` fetched into the local cache (``cache_dir``) and linked as
        ``artifact`` when one is given: its digest (hex) and whether it was linked, or None when
        the remote has no good entry."""
        if self._down:
            return None
        try:
            entry = self.store.get(object_name(key))
        except RemoteUnavailable as err:
            self._unavailable(err)
            return None
        if entry is None:
            return None
        try:
            digest, payload = decode_entry(key, entry, self.secret)
        except BadEntry:
            with self._lock:
                self._bad += 1
            return None
        write_artifact(cached_output_path(cache_dir, key), payload)
        placed = artifact is not None and self._place(cache_dir, key, artifact)
        return digest.hex(), placed

    @staticmethod
    def _place(cache_dir: str, key: str, artifact: str) -> bool:
        """Link the output cache's entry under ``key`` as ``artifact``. Unlinked (a file system
        without hard links), the asset's task runs and takes the output from the local cache."""
        try:
            return link_artifact(cached_output_path(cache_dir, key), artifact)
        except OSError:
            return False

    def resolve(
        self,
        tasks: Sequence[AssetTask],
        cache_dir: str,
        artifact_path: Callable[[str], str] | None = None,
    ) -> dict[str, Found]:
        """Fetch into the local cache (``cache_dir``) the outputs of ``tasks`` that it lacks,
        each linked as its asset's artifact (``artifact_path(asset_id)``) when that is given;
        ``tasks`` holds every dep of each of them. Returns what either cache holds, by
        asset_id."""
        found: dict[str, Found] = {}
        waiting = list(tasks)
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            while waiting and not self._down:
                ready = [t for t in waiting if all(d in found for d in t.dep_ids)]
                if not ready:
                    break  # the rest wait on a dep that neither cache has: they build
                ready_ids = {t.asset_id for t in ready}
                waiting = [t for t in waiting if t.asset_id not in ready_ids]
                # By key: assets with equal outputs share one fetch (and one cache entry).
                missing: dict[str, list[tuple[AssetTask, tuple[str, ...]]]] = {}
                for t in ready:
                    dep_digests = tuple(found[d].digest for d in t.dep_ids)
                    key = completed(t.output_key, dep_digests)
                    if key in missing:
                        missing[key].append((t, dep_digests))
                        continue
                    try:
                        digest = artifact_digest(cached_output_path(cache_dir, key))
                    except OSError:
                        missing[key] = [(t, dep_digests)]
                    else:
                        found[t.asset_id] = Found(key, digest, dep_digests, False, False)
                jobs = [
                    (key, artifact_path and artifact_path(assets[0][0].asset_id))
                    for key, assets in missing.items()
                ]
                got = pool.map(lambda job: self._fetch(job[0], cache_dir, job[1]), jobs)
                for (key, assets), result in zip(missing.items(), got, strict=True):
                    if result is None:
                        continue
                    for i, (t, dep_digests) in enumerate(assets):
                        placed = result[1]
                        if i and artifact_path is not None:
                            placed = self._place(cache_dir, key, artifact_path(t.asset_id))
                        found[t.asset_id] = Found(key, result[0], dep_digests, True, placed)
        if self._bad:
            self._warn(
                f"warning: remote cache {self.store.url}: {counted(self._bad, 'entry')} failed "
                "verification (truncated, corrupt or unsigned) and "
                f"{'was' if self._bad == 1 else 'were'} not used"
            )
            self._bad = 0
        return found

    def prefetch(self, tasks: Sequence[AssetTask], ws: Workspace) -> dict[str, Found]:
        """``resolve`` into the workspace's output cache, each output fetched from the remote
        also linked as its asset's artifact, as its task would link it. Returns what was
        fetched, by asset_id."""
        found = self.resolve(tasks, ws.output_cache_dir, ws.artifact_path)
        return {asset_id: f for asset_id, f in found.items() if f.fetched}

    def _upload(self, ws: Workspace, task: AssetTask) -> bool:
        if self._down:
            return False
        checked = read_checked_artifact(ws.artifact_path(task.asset_id))
        digests = recorded_dep_digests([ws.artifact_path(d) for d in task.dep_ids])
        if checked is None or digests is None:
            return False  # removed or damaged since it was built: nothing trustworthy to share
        key = completed(task.output_key, digests)
        entry = encode_entry(key, bytes.fromhex(checked[0]), checked[1], self.secret)
        try:
            return self.store.put_if_absent(object_name(key), entry)
        except RemoteUnavailable as err:
            self._unavailable(err)
            return False

    @contextmanager
    def uploading(self, ws: Workspace) -> Iterator[Uploads]:
        """Uploads that run while the build goes on: ``Uploads.submit`` each asset as its kind
        finishes; the block ends once every upload has, and ``Uploads.written`` counts them."""
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            uploads = Uploads(lambda task: pool.submit(self._upload, ws, task))
            yield uploads
            uploads.written = sum(future.result() for future in uploads.pending)


@dataclass(frozen=True)
class Found:
    """An asset's output as one of the caches holds it."""

    key: str
    """The completed output key."""
    digest: str
    """The xxh3_128 (hex) of the output."""
    dep_digests: tuple[str, ...]
    """The deps' output digests the key was completed with, in declared order."""
    fetched: bool
    """It came from the remote in this build (else the local cache had it)."""
    placed: bool
    """Fetched and linked as its asset's artifact."""


class Uploads:
    """The uploads of one build, started as its assets are built (``RemoteCache.uploading``)."""

    def __init__(self, start: Callable[[AssetTask], Future[bool]]) -> None:
        self._start = start
        self.pending: list[Future[bool]] = []
        self.written = 0
        """How many objects the uploads wrote (known once the ``uploading`` block ended)."""

    def submit(self, task: AssetTask) -> None:
        self.pending.append(self._start(task))


def open_remote(section: CacheSection, warn: Callable[[str], None]) -> RemoteCache | None:
    """The remote cache ``[cache]`` and the environment configure, or None without a remote."""
    settings = cache_settings(section)
    store = open_store(settings)
    if store is None:
        return None
    return RemoteCache(store, secret=settings.secret, write=settings.write, warn=warn)


__all__ = ["TRANSFER_THREADS", "Found", "RemoteCache", "Uploads", "open_remote"]
