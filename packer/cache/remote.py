"""The remote cache in a build: fetch what the local cache lacks before doit runs, upload what
this machine built after it. Never an authority, never a failure.

``packer build`` with a remote (``packer.doit.build_workspace``) calls ``prefetch`` in its own
process before doit runs any task: each fetched output lands in the local cache and is linked as
its asset's artifact, so that the build can record its task as done (doit then finds it up to
date, and ``-n N`` workers never see it). With ``write``, it hands each asset whose kind ran to
``uploading`` as soon as doit reports it, so uploads overlap the rest of the build.

Layout (``packer.cache.bundle``): entries travel in bundles, a few MiB each, with an index per
bundle. A build reads every index once (one listing, then ``TRANSFER_THREADS`` reads at once),
then fetches what it needs with ranged reads of the bundles; it uploads what it built as
bundles too. Thousands of small outputs cost a few requests, not one each: a request costs
milliseconds of client CPU whatever its size.

Keys: an asset's completed output key (``packer.keys``) folds in its deps' output digests, so
the prefetch goes in waves: an asset's key is known once every dep's output is, from the local
cache or fetched. An asset whose dep is in neither is not looked up; it builds, as its dep does.

Faults: the first ``RemoteUnavailable`` (down, refused, timed out after the store's retry) ends
the remote's use for the rest of the build, with one warning line; entries and indexes that fail
verification (``entry.decode_entry``, ``bundle.decode_index``) are counted and reported in one
warning line; an entry that fails is tried in the next bundle that holds its key, if any. In
every case the assets build locally and the bytes are the same.
Imports: stdlib, packer.artifact, packer.keys, packer.plan (the ``AssetTask`` value),
packer.workspace, packer.model, packer.cache.bundle, packer.cache.entry, packer.cache.settings,
packer.cache.store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from packer.artifact import (
    artifact_digest,
    link_artifact,
    read_checked_artifact,
    write_artifact,
    write_linked,
)
from packer.cache.bundle import (
    INDEX_PREFIX,
    BadIndex,
    BundleFiller,
    Location,
    Run,
    SealedBundle,
    bundle_name,
    decode_index,
    fetch_runs,
    index_name,
    seal_bundle,
)
from packer.cache.entry import BadEntry, decode_entry, encode_entry
from packer.cache.settings import cache_settings, open_store
from packer.cache.store import RemoteStore, RemoteUnavailable
from packer.errors import counted
from packer.keys import completed, recorded_dep_digests
from packer.model import CacheSection
from packer.plan import AssetTask
from packer.workspace import Workspace, cached_output_path

TRANSFER_THREADS = 16
"""Requests in flight at once (index reads, ranged reads, bundle writes, and reading what to
upload): enough to hide a loopback or LAN round trip behind the others."""

LOCAL_WRITERS = 2
"""Fetched outputs written to the local disk at once: the transfers need many threads, file
creation in the same few folders does not (their locks serialize it), and with 16 writers a
fresh clone's prefetch of 10,000 outputs was no faster than with 2 (docs/performance.md)."""


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
        self._local_writes = threading.Semaphore(LOCAL_WRITERS)
        self._down = False
        self._bad_entries = 0
        self._bad_indexes = 0
        self._locations: dict[str, list[Location]] | None = None
        self._bundles: dict[str, list[tuple[str, Location]]] = {}
        self.failure: RemoteUnavailable | None = None
        """The fault that ended the remote's use in this build, if one did."""

    def _unavailable(self, err: RemoteUnavailable) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
            self.failure = err
        self._warn(f"warning: remote cache unavailable ({err}): building without it")

    def _read_index(self, name: str) -> list[tuple[str, Location]]:
        if self._down:
            return []
        try:
            index = self.store.get(name)
        except RemoteUnavailable as err:
            self._unavailable(err)
            return []
        if index is None:
            return []  # pruned since it was listed
        try:
            return decode_index(name.removeprefix(INDEX_PREFIX), index)
        except BadIndex:
            with self._lock:
                self._bad_indexes += 1
            return []

    def _catalog(self, pool: ThreadPoolExecutor) -> dict[str, list[Location]]:
        """Where the remote holds an entry for each output key (in every bundle that has one),
        from all of its indexes: one listing and one read per index, once per build."""
        if self._locations is not None:
            return self._locations
        self._locations = {}
        try:
            names = list(self.store.names(INDEX_PREFIX))
        except RemoteUnavailable as err:
            self._unavailable(err)
            return self._locations
        for placed in pool.map(self._read_index, names):
            if placed:
                self._bundles[placed[0][1].bundle] = placed
            for key, location in placed:
                self._locations.setdefault(key, []).append(location)
        return self._locations

    def bundle_contents(self) -> dict[str, list[tuple[str, Location]]]:
        """What each bundle holds, by bundle id, as the remote's indexes say: the output key
        and place of each entry, in bundle order."""
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            self._catalog(pool)
        return self._bundles

    def read_entries(self, wanted: Iterable[tuple[str, Location]]) -> dict[str, bytes]:
        """The entries at the places ``wanted`` (output key, where) that verify, as stored (a
        signature stays valid), by output key."""
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            read = pool.map(self._read_run, fetch_runs(wanted))
            entries = {key: entry for verified in read for key, entry, _, _ in verified}
        self._report_bad()
        return entries

    def _read_run(self, run: Run) -> list[tuple[str, bytes, bytes, bytes]]:
        """The entries of one ranged read that verify: output key, the entry as stored, the
        output's digest and the output. A bad entry is counted and left out."""
        if self._down:
            return []
        try:
            data = self.store.get_range(bundle_name(run.bundle), run.start, run.size)
        except RemoteUnavailable as err:
            self._unavailable(err)
            return []
        if data is None:
            return []  # an index whose bundle is gone (pruned or expired): a miss
        verified = []
        for key, location in run.members:
            entry = run.entry(data, location)
            try:
                digest, payload = decode_entry(key, entry, self.secret)
            except BadEntry:
                with self._lock:
                    self._bad_entries += 1
                continue
            verified.append((key, entry, digest, payload))
        return verified

    def _fetch_run(
        self, run: Run, cache_dir: str, artifacts: Mapping[str, str | None]
    ) -> dict[str, tuple[str, bool]]:
        """The entries of one ranged read that verify, each written as its artifact
        (``artifacts[key]``) where one is given and put in the local cache (``cache_dir``),
        one file with two names as a build leaves it: by output key, the output's digest (hex)
        and whether its artifact was written."""
        got: dict[str, tuple[str, bool]] = {}
        for key, _, digest, payload in self._read_run(run):
            artifact, cached = artifacts[key], cached_output_path(cache_dir, key)
            with self._local_writes:
                if artifact is None:
                    write_artifact(cached, payload)
                else:
                    write_linked(artifact, cached, payload)
            got[key] = digest.hex(), artifact is not None
        return got

    def _fetch(
        self,
        artifacts: Mapping[str, str | None],
        cache_dir: str,
        pool: ThreadPoolExecutor,
    ) -> dict[str, tuple[str, bool]]:
        """Fetch the outputs under the keys of ``artifacts`` that the remote holds (as
        ``_fetch_run`` does): the first place each is held, then, for those whose entry there
        failed verification, the next, and so on."""
        locations = self._catalog(pool)
        got: dict[str, tuple[str, bool]] = {}
        pending = [key for key in artifacts if key in locations]
        attempt = 0
        while pending and not self._down:
            runs = fetch_runs((key, locations[key][attempt]) for key in pending)
            for fetched in pool.map(lambda run: self._fetch_run(run, cache_dir, artifacts), runs):
                got.update(fetched)
            attempt += 1
            pending = [k for k in pending if k not in got and len(locations[k]) > attempt]
        return got

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
                if not missing:
                    continue
                got = self._fetch(
                    {
                        key: artifact_path and artifact_path(assets[0][0].asset_id)
                        for key, assets in missing.items()
                    },
                    cache_dir,
                    pool,
                )
                for key, assets in missing.items():
                    if key not in got:
                        continue
                    digest, placed = got[key]
                    for i, (t, dep_digests) in enumerate(assets):
                        if i and artifact_path is not None:
                            placed = self._place(cache_dir, key, artifact_path(t.asset_id))
                        found[t.asset_id] = Found(key, digest, dep_digests, True, placed)
        self._report_bad()
        return found

    def _report_bad(self) -> None:
        """One warning line for every entry and index that failed verification so far."""
        bad = [
            counted(n, noun)
            for n, noun in ((self._bad_indexes, "index"), (self._bad_entries, "entry"))
            if n
        ]
        if bad:
            self._warn(
                f"warning: remote cache {self.store.url}: {' and '.join(bad)} failed "
                "verification (truncated, corrupt or unsigned) and "
                f"{'was' if self._bad_entries + self._bad_indexes == 1 else 'were'} not used"
            )
        self._bad_entries = self._bad_indexes = 0

    def prefetch(self, tasks: Sequence[AssetTask], ws: Workspace) -> dict[str, Found]:
        """``resolve`` into the workspace's output cache, each output fetched from the remote
        also linked as its asset's artifact, as its task would link it. Returns what was
        fetched, by asset_id."""
        found = self.resolve(tasks, ws.output_cache_dir, ws.artifact_path)
        return {asset_id: f for asset_id, f in found.items() if f.fetched}

    def built_entry(self, ws: Workspace, task: AssetTask) -> tuple[str, bytes] | None:
        """The completed output key and the remote cache entry of an asset this build built."""
        if self._down:
            return None
        checked = read_checked_artifact(ws.artifact_path(task.asset_id))
        digests = recorded_dep_digests([ws.artifact_path(d) for d in task.dep_ids])
        if checked is None or digests is None:
            return None  # removed or damaged since it was built: nothing trustworthy to share
        key = completed(task.output_key, digests)
        return key, encode_entry(key, bytes.fromhex(checked[0]), checked[1], self.secret)

    def store_bundle(self, sealed: SealedBundle) -> int:
        """Store a bundle, then its index (a reader finds a bundle through its index only, so
        it never sees one half written). Returns how many entries this wrote."""
        if self._down:
            return 0
        try:
            self.store.put_if_absent(bundle_name(sealed.bundle_id), sealed.data)
            wrote = self.store.put_if_absent(index_name(sealed.bundle_id), sealed.index)
        except RemoteUnavailable as err:
            self._unavailable(err)
            return 0
        return len(sealed.keys) if wrote else 0

    @contextmanager
    def uploading(self, ws: Workspace) -> Iterator[Uploads]:
        """Uploads that run while the build goes on: ``Uploads.submit`` each asset as its kind
        finishes; the block ends once every upload has, and ``Uploads.written`` counts them."""
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            uploads = Uploads(self, ws, pool)
            yield uploads
            uploads.finish()


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
    """Fetched and written as its asset's artifact (its task can be recorded as done)."""


class Uploads:
    """The uploads of one build, started as its assets are built (``RemoteCache.uploading``):
    each built output's entry joins the open bundle, which is stored once it holds
    ``bundle.BUNDLE_BYTES`` (the last one, smaller, when the build ends)."""

    def __init__(self, cache: RemoteCache, ws: Workspace, pool: ThreadPoolExecutor) -> None:
        self._cache = cache
        self._ws = ws
        self._pool = pool
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._filler = BundleFiller()
        self._pending: list[Future[int]] = []
        self.written = 0
        """How many entries the uploads wrote (known once the ``uploading`` block ended)."""

    def submit(self, task: AssetTask) -> None:
        self._pending.append(self._pool.submit(self._add, task))

    def _add(self, task: AssetTask) -> int:
        entry = self._cache.built_entry(self._ws, task)
        if entry is None:
            return 0
        with self._lock:
            if entry[0] in self._keys:
                return 0  # assets with equal outputs: one entry
            self._keys.add(entry[0])
            full = self._filler.add(*entry)
        return 0 if full is None else self._cache.store_bundle(seal_bundle(full))

    def finish(self) -> None:
        written = sum(future.result() for future in self._pending)
        rest = self._filler.rest()
        self.written = written + (self._cache.store_bundle(seal_bundle(rest)) if rest else 0)


def open_remote(section: CacheSection, warn: Callable[[str], None]) -> RemoteCache | None:
    """The remote cache ``[cache]`` and the environment configure, or None without a remote."""
    settings = cache_settings(section)
    store = open_store(settings)
    if store is None:
        return None
    return RemoteCache(store, secret=settings.secret, write=settings.write, warn=warn)


__all__ = ["TRANSFER_THREADS", "Found", "RemoteCache", "Uploads", "open_remote"]
