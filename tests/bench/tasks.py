"""The ``bench`` doit task, for the repository's top-level dodo.py::

    from tests.bench.tasks import task_bench

Then, from the repository root::

    doit bench                                  # N = 1,000 and 10,000
    doit bench --sizes 1000,10000,100000        # add N = 100,000
    doit bench --sizes 200 --runs 2 --clean-runs 1 --scenarios noop,change-one
"""

from __future__ import annotations

import os
from typing import Any

_SIZES_HELP = "comma-separated workspace sizes N (default 1000,10000; 100000 on request)"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _run(
    sizes: str,
    runs: int,
    clean_runs: int,
    scenarios: str,
    tools: str,
    fresh: bool,
    seed: int,
    out: str,
) -> bool:
    from .harness import ALL_TOOLS, SCENARIOS, Options, run_bench

    chosen_scenarios = SCENARIOS if scenarios == "all" else tuple(_split(scenarios))
    chosen_tools = ALL_TOOLS if tools == "all" else tuple(_split(tools))
    unknown = [s for s in chosen_scenarios if s not in SCENARIOS]
    unknown += [t for t in chosen_tools if t not in ALL_TOOLS]
    if unknown:
        print(f"error: unknown scenario or tool {unknown[0]!r}")
        print(f"  scenarios: {', '.join(SCENARIOS)}")
        print(f"  tools: {', '.join(ALL_TOOLS)}")
        return False
    opts = Options(
        sizes=tuple(int(size.replace("_", "")) for size in _split(sizes)),
        runs=runs,
        clean_runs=clean_runs,
        scenarios=chosen_scenarios,
        tools=chosen_tools,
        tools_explicit=tools != "all",
        fresh=fresh,
        seed=seed,
    )
    if out:
        opts.out = os.path.abspath(out)
    return run_bench(opts)


def _param(name: str, kind: type, default: object, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "long": name.replace("_", "-"),
        "type": kind,
        "default": default,
        "help": text,
    }


def task_bench() -> dict[str, Any]:
    """Benchmark packer against plain doit, ninja and the floors; write build/bench.json.

    Generates (or reuses) synthetic workspaces under build/bench/ws-<N>/ and times each
    scenario as whole processes, alternating tools run by run; prints a table and the goals
    (PASS/MISS) and writes build/bench.json. See tests/bench/README.md.

    Params:
      --sizes N,N,...    workspace sizes (default 1000,10000; add 100000 on request)
      --runs K           runs per scenario and tool (default 0: 5 for N <= 10,000, else 3)
      --clean-runs K     runs of clean and del-state (default 0: 3 for N <= 10,000, else 1)
      --scenarios LIST   comma-separated subset of: clean, noop, change-one, touch-one,
                         touch-all, rename-one, mv-one, del-state, watch, cache-upload,
                         cache-fresh, cache-shards, s3-upload, s3-fresh, s3-shards
                         (default all)
      --tools LIST       comma-separated subset of: packer-doit, packer-build, packer-watch,
                         plain-doit, ninja, import, walk-parse, hash-all (default all)
      --fresh            regenerate the workspaces even if a matching one exists
      --seed S           generator seed (default 1)
      --out PATH         result file (default <repository>/build/bench.json)
    """
    return {
        "actions": [_run],
        "params": [
            _param("sizes", str, "1000,10000", _SIZES_HELP),
            _param("runs", int, 0, "runs per scenario and tool (0: 5 for N <= 10,000, else 3)"),
            _param("clean_runs", int, 0, "runs of clean, del-state (0: 3 for N <= 10,000, else 1)"),
            _param("scenarios", str, "all", "comma-separated scenarios (default all)"),
            _param("tools", str, "all", "comma-separated tools (default all)"),
            _param("fresh", bool, False, "regenerate the workspaces"),
            _param("seed", int, 1, "generator seed"),
            _param("out", str, "", "result file (default: <repository>/build/bench.json)"),
        ],
        "verbosity": 2,
        "uptodate": [False],
    }
