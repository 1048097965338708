"""The benchmark harness behind ``doit bench``: scenarios, tools, whole-process timing, goals.

Every measured run is one whole process, forked by a small launcher process and reaped with
``os.wait4`` there, so its peak RSS is its own (not a running maximum over all children, nor the
harness's memory inherited through fork; see launcher.py) and its time excludes the harness.
Runs of the tools of one scenario alternate (A, B, C, then B, C, A, ...) so slow drift of the
machine falls on every tool alike; the setup a scenario needs (change a file, delete state...)
happens before each measured run and is not timed. See README.md beside this file for what
each scenario and tool means.
Imports: stdlib, tests.bench.gen (and doit, for its version).
"""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .gen import WorkspaceMeta, ensure_workspace, write_stamp

if TYPE_CHECKING:
    from tests.seaweed import S3Server

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BENCH_FORMAT = 1

PACKER_TOOLS = ("packer-doit", "packer-build")
WATCH_TOOL = "packer-watch"
FLOOR_TOOLS = ("import", "walk-parse", "hash-all")
ALL_TOOLS = (*PACKER_TOOLS, WATCH_TOOL, "plain-doit", "ninja", *FLOOR_TOOLS)

SCENARIOS = (
    "clean",
    "noop",
    "change-one",
    "touch-one",
    "touch-all",
    "rename-one",
    "mv-one",
    "del-state",
    "watch",
    "cache-upload",
    "cache-fresh",
    "cache-shards",
    "s3-upload",
    "s3-fresh",
    "s3-shards",
)

# Which tools each scenario runs. ninja and the floors only make sense for a clean build and a
# no-op. packer-build is the same engine as packer-doit behind packer's CLI: it runs where the
# CLI path could differ (a full build, the no-op, one change) and is skipped where it would only
# double the time; packer-doit (plain `doit` in the workspace, SPEC section 4) is "packer" in
# the goals.
DEFAULT_TOOLS: dict[str, tuple[str, ...]] = {
    "clean": ("packer-doit", "packer-build", "plain-doit", "ninja"),
    "noop": ("packer-doit", "packer-build", "plain-doit", "ninja", *FLOOR_TOOLS),
    "change-one": ("packer-doit", "packer-build", "plain-doit"),
    "touch-one": ("packer-doit", "plain-doit"),
    "touch-all": ("packer-doit", "plain-doit"),
    "rename-one": ("packer-doit", "plain-doit"),
    "mv-one": ("packer-doit", "plain-doit"),
    "del-state": ("packer-doit", "plain-doit"),
    "watch": (WATCH_TOOL, "packer-build"),
    "cache-upload": ("packer-build",),
    "cache-fresh": ("packer-build",),
    "cache-shards": ("packer-build",),
    "s3-upload": ("packer-build",),
    "s3-fresh": ("packer-build",),
    "s3-shards": ("packer-build",),
}
# Above this N, the references run only when named in --tools: every goal that needs them is at
# N = 10,000, ninja's first build forks one process per asset, and plain doit's load time is
# quadratic in the pack task's file_dep count (doit 0.37, control.py add_implicit_task_dep
# checks `name not in task.task_dep` on a list for each of the N artifacts).
REFERENCES = ("plain-doit", "ninja")
REFERENCE_DEFAULT_MAX_N = 10_000
FULL_BUILD_SCENARIOS = (
    "clean",
    "del-state",
    "cache-upload",
    "cache-fresh",
    "s3-upload",
    "s3-fresh",
)
# The shared cache (docs/cache.md): a clean build that uploads into an empty remote, a fresh
# clone (no build/, no .packer/) served by a warm remote, and three shards in sequence, each on a
# fresh clone, then an assembler. `cache-*` on a file:// remote on the same disk, `s3-*` on the
# tests' SeaweedFS on loopback (tests/seaweed.py; the test extra). Scenario -> (remote, what).
CACHE_SCENARIOS = {
    "cache-upload": ("file", "upload"),
    "cache-fresh": ("file", "fresh"),
    "cache-shards": ("file", "shards"),
    "s3-upload": ("s3", "upload"),
    "s3-fresh": ("s3", "fresh"),
    "s3-shards": ("s3", "shards"),
}
SHARDS = 3
# Scenarios after which packer's cache must hold no new entry (no asset's kind ran).
NO_REPROCESS_SCENARIOS = ("rename-one", "mv-one")
# packer's stat cache ignores files changed less than 2 s before a scan (racily clean).
RACY_SETTLE_S = 2.2
WATCH_TIMEOUT_S = 600.0
"""Longest wait for a line of ``packer watch`` or for its new pack (the first build included)."""
WATCH_POLL_S = 0.002

Log = Callable[[str], None]


@dataclass
class Options:
    sizes: tuple[int, ...] = (1000, 10000)
    runs: int = 0
    """Runs per scenario and tool; 0: 5 for N <= 10,000, else 3."""
    clean_runs: int = 0
    """Runs of the full-build scenarios (clean, del-state); 0: 3 for N <= 10,000, else 1."""
    scenarios: tuple[str, ...] = SCENARIOS
    tools: tuple[str, ...] = ALL_TOOLS
    tools_explicit: bool = False
    """True when the user named the tools (ninja then runs at any N)."""
    fresh: bool = False
    seed: int = 1
    out: str = os.path.join(REPO, "build", "bench.json")
    bench_dir: str = os.path.join(REPO, "build", "bench")

    def runs_for(self, n: int, scenario: str) -> int:
        if scenario in FULL_BUILD_SCENARIOS:
            return self.clean_runs or (3 if n <= 10_000 else 1)
        return self.runs or (5 if n <= 10_000 else 3)


@dataclass
class Sample:
    seconds: float
    rss_mib: float
    executed: int | None
    new_cache: int | None


@dataclass
class Row:
    n: int
    scenario: str
    tool: str
    samples: list[Sample] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    """Facts of the row beyond its times (the shards' assembly: same bytes, kinds run)."""

    def to_json(self) -> dict[str, Any]:
        times = [s.seconds for s in self.samples]
        data: dict[str, Any] = {
            "n": self.n,
            "scenario": self.scenario,
            "tool": self.tool,
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4),
            "max_s": round(max(times), 4),
            "runs": len(times),
            "peak_rss_mib": round(max(s.rss_mib for s in self.samples), 1),
            "times_s": [round(t, 4) for t in times],
        }
        executed = [s.executed for s in self.samples if s.executed is not None]
        if executed:
            data["executed"] = executed
        new_cache = [s.new_cache for s in self.samples if s.new_cache is not None]
        if new_cache:
            data["new_cache_entries"] = new_cache
        return {**data, **self.extra}


class BenchError(Exception):
    pass


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PACKER_FROZEN", None)
    return env


def _ninja_binary() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "ninja")
    return here if os.path.isfile(here) else shutil.which("ninja")


_NINJA_STEP = re.compile(rb"^\[\d+/\d+\]", re.MULTILINE)


def _tail(path: str, lines: int, limit: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a file, indented."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


class Launcher:
    """The process that forks every measured command (see launcher.py for why)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", os.path.join(HERE, "launcher.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=_child_env(),
            )
        return self.proc

    def run(self, argv: Sequence[str], cwd: str, out: str, err: str) -> dict[str, Any]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        request = {"argv": list(argv), "cwd": cwd, "out": out, "err": err}
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise BenchError("the launcher process died")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None


LAUNCHER = Launcher()


def run_measured(argv: Sequence[str], cwd: str, log_dir: str) -> tuple[float, float, bytes]:
    """Run one whole process; its wall time, its own peak RSS (MiB) and its stdout.

    Raises BenchError with the tail of its output when it exits non-zero.
    """
    out_path = os.path.join(log_dir, "last.out")
    err_path = os.path.join(log_dir, "last.err")
    result = LAUNCHER.run(argv, cwd, out_path, err_path)
    if result["code"] != 0:
        raise BenchError(
            f"`{' '.join(argv)}` in {os.path.relpath(cwd, REPO)} exited {result['code']}\n"
            f"  stdout (end):\n{_tail(out_path, 4)}\n  stderr (end):\n{_tail(err_path, 20)}"
        )
    with open(out_path, "rb") as handle:
        stdout = handle.read()
    return result["seconds"], result["maxrss_kib"] / 1024, stdout


def _state_key(tool: str) -> str:
    """What state a tool's build keeps: packer-doit and packer-build share the workspace's."""
    return "packer" if tool in (*PACKER_TOOLS, WATCH_TOOL) else tool


def _rm(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _count_cache(cache_dir: str) -> int:
    count = 0
    try:
        shards = list(os.scandir(cache_dir))
    except FileNotFoundError:
        return 0
    for shard in shards:
        if shard.is_dir():
            with os.scandir(shard.path) as entries:
                count += sum(1 for e in entries if ".tmp-" not in e.name)
    return count


class SizeBench:
    """All scenarios for one N: the packer workspace and its plain-doit and ninja siblings."""

    def __init__(self, n: int, ws: str, meta: WorkspaceMeta, opts: Options, log: Log) -> None:
        self.n = n
        self.ws = ws
        self.meta = meta
        self.opts = opts
        self.log = log
        self.plain = f"{ws}-plain"
        self.ninja_dir = f"{ws}-ninja"
        self.log_dir = os.path.join(opts.bench_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.specs = meta.by_folder
        self.ids = self._registry_ids()
        self.moved: dict[str, str] = {}
        """Original folder -> current folder, for assets moved by the mv-one scenario."""
        self.counter = 0
        self.bulk_mutation_at = 0.0
        self.stale = {"packer", "plain-doit", "ninja"}
        """Tools (by state they keep) whose last build may not match the workspace."""
        self.ninja = _ninja_binary()
        self.remote = os.path.join(opts.bench_dir, f"remote-{n}")
        """The file:// remote cache of the cache scenarios."""
        self.s3: S3Server | None = None
        """The S3 server of the s3 scenarios, started by the first of them."""
        self.s3_prefix = 0
        """The S3 remote is ``s3://BUCKET/run-<s3_prefix>``: a new number is an empty remote."""
        self.servers = ExitStack()
        self.remote_warm = {"file": False, "s3": False}
        self.rows: list[Row] = []
        self.errors: list[str] = []
        self.facts: dict[str, Any] = {}

    # --- workspace facts ------------------------------------------------------------------------

    def _registry_ids(self) -> dict[str, str]:
        with open(os.path.join(self.ws, "registry.json"), encoding="utf-8") as handle:
            data = json.load(handle)
        ids = {entry["path"]: entry["asset_id"] for entry in data["assets"]}
        missing = [f for f in self.specs if f not in ids]
        if missing:
            raise BenchError(f"registry.json of {self.ws} lacks {missing[0]} (use --fresh)")
        return ids

    def current(self, folder: str) -> str:
        return self.moved.get(folder, folder)

    def target_input(self) -> str:
        spec = self.specs[self.meta.target]
        return os.path.join(self.ws, self.current(spec.folder), spec.inputs[0])

    def all_files(self) -> Iterable[str]:
        for spec in self.meta.assets:
            folder = os.path.join(self.ws, self.current(spec.folder))
            yield os.path.join(folder, "asset.json")
            for name in spec.inputs:
                yield os.path.join(folder, name)

    # --- the reference builds ---------------------------------------------------------------------

    def write_plain(self) -> None:
        os.makedirs(self.plain, exist_ok=True)
        shutil.copyfile(os.path.join(HERE, "plain_dodo.py"), os.path.join(self.plain, "dodo.py"))
        rel = os.path.relpath(self.ws, self.plain)
        assets = []
        for spec in self.meta.assets:
            folder = f"{rel}/{self.current(spec.folder)}"
            assets.append(
                [
                    self.ids[spec.folder],
                    f"{folder}/asset.json",
                    [f"{folder}/{name}" for name in spec.inputs],
                    [self.ids[d] for d in spec.deps],
                ]
            )
        _write_if_changed(
            os.path.join(self.plain, "graph.json"),
            json.dumps({"assets": assets}, separators=(",", ":")),
        )

    def write_ninja(self) -> None:
        os.makedirs(self.ninja_dir, exist_ok=True)
        rel = os.path.relpath(self.ws, self.ninja_dir)
        lines = [
            "ninja_required_version = 1.10",
            "rule copy",
            "  command = cat $in > $out",
            "rule pack",
            "  command = xargs cat < $out.rsp > $out",
            "  rspfile = $out.rsp",
            "  rspfile_content = $in",
        ]
        artifacts = []
        for spec in sorted(self.meta.assets, key=lambda s: self.ids[s.folder]):
            artifact = f"out/{self.ids[spec.folder]}.bin"
            artifacts.append(artifact)
            inputs = " ".join(f"{rel}/{spec.folder}/{name}" for name in spec.inputs)
            order = " ".join(f"out/{self.ids[d]}.bin" for d in spec.deps)
            lines.append(f"build {artifact}: copy {inputs}" + (f" || {order}" if order else ""))
        lines.append("build out/all.pack: pack " + " ".join(artifacts))
        lines.append("default out/all.pack")
        _write_if_changed(os.path.join(self.ninja_dir, "build.ninja"), "\n".join(lines) + "\n")

    def argv(self, tool: str) -> tuple[list[str], str]:
        py = sys.executable
        if tool == "packer-doit":
            return [py, "-m", "doit"], self.ws
        if tool == "packer-build":
            return [py, "-m", "packer", "build"], self.ws
        if tool == "plain-doit":
            return [py, "-m", "doit"], self.plain
        if tool == "ninja":
            if self.ninja is None:
                raise BenchError("ninja not found (pip install ninja)")
            return [self.ninja], self.ninja_dir
        if tool == "import":
            return [py, "-c", "import packer.doit"], self.ws
        if tool in ("walk-parse", "hash-all"):
            return [py, os.path.join(HERE, "floors.py"), tool, self.ws], self.ws
        raise BenchError(f"unknown tool {tool!r}")

    # --- running ----------------------------------------------------------------------------------

    def with_remote(self, argv: Sequence[str], *, write: bool, backend: str) -> list[str]:
        """``argv`` run with the bench's file:// or S3 remote cache (through env(1): the launcher
        keeps one environment for every run)."""
        settings = [f"PACKER_CACHE_WRITE={int(write)}"]
        if backend == "file":
            settings.append(f"PACKER_CACHE_REMOTE=file://{self.remote}")
        else:
            assert self.s3 is not None
            settings += [f"{name}={value}" for name, value in self.s3.env().items()]
            settings += [
                f"PACKER_CACHE_REMOTE=s3://{self.s3.bucket}/run-{self.s3_prefix}",
                f"PACKER_CACHE_ENDPOINT={self.s3.endpoint}",
            ]
        return ["env", *settings, *argv]

    def empty_remote(self, backend: str) -> None:
        """Make the backend's remote empty (the S3 server starts on first use)."""
        self.remote_warm[backend] = False
        if backend == "file":
            _rm(self.remote)
            os.makedirs(self.remote)
            return
        if self.s3 is None:
            from tests.seaweed import seaweed_server

            folder = os.path.join(self.opts.bench_dir, f"seaweed-{self.n}")
            _rm(folder)
            os.makedirs(folder)
            self.servers.callback(_rm, folder)  # after the server has stopped
            self.s3 = self.servers.enter_context(seaweed_server(Path(folder)))
        self.s3_prefix += 1

    def measure(self, tool: str, scenario: str) -> Sample:
        argv, cwd = self.argv(tool)
        if scenario in CACHE_SCENARIOS:
            backend, what = CACHE_SCENARIOS[scenario]
            argv = self.with_remote(argv, write=what == "upload", backend=backend)
        cache_dir = os.path.join(self.ws, ".packer", "cache")
        count_cache = tool in PACKER_TOOLS and scenario not in FULL_BUILD_SCENARIOS
        before = _count_cache(cache_dir) if count_cache else 0
        seconds, rss, stdout = run_measured(argv, cwd, self.log_dir)
        executed: int | None = None
        if tool in (*PACKER_TOOLS, "plain-doit"):
            executed = sum(1 for line in stdout.splitlines() if line.startswith(b".  "))
        elif tool == "ninja":
            executed = len(_NINJA_STEP.findall(stdout))
        new_cache = _count_cache(cache_dir) - before if count_cache else None
        return Sample(seconds, rss, executed, new_cache)

    def settle(self) -> None:
        """Wait until files changed in bulk are old enough for packer's stat cache."""
        wait = self.bulk_mutation_at + RACY_SETTLE_S - time.time()
        if wait > 0:
            time.sleep(wait)

    def prepare(self, tools: Sequence[str]) -> None:
        """Bring every tool of a scenario up to date (not timed)."""
        self.settle()
        self.write_plain()
        for tool in tools:
            key = _state_key(tool)
            if key in self.stale:
                run_measured(*self.argv(tool), self.log_dir)
                self.stale.discard(key)

    def packer_mv(self, src: str, dst: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "packer", "mv", src, dst],
            cwd=self.ws,
            capture_output=True,
            text=True,
            env=_child_env(),
        )
        if done.returncode != 0:
            raise BenchError(f"packer mv {src} {dst} failed:\n{done.stdout}{done.stderr}")

    # --- scenarios --------------------------------------------------------------------------------

    def setup(self, scenario: str, tool: str) -> None:
        """Make the change the scenario measures, just before ``tool``'s measured run."""
        self.counter += 1
        target = self.meta.target
        if scenario in FULL_BUILD_SCENARIOS:
            self.stale.add(_state_key(tool))
        else:
            self.stale.update(("packer", "plain-doit", "ninja"))
        if scenario in CACHE_SCENARIOS:  # upload or fresh; shards run in run_shards
            backend, what = CACHE_SCENARIOS[scenario]
            if what == "upload" or not self.remote_warm[backend]:
                self.empty_remote(backend)
            if what == "fresh" and not self.remote_warm[backend]:
                self._fresh_clone()
                warm_up = self.with_remote(self.argv(tool)[0], write=True, backend=backend)
                run_measured(warm_up, self.ws, self.log_dir)
            self.remote_warm[backend] = True  # after the upload's run too
            self._fresh_clone()
        elif scenario == "clean":
            if tool in PACKER_TOOLS:
                _rm(os.path.join(self.ws, "build"))
                _rm(os.path.join(self.ws, ".packer"))
            elif tool == "plain-doit":
                self._forget_plain()
                _rm(os.path.join(self.plain, "out"))
            elif tool == "ninja":
                for name in ("out", ".ninja_log", ".ninja_deps"):
                    _rm(os.path.join(self.ninja_dir, name))
        elif scenario == "del-state":
            if tool in PACKER_TOOLS:
                _rm(os.path.join(self.ws, ".packer"))
            elif tool == "plain-doit":
                self._forget_plain()
        elif scenario == "change-one":
            path = self.target_input()
            size = os.path.getsize(path)
            with open(path, "wb") as handle:
                handle.write(os.urandom(size))
        elif scenario == "touch-one":
            os.utime(self.target_input())
        elif scenario == "touch-all":
            for path in self.all_files():
                os.utime(path)
            self.bulk_mutation_at = time.time()
        elif scenario == "rename-one":
            path = os.path.join(self.ws, self.current(target), "asset.json")
            with open(path, encoding="utf-8") as handle:
                decl = json.load(handle)
            decl["asset_name"] = f"{self.specs[target].name}-renamed{self.counter}"
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(decl, indent=2) + "\n")
        elif scenario == "mv-one":
            dst = f"{target}-mv{self.counter}"
            self.packer_mv(self.current(target), dst)
            self.moved[target] = dst
            if tool == "plain-doit":
                self.write_plain()

    def _fresh_clone(self) -> None:
        """The workspace as a fresh clone has it: no build/, no .packer/."""
        _rm(os.path.join(self.ws, "build"))
        _rm(os.path.join(self.ws, ".packer"))

    def run_shards(self, scenario: str) -> list[Row]:
        """``packer build --shard K/3`` for K = 1, 2, 3 in sequence, each on a fresh clone and
        writing to an empty remote, then an assembler's ``packer build`` on a fresh clone: one
        sample each; the assembly row says whether its pack and manifest equal a one-machine
        build's and how many kinds ran in all."""
        py = sys.executable
        build = [py, "-m", "packer", "build", "--json"]
        self.settle()
        run_measured(build, self.ws, self.log_dir)  # one machine, no remote: the reference
        reference = self._pack_pair()
        backend = CACHE_SCENARIOS[scenario][0]
        self.empty_remote(backend)  # and not warm after: the shards' uploads cover every asset
        self.stale.add("packer")
        rows: list[Row] = []
        processed = 0
        for k in range(1, SHARDS + 1):
            self._fresh_clone()
            argv = self.with_remote(
                [*build, "--shard", f"{k}/{SHARDS}"], write=True, backend=backend
            )
            seconds, rss, stdout = run_measured(argv, self.ws, self.log_dir)
            ran = int(json.loads(stdout.splitlines()[-1])["processed"])
            processed += ran
            rows.append(Row(self.n, scenario, f"shard-{k}/{SHARDS}"))
            rows[-1].samples.append(Sample(seconds, rss, ran, None))
        self._fresh_clone()
        assemble = self.with_remote(build, write=False, backend=backend)
        seconds, rss, stdout = run_measured(assemble, self.ws, self.log_dir)
        ran = int(json.loads(stdout.splitlines()[-1])["processed"])
        assembly = Row(self.n, scenario, "assemble")
        assembly.samples.append(Sample(seconds, rss, ran, None))
        assembly.extra = {
            "same_bytes": self._pack_pair() == reference,
            "kinds_run_in_shards": processed,
            "assets": self.n,
        }
        self.stale.discard("packer")  # the assembled workspace is built and consistent
        return [*rows, assembly]

    def _pack_pair(self) -> tuple[bytes, bytes]:
        out = os.path.join(self.ws, "build")
        names = sorted(f for f in os.listdir(out) if f.endswith((".pack", ".manifest.json")))
        pair = []
        for name in names:
            with open(os.path.join(out, name), "rb") as handle:
                pair.append(handle.read())
        return pair[0], pair[1]

    def _forget_plain(self) -> None:
        with os.scandir(self.plain) as entries:
            for entry in entries:
                if entry.name.startswith(".doit.db"):
                    os.unlink(entry.path)

    def run_scenario(self, scenario: str, tools: Sequence[str]) -> list[Row]:
        runs = self.opts.runs_for(self.n, scenario)
        if scenario == "watch":
            return self.run_watch(tools, runs)
        if scenario in CACHE_SCENARIOS and CACHE_SCENARIOS[scenario][1] == "shards":
            return self.run_shards(scenario)
        if scenario not in FULL_BUILD_SCENARIOS:
            self.prepare(tools)
        else:
            self.settle()
            self.write_plain()
        rows = {tool: Row(self.n, scenario, tool) for tool in tools}
        restore = self._snapshot_for_restore(scenario)
        try:
            for run in range(runs):
                shift = run % len(tools)
                for tool in (*tools[shift:], *tools[:shift]):
                    # ninja's clean build forks one process per asset: once is enough.
                    if tool == "ninja" and scenario == "clean" and run > 0:
                        continue
                    self.setup(scenario, tool)
                    rows[tool].samples.append(self.measure(tool, scenario))
                    self.stale.discard(_state_key(tool))
        finally:
            restore()
            if scenario != "noop" and scenario not in FULL_BUILD_SCENARIOS:
                self.stale.update(("packer", "plain-doit", "ninja"))
        return [row for row in rows.values() if row.samples]

    def run_watch(self, tools: Sequence[str], runs: int) -> list[Row]:
        """``packer watch`` on the workspace: time from saving new bytes into one input to a
        new pack whose entry holds them (read back through PackReader, which checks it), against
        ``packer build`` after the same change. Not alternated: a build beside a running watch
        would make the watch rebuild too, so the builds run first, then the watch's edits."""
        self.prepare(["packer-build"])
        rows = {tool: Row(self.n, "watch", tool) for tool in tools}
        restore = _restorer(self.target_input())
        try:
            if "packer-build" in rows:
                for _ in range(runs):
                    self.setup("change-one", "packer-build")
                    rows["packer-build"].samples.append(self.measure("packer-build", "change-one"))
            if WATCH_TOOL in rows:
                rows[WATCH_TOOL].samples.extend(self._watch_edits(runs))
        finally:
            restore()
            self.stale.add("packer")
        return [row for row in rows.values() if row.samples]

    def _watch_edits(self, runs: int) -> list[Sample]:
        from packer.pack import PackReader

        asset_id = self.ids[self.meta.target]
        pack = os.path.join(self.ws, "build", f"bench-{self.n}.pack")
        proc = subprocess.Popen(
            [sys.executable, "-m", "packer", "watch", "--json"],
            cwd=self.ws,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        lines: queue.Queue[str] = queue.Queue()

        def read_lines() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)

        threading.Thread(target=read_lines, daemon=True).start()

        def build_line() -> dict[str, Any]:
            try:
                line: dict[str, Any] = json.loads(lines.get(timeout=WATCH_TIMEOUT_S))
            except queue.Empty:
                raise BenchError("packer watch printed no line in time") from None
            if not line["ok"]:
                raise BenchError(f"packer watch: a build failed: {line['errors']}")
            return line

        samples = []
        try:
            build_line()  # the first build: the watcher is in place
            for _ in range(runs):
                time.sleep(0.5)  # the previous pack's readers and writers are done
                before = _stat_key(pack)
                data = os.urandom(os.path.getsize(self.target_input()))
                with open(self.target_input(), "wb") as handle:
                    handle.write(data)
                saved = time.perf_counter()
                deadline = saved + WATCH_TIMEOUT_S
                while True:
                    now = _stat_key(pack)
                    if now != before:
                        before = now
                        with PackReader(pack) as reader:
                            if reader.get(asset_id) == data:
                                break
                    if time.perf_counter() > deadline:
                        raise BenchError("packer watch wrote no new pack in time")
                    time.sleep(WATCH_POLL_S)
                seconds = time.perf_counter() - saved
                executed = build_line()["processed"]
                samples.append(Sample(seconds, _peak_rss_mib(proc.pid), executed, None))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise BenchError(f"packer watch exited {proc.returncode} after SIGTERM")
        return samples

    def _snapshot_for_restore(self, scenario: str) -> Callable[[], None]:
        target = self.meta.target
        if scenario == "change-one":
            return _restorer(self.target_input())
        if scenario == "rename-one":
            return _restorer(os.path.join(self.ws, self.current(target), "asset.json"))
        if scenario == "mv-one":

            def move_back() -> None:
                if self.current(target) != target:
                    self.packer_mv(self.current(target), target)
                    self.moved.pop(target, None)

            return move_back
        if scenario in ("touch-one", "touch-all"):
            # Put the mtimes back, so tools that trust mtimes (plain doit, ninja) stay up to
            # date across invocations instead of re-hashing every file at every later no-op.
            paths = [self.target_input()] if scenario == "touch-one" else list(self.all_files())
            times = {}
            for path in paths:
                st = os.stat(path)
                times[path] = (st.st_atime_ns, st.st_mtime_ns)

            def restore_times() -> None:
                for path, ns in times.items():
                    os.utime(path, ns=ns)
                self.bulk_mutation_at = time.time()

            return restore_times
        return lambda: None

    def run(self) -> None:
        self.write_plain()
        self.write_ninja()
        write_stamp(self.ws, self.n, self.opts.seed, "dirty")
        with self.servers:  # the S3 scenarios' server stops after the last scenario
            for scenario in self.opts.scenarios:
                tools = [
                    t
                    for t in DEFAULT_TOOLS[scenario]
                    if t in self.opts.tools
                    and (
                        t not in REFERENCES
                        or self.n <= REFERENCE_DEFAULT_MAX_N
                        or self.opts.tools_explicit
                    )
                ]
                if not tools:
                    continue
                self.log(f"n={self.n} {scenario}: {', '.join(tools)} ...")
                try:
                    rows = self.run_scenario(scenario, tools)
                except BenchError as err:
                    self.errors.append(f"n={self.n} {scenario}: {err}")
                    self.log(f"  FAILED: {err}")
                    continue
                self.rows.extend(rows)
                for row in rows:
                    self.log("  " + format_row(row.to_json()))
        if not self.moved:
            write_stamp(self.ws, self.n, self.opts.seed, "clean")


# --- report -----------------------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    import doit

    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    ninja = _ninja_binary()
    ninja_version = ""
    if ninja:
        ninja_version = subprocess.run(
            [ninja, "--version"], capture_output=True, text=True
        ).stdout.strip()
    # Where the measured processes import packer from (PYTHONPATH may point at another copy).
    where = subprocess.run(
        [sys.executable, "-c", "import packer, os; print(os.path.dirname(packer.__file__))"],
        capture_output=True,
        text=True,
        env=_child_env(),
        cwd=HERE,  # not REPO: there, the checkout's packer/ would shadow PYTHONPATH
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": usable,
        "python": platform.python_version(),
        "doit": ".".join(str(part) for part in doit.__version__),
        "ninja": ninja_version,
        "packer_commit": commit or "unknown",
        "packer_path": where,
        "platform": platform.platform(),
    }


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, doit {m['doit']}, "
        f"ninja {m['ninja'] or '-'}, packer {m['packer_commit']} ({m['packer_path']})"
    )


_HEADER = (
    f"{'n':>7}  {'scenario':<11} {'tool':<13} {'median_s':>9} {'min_s':>8} {'max_s':>8} "
    f"{'runs':>4} {'rss_mib':>8}  {'executed':>9} {'new_cache':>9}"
)


def format_row(row: dict[str, Any]) -> str:
    def spread(values: list[int] | None) -> str:
        if not values:
            return "-"
        low, high = min(values), max(values)
        return str(low) if low == high else f"{low}-{high}"

    return (
        f"{row['n']:>7}  {row['scenario']:<11} {row['tool']:<13} {row['median_s']:>9.3f} "
        f"{row['min_s']:>8.3f} {row['max_s']:>8.3f} {row['runs']:>4} {row['peak_rss_mib']:>8.1f}  "
        f"{spread(row.get('executed')):>9} {spread(row.get('new_cache_entries')):>9}"
    )


def _find(rows: list[dict[str, Any]], n: int, scenario: str, tool: str) -> dict[str, Any] | None:
    for row in rows:
        if (row["n"], row["scenario"], row["tool"]) == (n, scenario, tool):
            return row
    return None


def compute_goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals as ratios (or facts), each PASS, MISS or N/A (not measured)."""
    goals: list[dict[str, Any]] = []

    def ratio(
        goal: str,
        n: int,
        tool: str,
        num: tuple[int, str, str],
        den: tuple[int, str, str],
        limit: float,
        text: str,
    ) -> None:
        a, b = _find(rows, *num), _find(rows, *den)
        if (a is None or b is None) and tool == "packer-build" and "ninja" not in den:
            return  # packer-build is optional in most scenarios; packer-doit always reports
        value = a["median_s"] / b["median_s"] if a and b and b["median_s"] > 0 else None
        goals.append(
            {
                "goal": goal,
                "n": n,
                "tool": tool,
                "text": text,
                "value": None if value is None else round(value, 3),
                "limit": limit,
                "status": "N/A" if value is None else ("PASS" if value <= limit else "MISS"),
            }
        )

    n = 10_000
    for tool in PACKER_TOOLS:
        ratio("noop_vs_plain_doit", n, tool, (n, "noop", tool), (n, "noop", "plain-doit"), 0.5,
              "no-op / plain doit's no-op")  # fmt: skip
        ratio("noop_vs_walk_parse", n, tool, (n, "noop", tool), (n, "noop", "walk-parse"), 3.0,
              "no-op / walk+stat+parse floor")  # fmt: skip
        ratio("change_one_vs_noop", n, tool, (n, "change-one", tool), (n, "noop", tool), 1.2,
              "one content change / own no-op")  # fmt: skip
        ratio("touch_one_vs_noop", n, tool, (n, "touch-one", tool), (n, "noop", tool), 1.2,
              "touch one / own no-op")  # fmt: skip
        ratio("touch_all_vs_noop", n, tool, (n, "touch-all", tool), (n, "noop", tool), 2.0,
              "touch all / own no-op")  # fmt: skip
        ratio("clean_vs_plain_doit", n, tool, (n, "clean", tool), (n, "clean", "plain-doit"), 1.0,
              "clean build / plain doit's clean build")  # fmt: skip
    for scenario in NO_REPROCESS_SCENARIOS:
        for tool in PACKER_TOOLS:
            row = _find(rows, n, scenario, tool)
            if row is None and tool == "packer-build":
                continue
            counts = row.get("new_cache_entries") if row else None
            value = max(counts) if counts else None
            goals.append(
                {
                    "goal": f"{scenario.replace('-', '_')}_reprocesses_none",
                    "n": n,
                    "tool": tool,
                    "text": f"{scenario}: new .packer/cache entries per build (kind runs)",
                    "value": value,
                    "limit": 0,
                    "status": "N/A" if value is None else ("PASS" if value == 0 else "MISS"),
                }
            )
    for big, small, scale in ((100_000, n, 12.0), (1_000_000, 100_000, 10.0)):
        for tool in PACKER_TOOLS:
            text = f"no-op at {big:,} / no-op at {small:,}"
            ratio(f"noop_{big // 1000}k_vs_{small // 1000}k", big, tool, (big, "noop", tool),
                  (small, "noop", tool), scale, text)  # fmt: skip
    for big, limit in ((100_000, 1024), (1_000_000, 3072)):
        big_rows = [r for r in rows if r["n"] == big and r["tool"] in PACKER_TOOLS]
        peak = max((r["peak_rss_mib"] for r in big_rows), default=None)
        goals.append(
            {
                "goal": f"peak_rss_{big // 1000}k",
                "n": big,
                "tool": "packer-*",
                "text": f"peak RSS of any packer run at {big:,} (MiB)",
                "value": peak,
                "limit": limit,
                "status": "N/A" if peak is None else ("PASS" if peak <= limit else "MISS"),
            }
        )
    ratio("watch_vs_build", n, WATCH_TOOL, (n, "watch", WATCH_TOOL), (n, "watch", "packer-build"),
          0.5, "watch: save to verified new pack / packer build after it")  # fmt: skip
    for remote, named in (("cache", "file://"), ("s3", "S3")):
        ratio(f"{remote}_fresh_vs_clean", n, "packer-build", (n, f"{remote}-fresh", "packer-build"),
              (n, "clean", "packer-build"), 0.35,
              f"fresh clone from a warm {named} remote / clean build")  # fmt: skip
        ratio(f"{remote}_upload_vs_clean", n, "packer-build",
              (n, f"{remote}-upload", "packer-build"), (n, "clean", "packer-build"), 1.3,
              f"clean build uploading to an empty {named} remote / clean build")  # fmt: skip
        _shards_goal(goals, rows, n, remote, named)
    ratio("stretch_noop_vs_ninja", n, "packer-build", (n, "noop", "packer-build"),
          (n, "noop", "ninja"), 3.0, "stretch: packer build no-op / ninja no-op")  # fmt: skip
    return goals


def _shards_goal(
    goals: list[dict[str, Any]], rows: list[dict[str, Any]], n: int, remote: str, named: str
) -> None:
    """Three shards and an assembly on a remote: same bytes, each kind run once, none after."""
    assembly = _find(rows, n, f"{remote}-shards", "assemble")
    if assembly is None:
        return
    exact = (
        assembly["same_bytes"]
        and assembly["kinds_run_in_shards"] == assembly["assets"]
        and assembly["executed"] == [0]
    )
    goals.append(
        {
            "goal": f"{remote}_shards_same_bytes",
            "n": n,
            "tool": "packer-build",
            "text": f"{SHARDS} shards + assembly, {named}: same bytes, each kind once, none after",
            "value": int(exact),
            "limit": 1,
            "status": "PASS" if exact else "MISS",
        }
    )


def format_goal(goal: dict[str, Any]) -> str:
    value = goal["value"]
    shown = "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
    bound = f"<= {goal['limit']}"
    return (
        f"{goal['status']:<4}  n={goal['n']:<7} {goal['tool']:<13} {shown:>9} {bound:<8} "
        f"{goal['text']}"
    )


def report(
    m: dict[str, Any], rows: list[dict[str, Any]], goals: list[dict[str, Any]], log: Log
) -> None:
    log("")
    log(f"machine: {machine_line(m)}")
    log(_HEADER)
    log("-" * len(_HEADER))
    for row in rows:
        log(format_row(row))
    log("")
    log("goals (ratios of medians; N/A: not measured in this invocation)")
    for goal in goals:
        log(format_goal(goal))


def run_bench(opts: Options, log: Log = print) -> bool:
    """Run every size; print the table and goals; write ``opts.out``. False on any failure."""
    m = machine()
    log(f"machine: {machine_line(m)}")
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    started = time.time()
    try:
        for n in opts.sizes:
            ws, meta = ensure_workspace(opts.bench_dir, n, opts.seed, fresh=opts.fresh, log=log)
            bench = SizeBench(n, ws, meta, opts, log)
            try:
                bench.run()
            finally:
                rows.extend(row.to_json() for row in bench.rows)
                errors.extend(bench.errors)
                _write(opts, m, rows, errors, started)
    finally:
        LAUNCHER.close()
    goals = compute_goals(rows)
    _write(opts, m, rows, errors, started, goals)
    report(m, rows, goals, log)
    for error in errors:
        log(f"error: {error}")
    log(f"wrote {os.path.relpath(opts.out)} ({time.time() - started:.0f} s)")
    return not errors


def _write(
    opts: Options,
    m: dict[str, Any],
    rows: list[dict[str, Any]],
    errors: list[str],
    started: float,
    goals: list[dict[str, Any]] | None = None,
) -> None:
    data = {
        "format": BENCH_FORMAT,
        "machine": m,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "params": {
            "sizes": list(opts.sizes),
            "runs": opts.runs,
            "clean_runs": opts.clean_runs,
            "scenarios": list(opts.scenarios),
            "tools": list(opts.tools),
            "seed": opts.seed,
        },
        "rows": rows,
        "goals": goals if goals is not None else compute_goals(rows),
        "errors": errors,
    }
    os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
    tmp = f"{opts.out}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, opts.out)


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _peak_rss_mib(pid: int) -> float:
    """A live process's peak RSS so far (Linux's VmHWM), 0 where /proc does not say."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _write_if_changed(path: str, text: str) -> None:
    """Write ``text`` unless the file already holds it (its mtime then stays, so the reference
    tools see no change)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    except OSError:
        pass
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _restorer(path: str) -> Callable[[], None]:
    """A function that puts the file at ``path`` back to its present bytes."""
    with open(path, "rb") as handle:
        original = handle.read()

    def restore() -> None:
        with open(path, "wb") as handle:
            handle.write(original)

    return restore
