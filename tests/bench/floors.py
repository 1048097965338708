"""Floors: the least work any no-op build of a workspace must do, each run as its own process.

    python tests/bench/floors.py walk-parse WORKSPACE   # walk, parse every asset.json, stat inputs
    python tests/bench/floors.py hash-all WORKSPACE     # the same, then xxh3_128 every input

Standard library and xxhash only (no packer, no pydantic, no doit), so the time is the file
system and the interpreter, not any packer design choice. Prints one summary line.
"""

from __future__ import annotations

import json
import os
import sys


def walk(root: str) -> list[str]:
    """Folders under ``root`` holding an asset.json; folders starting with ``.`` are skipped."""
    found: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name == "asset.json":
                    found.append(folder)
    return found


def inputs_of(workspace: str) -> list[str]:
    """Walk ``assets/``, parse every asset.json, stat every input; the inputs' paths."""
    paths: list[str] = []
    for folder in walk(os.path.join(workspace, "assets")):
        with open(os.path.join(folder, "asset.json"), "rb") as handle:
            decl = json.loads(handle.read())
        for name in decl["inputs"]:
            path = os.path.join(folder, name)
            os.stat(path)
            paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    mode, workspace = argv
    paths = inputs_of(workspace)
    if mode == "walk-parse":
        print(f"walk-parse: {len(paths)} inputs")
        return 0
    if mode == "hash-all":
        import xxhash

        total = 0
        for path in paths:
            with open(path, "rb") as handle:
                data = handle.read()
            xxhash.xxh3_128_hexdigest(data)
            total += len(data)
        print(f"hash-all: {len(paths)} inputs, {total} bytes")
        return 0
    print(f"unknown mode {mode!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
