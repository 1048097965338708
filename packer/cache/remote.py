"""The remote cache in a build: fetch what the local cache lacks before doit runs, upload what
this machine built after it. Never an authority, never a failure.

``packer build`` with a remote (``packer.doit.run_doit``) calls ``prefetch`` in its own process,
before doit runs any task, so that ``-n N`` workers find the fetched outputs in the local cache
as if built there; and ``upload`` after doit, for the assets whose kind ran. Both run
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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from packer.artifact import artifact_digest, read_checked_artifact, write_artifact
from packer.cache.entry import BadEntry, decode_entry, encode_entry, object_name
from packer.cache.settings import cache_settings, open_store
from packer.cache.store import RemoteStore, RemoteUnavailable
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

    def _fetch(self, key: str, cached: str) -> str | None:
        """The output under ``key`` fetched into the local cache at ``cached``; its digest
        (hex), or None when the remote has no good entry."""
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
        write_artifact(cached, payload)
        return digest.hex()

    def resolve(self, tasks: Sequence[AssetTask], cache_dir: str) -> dict[str, tuple[str, bool]]:
        """Fetch into the local cache (``cache_dir``) the outputs of ``tasks`` that it lacks;
        ``tasks`` holds every dep of each of them. Returns asset_id -> (completed output key,
        fetched from the remote) for every asset whose output either cache holds."""
        digests: dict[str, str] = {}
        """asset_id -> output digest, for assets whose output is in the local cache now."""
        found: dict[str, tuple[str, bool]] = {}
        waiting = list(tasks)
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            while waiting and not self._down:
                ready = [t for t in waiting if all(d in digests for d in t.dep_ids)]
                if not ready:
                    break  # the rest wait on a dep that neither cache has: they build
                ready_ids = {t.asset_id for t in ready}
                waiting = [t for t in waiting if t.asset_id not in ready_ids]
                missing: list[tuple[AssetTask, str, str]] = []
                for t in ready:
                    key = completed(t.output_key, [digests[d] for d in t.dep_ids])
                    cached = cached_output_path(cache_dir, key)
                    try:
                        digests[t.asset_id] = artifact_digest(cached)
                        found[t.asset_id] = (key, False)
                    except OSError:
                        missing.append((t, key, cached))
                got = pool.map(lambda item: self._fetch(item[1], item[2]), missing)
                for (t, key, _), digest in zip(missing, got, strict=True):
                    if digest is not None:
                        digests[t.asset_id] = digest
                        found[t.asset_id] = (key, True)
        if self._bad:
            self._warn(
                f"warning: remote cache {self.store.url}: {self._bad} entries failed "
                "verification (truncated, corrupt or unsigned) and were not used"
            )
            self._bad = 0
        return found

    def prefetch(self, tasks: Sequence[AssetTask], cache_dir: str) -> dict[str, str]:
        """``resolve``, returning asset_id -> the completed output key fetched for it."""
        found = self.resolve(tasks, cache_dir)
        return {asset_id: key for asset_id, (key, fetched) in found.items() if fetched}

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

    def upload(self, ws: Workspace, built: Iterable[AssetTask]) -> int:
        """Upload the outputs of ``built`` (assets whose kind ran in this build) that the remote
        lacks; returns how many this call wrote."""
        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            return sum(pool.map(lambda t: self._upload(ws, t), built))


def open_remote(section: CacheSection, warn: Callable[[str], None]) -> RemoteCache | None:
    """The remote cache ``[cache]`` and the environment configure, or None without a remote."""
    settings = cache_settings(section)
    store = open_store(settings)
    if store is None:
        return None
    return RemoteCache(store, secret=settings.secret, write=settings.write, warn=warn)


__all__ = ["TRANSFER_THREADS", "RemoteCache", "open_remote"]
