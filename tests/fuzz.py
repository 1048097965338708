"""The ``fuzz`` and ``fuzz_pack`` doit tasks, for the repository's top-level dodo.py::

    from tests.fuzz import task_fuzz, task_fuzz_pack

Then, from the repository root::

    doit fuzz                                   # 500 examples of up to 40 steps
    doit fuzz --examples 2000 --steps 60 --seed 7
    doit fuzz --subprocess                      # doit and packer as real processes (slower)

It runs tests/test_state_machine.py under pytest with the ``release`` hypothesis profile and
prints how many examples and steps ran (from build/fuzz-stats.json, which the machine writes)
and hypothesis' own statistics.

    doit fuzz_pack                              # 200,000 mutated packs and manifests, 40 kills
    doit fuzz_pack --cases 20000 --seed 7 --kill-rounds 20

It runs PackReader and verify_pack over mutated packs and manifests in a child process capped in
memory and time (``run_pack_fuzz``, also the suite's small share in tests/test_pack_hardening.py),
then tests/test_kill.py with that many rounds, and prints the figures of both.

This file is not collected by pytest (its name does not match ``test_*.py``); the small CI
budgets run with the rest of the suite.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import xxhash

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATS_FILE = os.path.join(ROOT, "build", "fuzz-stats.json")


def _fuzz(examples: int, steps: int, seed: int, subprocesses: bool) -> bool:
    os.makedirs(os.path.dirname(STATS_FILE), exist_ok=True)
    if os.path.exists(STATS_FILE):
        os.unlink(STATS_FILE)
    env = {
        **os.environ,
        "PACKER_FUZZ_PROFILE": "release",
        "PACKER_FUZZ_EXAMPLES": str(examples),
        "PACKER_FUZZ_STEPS": str(steps),
        "PACKER_FUZZ_STATS": STATS_FILE,
        "PACKER_FUZZ_SUBPROCESS": "1" if subprocesses else "0",
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        os.path.join("tests", "test_state_machine.py"),
    ]
    if seed:
        command.append(f"--hypothesis-seed={seed}")
    start = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    elapsed = time.monotonic() - start
    try:
        with open(STATS_FILE, encoding="utf-8") as handle:
            stats: dict[str, int] = json.load(handle)
    except (OSError, ValueError):
        stats = {}
    failed = sum(n for key, n in stats.items() if key.startswith("failed builds"))
    print(
        f"fuzz: {stats.get('examples', 0)} examples, {stats.get('steps', 0)} steps, "
        f"{stats.get('good builds', 0)} good builds, {failed} failed builds (as the model "
        f"expected), in {elapsed:.0f} s: " + ("PASS" if code == 0 else "FAIL")
    )
    actions = {k: v for k, v in stats.items() if k not in ("examples", "steps")}
    print("  actions: " + ", ".join(f"{name} {count}" for name, count in actions.items()))
    print(f"  counts written to {os.path.relpath(STATS_FILE, ROOT)}")
    return code == 0


def _param(name: str, kind: type, default: object, text: str) -> dict[str, Any]:
    long = "subprocess" if name == "subprocesses" else name.replace("_", "-")
    return {"name": name, "long": long, "type": kind, "default": default, "help": text}


def task_fuzz() -> dict[str, Any]:
    """Fuzz packer with random histories of user actions (tests/test_state_machine.py).

    Params:
      --examples N    hypothesis examples (default 500)
      --steps N       most steps per example (default 40)
      --seed S        hypothesis seed (default 0: a random one)
      --subprocess    run doit and packer as real processes, as a user does (slower)
    """
    return {
        "actions": [_fuzz],
        "params": [
            _param("examples", int, 500, "hypothesis examples (default 500)"),
            _param("steps", int, 40, "most steps per example (default 40)"),
            _param("seed", int, 0, "hypothesis seed (default 0: random)"),
            _param("subprocesses", bool, False, "run doit and packer as real processes"),
        ],
        "verbosity": 2,
        "uptodate": [False],
    }


# --- The pack fuzz: PackReader and verify_pack over mutated packs and manifests ----------------

PACK_FUZZ_CASES_DEFAULT = 2000
"""Random cases in the suite's share (a few seconds); the truncations at every length come on
top. ``PACKER_PACK_FUZZ_CASES`` overrides it; ``doit fuzz_pack`` runs a large budget."""

PACK_FUZZ_MEMORY = 512 << 20
"""Address space of the fuzz child (RLIMIT_AS): an allocation a header field asks for (a count
of 2**60, an index of 2**63 bytes) fails there with MemoryError, which counts as a crash."""

PACK_FUZZ_CASE_SECONDS = 10
"""A case running longer is a hang (SIGALRM in the child), reported with the case."""

_DOC_HEADER = struct.Struct("<8sIIQQQ16sQ")  # docs/pack-format.md §1, restated here
_HOSTILE_INTS = [0, 1, 15, 16, 63, 64, 65, 2**31, 2**32 - 1, 2**32, 2**60, 2**63, 2**64 - 1]
_HOSTILE_VALUES: list[object] = [
    None,
    True,
    1.5,
    -1,
    2**64,
    10**60,
    "",
    "x" * 3000,
    "\ud800",
    "\x00",
    [],
    {},
    [[[[[[]]]]]],
    {"asset_id": 1},
]


def run_pack_fuzz(cases: int, seed: int, folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Run the pack fuzz in a child process bounded in memory and time; return its figures.

    ``cases`` random mutations run after one truncation of the pack and one of the manifest at
    every length. ``failures`` lists every case that raised anything but ``PackError`` (or
    hung); a crash of the child itself is reported there too, with its stderr.
    """
    stats_file = os.path.join(folder, "pack-fuzz-stats.json")
    command = [sys.executable, "-m", "tests.fuzz", "pack-worker", str(cases), str(seed)]
    start = time.monotonic()
    done = subprocess.run(
        [*command, os.fspath(folder), stats_file],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120 + cases * 0.05,
        preexec_fn=limit_memory,
        check=False,
    )
    try:
        with open(stats_file, encoding="utf-8") as handle:
            stats: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        stats = {"cases": 0, "failures": [f"the fuzz child died: {done.stderr[-2000:]}"]}
    stats["returncode"] = done.returncode
    stats["seconds"] = round(time.monotonic() - start, 1)
    return stats


def limit_memory() -> None:
    """For a child's ``preexec_fn``: cap its address space at ``PACK_FUZZ_MEMORY``."""
    resource.setrlimit(resource.RLIMIT_AS, (PACK_FUZZ_MEMORY, PACK_FUZZ_MEMORY))


class _Hang(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Hang


def _seal_header(raw: bytearray) -> None:
    """Recompute the header's own checksum so a mutation reaches the checks behind it."""
    raw[56:64] = struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(raw[:56])))


def _seal_index(raw: bytearray) -> None:
    """Recompute the index checksum over the range the header claims, where the file has it."""
    index_offset, index_size = struct.unpack_from("<QQ", raw, 24)
    if index_offset + index_size <= len(raw):
        raw[40:56] = xxhash.xxh3_128_digest(bytes(raw[index_offset : index_offset + index_size]))
    _seal_header(raw)


def _record_fields(raw: bytes) -> list[tuple[int, str]]:
    """(position, struct format) of every field of every index record of a valid pack."""
    count, index_offset = struct.unpack_from("<QQ", raw, 16)
    fields, position = [], index_offset
    for _ in range(count):
        for _text in range(3):
            (length,) = struct.unpack_from("<I", raw, position)
            fields.append((position, "<I"))
            position += 4 + length
        fields += [(position, "<Q"), (position + 8, "<Q"), (position + 16, "16s")]
        position += 32
    return fields


def _hostile_int(rng: random.Random, size: int) -> int:
    return rng.choice([*_HOSTILE_INTS, size - 1, size, size + 1, rng.randrange(2**64)])


def _mutate_pack(rng: random.Random, raw: bytes) -> tuple[str, bytes]:
    data = bytearray(raw)
    how = rng.choice(["flip", "header", "record", "splice"])
    if how == "flip":
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == "header":
        offset, form = rng.choice([(8, "<I"), (12, "<I"), (16, "<Q"), (24, "<Q"), (32, "<Q")])
        limit = 2**32 - 1 if form == "<I" else 2**64 - 1
        struct.pack_into(form, data, offset, min(_hostile_int(rng, len(raw)), limit))
        _seal_index(data)
    elif how == "record":
        offset, form = rng.choice(_record_fields(raw))
        if form == "16s":
            data[offset : offset + 16] = rng.randbytes(16)
        else:
            limit = 2**32 - 1 if form == "<I" else 2**64 - 1
            struct.pack_into(form, data, offset, min(_hostile_int(rng, len(raw)), limit))
        _seal_index(data)
    else:
        start = rng.randrange(len(data))
        data[start : start + rng.randint(0, 32)] = rng.randbytes(rng.randint(0, 32))
        _seal_index(data)
    return how, bytes(data)


def _mutate_manifest(rng: random.Random, raw: bytes) -> tuple[str, bytes]:
    how = rng.choice(["value", "flip", "splice", "text"])
    if how == "value":  # valid JSON, one value hostile; canonical unless escaped to ASCII
        document = json.loads(raw)
        target = rng.choice([document, *document["assets"]])
        target[rng.choice(list(target))] = rng.choice(_HOSTILE_VALUES)
        text = json.dumps(document, indent=2, ensure_ascii=rng.random() < 0.5) + "\n"
        return how, text.encode("utf-8", "surrogatepass")
    data = bytearray(raw)
    if how == "flip":
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == "splice":
        start = rng.randrange(len(data))
        data[start : start + rng.randint(0, 16)] = rng.randbytes(rng.randint(0, 16))
    else:
        hostile = rng.choice(
            [b"9" * 5000, b"[" * 5000, b"NaN", b"1e999", b'"\xff"', b'"k": 1, "k": 1', b"\0"]
        )
        start = rng.randrange(len(data))
        data[start:start] = hostile
        if rng.random() < 0.2:
            data[:0] = b"\xef\xbb\xbf"
    return how, bytes(data)


def _pack_worker(cases: int, seed: int, folder: str, stats_file: str) -> None:
    """The child: a small real pack, then every truncation and ``cases`` random mutations."""
    from packer.artifact import write_artifact
    from packer.errors import PackError
    from packer.pack import PackEntry, PackReader, verify_pack, write_pack

    rng = random.Random(seed)
    items = [
        ("01", "a", b"alpha" * 7),
        ("0b", "b/\u00fc", b""),
        ("7f", "c", bytes(range(40))),
        ("z\u00e9", "d", b"0123456789abcdef"),
    ]
    entries = []
    for asset_id, name, data in items:
        source = os.path.join(folder, f"{name.replace('/', '_')}.bin")
        write_artifact(source, data)
        entries.append(PackEntry(asset_id, name, "raw", source))
    pack = os.path.join(folder, "fuzz.pack")
    manifest = os.path.join(folder, "fuzz.manifest.json")
    write_pack(pack, manifest, "snapshot", entries)
    with open(pack, "rb") as handle:
        pack_raw = handle.read()
    with open(manifest, "rb") as handle:
        manifest_raw = handle.read()

    def mutations() -> Iterator[tuple[str, bytes, bytes]]:
        for size in range(len(pack_raw)):
            yield "truncated pack", pack_raw[:size], manifest_raw
        for size in range(len(manifest_raw)):
            yield "truncated manifest", pack_raw, manifest_raw[:size]
        for _ in range(cases):
            if rng.random() < 0.6:
                how, mutated = _mutate_pack(rng, pack_raw)
                yield f"pack {how}", mutated, manifest_raw
            else:
                how, mutated = _mutate_manifest(rng, manifest_raw)
                yield f"manifest {how}", pack_raw, mutated

    counts: dict[str, int] = {}
    failures: list[str] = []
    accepted = 0
    signal.signal(signal.SIGALRM, _on_alarm)
    for number, (how, pack_bytes, manifest_bytes) in enumerate(mutations()):
        counts[how] = counts.get(how, 0) + 1
        for path, data in ((pack, pack_bytes), (manifest, manifest_bytes)):
            with open(path, "wb") as handle:
                handle.write(data)
        signal.setitimer(signal.ITIMER_REAL, PACK_FUZZ_CASE_SECONDS)
        try:
            try:
                with PackReader(pack) as reader:
                    for asset_id in reader.asset_ids:
                        reader.get(asset_id)
            except PackError:
                pass
            try:
                verify_pack(pack)
                accepted += 1
            except PackError as err:
                str(err)  # the error line must render
        except _Hang:
            failures.append(f"case {number} ({how}): hung for {PACK_FUZZ_CASE_SECONDS} s")
        except Exception as err:  # anything but PackError is what the fuzz looks for
            failures.append(f"case {number} ({how}): {type(err).__name__}: {err}"[:500])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    stats = {
        "cases": sum(counts.values()),
        "by_mutation": counts,
        "accepted": accepted,
        "failures": failures,
    }
    with open(stats_file, "w", encoding="utf-8") as handle:
        json.dump(stats, handle, indent=2)


KILL_STATS_FILE = os.path.join(ROOT, "build", "kill-stats.json")


def _fuzz_pack(cases: int, seed: int, kill_rounds: int) -> bool:
    folder = os.path.join(ROOT, "build", "fuzz-pack")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    stats = run_pack_fuzz(cases, seed or random.randrange(1, 2**31), folder)
    failures: list[str] = stats["failures"]
    print(
        f"pack fuzz: {stats['cases']} cases ({stats['accepted']} accepted by verify, the rest "
        f"refused with PackError), {len(failures)} failures, in {stats['seconds']:.0f} s"
    )
    print("  cases: " + ", ".join(f"{k} {v}" for k, v in stats.get("by_mutation", {}).items()))
    for failure in failures[:20]:
        print(f"  FAIL {failure}")
    if os.path.exists(KILL_STATS_FILE):
        os.unlink(KILL_STATS_FILE)
    env = {**os.environ, "PACKER_KILL_ROUNDS": str(kill_rounds)}
    env["PACKER_KILL_STATS"] = KILL_STATS_FILE
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    code = subprocess.run(
        [*command, os.path.join("tests", "test_kill.py")], cwd=ROOT, env=env, check=False
    ).returncode
    try:
        with open(KILL_STATS_FILE, encoding="utf-8") as handle:
            kills = json.load(handle)
        print(f"kill -9: {json.dumps(kills)}: " + ("PASS" if code == 0 else "FAIL"))
    except (OSError, ValueError):
        print("kill -9: FAIL (no figures written)")
    return not failures and stats["returncode"] == 0 and code == 0


def task_fuzz_pack() -> dict[str, Any]:
    """Fuzz PackReader and verify over mutated packs and manifests, then kill -9 real builds.

    The fuzz runs in a child capped at PACK_FUZZ_MEMORY of address space; the kill rounds are
    tests/test_kill.py with a release number of rounds.

    Params:
      --cases N        random mutations, after every truncation (default 200000)
      --seed S         seed of the mutations (default 0: a random one)
      --kill-rounds N  kill -9 rounds (default 40)
    """
    return {
        "actions": [_fuzz_pack],
        "params": [
            _param("cases", int, 200_000, "random mutations (default 200000)"),
            _param("seed", int, 0, "seed of the mutations (default 0: random)"),
            _param("kill_rounds", int, 40, "kill -9 rounds (default 40)"),
        ],
        "verbosity": 2,
        "uptodate": [False],
    }


if __name__ == "__main__" and sys.argv[1:2] == ["pack-worker"]:
    _pack_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
