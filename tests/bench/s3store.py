"""What one small object costs on the S3 store: puts and gets against a local SeaweedFS.

    python -m tests.bench.s3store [--count 2000] [--size 2048] [--threads 1,16,32]

Starts the tests' SeaweedFS (tests/seaweed.py) on loopback, then for each thread count writes
``count`` objects of ``size`` random bytes through ``S3Store.put_if_absent`` under a fresh
prefix, reads them back with ``get`` (checking the bytes), and lists them; prints objects per
second, milliseconds per object and the client's CPU per object for each. One S3Store (one
boto3 client) serves all threads, as the cache layer shares it. The figures are loopback: a
real network adds its round trip to every object, which concurrency hides and a sequential
loop pays in full.
Imports: stdlib, boto3 (through packer.cache.s3), tests/seaweed.py.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packer.cache.s3 import S3Store
from tests.seaweed import seaweed_server


def _timed(threads: int, work: list[str], call: Callable[[str], None]) -> tuple[float, float]:
    """Wall seconds, and this process's CPU seconds (boto3's share of the cost)."""
    started, cpu = time.perf_counter(), time.process_time()
    if threads == 1:
        for name in work:
            call(name)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(call, work))
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--threads", default="1,16,32")
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    payloads = {f"{i:02x}/{os.urandom(16).hex()}": os.urandom(args.size) for i in range(args.count)}
    names = sorted(payloads)
    with tempfile.TemporaryDirectory() as folder, seaweed_server(Path(folder)) as server:
        os.environ.update(server.env())  # this process only exists to measure
        print(f"{args.count} objects of {args.size} B, SeaweedFS at {server.endpoint}")
        for threads in counts:
            store = S3Store(server.bucket, f"bench-{threads}", server.endpoint, 30.0)

            def put(name: str, store: S3Store = store) -> None:
                assert store.put_if_absent(name, payloads[name])

            def get(name: str, store: S3Store = store) -> None:
                assert store.get(name) == payloads[name]

            put_s = _timed(threads, names, put)
            get_s = _timed(threads, names, get)
            started = time.perf_counter()
            listed = sum(1 for _ in store.names())
            list_s = time.perf_counter() - started
            assert listed == args.count
            for what, (seconds, cpu) in (("put", put_s), ("get", get_s)):
                print(
                    f"  {threads:>2} thread(s) {what}: {seconds:6.2f} s, "
                    f"{args.count / seconds:7.0f}/s, {1000 * seconds / args.count:5.2f} ms each "
                    f"({1000 * cpu / args.count:4.2f} ms of client CPU)"
                )
            print(f"  {threads:>2} thread(s) list: {list_s:6.2f} s for {listed} names")


if __name__ == "__main__":
    main()
