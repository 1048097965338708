"""The ``fuzz`` doit task, for the repository's top-level dodo.py::

    from tests.fuzz import task_fuzz

Then, from the repository root::

    doit fuzz                                   # 500 examples of up to 40 steps
    doit fuzz --examples 2000 --steps 60 --seed 7
    doit fuzz --subprocess                      # doit and packer as real processes (slower)

It runs tests/test_state_machine.py under pytest with the ``release`` hypothesis profile and
prints how many examples and steps ran (from build/fuzz-stats.json, which the machine writes)
and hypothesis' own statistics. This file is not collected by pytest (its name does not match
``test_*.py``); the small CI budget runs with the rest of the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

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
    long = "subprocess" if name == "subprocesses" else name
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
