"""Pack a real asset set plain and with zstd: sizes, build times, PackReader's read rate.

    python -m tests.bench.assetset SOURCE [SOURCE ...] [--levels 3,9,19] [--work DIR]

Each SOURCE is a folder of files someone else made (a game library's bundled resources, say).
Every file becomes one asset of its own, its kind by suffix: images ``image``, ``.wav``
``audio``, ``.json`` ``json``, anything else ``raw``. Files a kind refuses are left out and
counted by reason (the kind itself is asked, as a build would). Then, as whole processes: a
clean plain build (``doit``), a rebuild of the pack at each zstd level (only the pack task
runs), and a clean build at the default level; after each, every entry is read through
``PackReader`` (best of three passes) for the rate in MB/s of returned bytes. Goals printed
as PASS/MISS: the compressed pack at the default level at most the sources' own bytes, and
reading it at least 500 MB/s. Results also go to ``<work>/assetset.json``.
Imports: stdlib, packer (the kinds, to screen inputs; the pack reader, to read).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from packer import api
from packer.errors import PackerError
from packer.kinds.base import KindContext
from packer.kinds.registry import builtin_kinds
from packer.model import ZSTD_LEVEL_DEFAULT
from packer.pack import PackReader

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tga", ".webp", ".tif", ".tiff"}
SKIPPED_SUFFIXES = {".py", ".pyc", ".pyi"}
"""Code, not assets: a wheel's modules sit beside its resources."""
READ_GOAL_MBPS = 500.0
SIZE_GOAL_RATIO = 1.0


def kind_of(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return {".wav": "audio", ".json": "json"}.get(suffix, "raw")


@dataclass
class AssetSet:
    name: str
    source: str
    files: int = 0
    source_bytes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    runs: list[dict[str, object]] = field(default_factory=list)


def asset_files(source: str) -> list[str]:
    """Files under ``source``, relative, sorted; code and package metadata left out."""
    found = []
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.endswith(".dist-info") and d != "__pycache__")
        for name in files:
            if os.path.splitext(name)[1].lower() not in SKIPPED_SUFFIXES:
                found.append(os.path.relpath(os.path.join(folder, name), source))
    return sorted(found)


def refusal(kind: str, name: str, data: bytes) -> str | None:
    """Why the kind refuses this input with its default params, or None when it takes it."""
    processor = builtin_kinds()[kind]
    context = KindContext(
        input_names=(name,), inputs=(data,), params=processor.Params.model_validate({}), deps={}
    )
    try:
        processor.process(context)
    except PackerError as err:
        # The reason without the file name the message starts with, so refusals group.
        return err.message.removeprefix(f"{name}: ").split(" (")[0][:80]
    return None


def make_workspace(assets: AssetSet, root: str) -> None:
    shutil.rmtree(root, ignore_errors=True)
    api.init(root, "game")
    for rel in asset_files(assets.source):
        with open(os.path.join(assets.source, rel), "rb") as handle:
            data = handle.read()
        kind, name = kind_of(rel), os.path.basename(rel)
        why = refusal(kind, name, data)
        if why is not None:
            assets.refused[f"{kind}: {why}"] += 1
            continue
        folder = os.path.join(root, "assets", rel.replace(".", "_"))
        os.makedirs(folder)
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)
        decl = {"asset_name": rel, "kind": kind, "inputs": [name]}
        with open(os.path.join(folder, "asset.json"), "w", encoding="utf-8") as handle:
            json.dump(decl, handle)
        assets.files += 1
        assets.source_bytes += len(data)
        assets.kinds[kind] += 1


def set_level(root: str, level: int | None) -> None:
    path = os.path.join(root, "packer.toml")
    with open(path, encoding="utf-8") as handle:
        text = handle.read().split("\n[pack]\n")[0]
    if level is not None:
        text += f'\n[pack]\ncompression = "zstd"\nlevel = {level}\n'
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def timed_doit(root: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "doit"], cwd=root, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"build failed in {root}:\n{done.stdout}{done.stderr}")
    return elapsed


def read_rate(pack: str) -> tuple[int, float]:
    """Bytes PackReader returns for every entry, and the best of three passes in MB/s."""
    best = float("inf")
    total = 0
    for _ in range(3):
        start = time.perf_counter()
        with PackReader(pack) as reader:
            total = sum(len(reader.get(asset_id)) for asset_id in reader.asset_ids)
        best = min(best, time.perf_counter() - start)
    return total, total / best / 1e6


def measure(assets: AssetSet, root: str, level: int | None, clean: bool) -> None:
    if clean:
        for folder in ("build", ".packer"):
            shutil.rmtree(os.path.join(root, folder), ignore_errors=True)
    set_level(root, level)
    seconds = timed_doit(root)
    pack = os.path.join(root, "build", "game.pack")
    returned, rate = read_rate(pack)
    assets.runs.append(
        {
            "level": level,
            "clean": clean,
            "build_s": round(seconds, 2),
            "pack_bytes": os.path.getsize(pack),
            "ratio": round(os.path.getsize(pack) / assets.source_bytes, 3),
            "returned_bytes": returned,
            "read_mbps": round(rate),
        }
    )


def report(sets: list[AssetSet]) -> bool:
    ok = True
    for assets in sets:
        print(f"\n{assets.name}: {assets.files} assets, {assets.source_bytes:,} source bytes")
        print(f"  kinds: {dict(sorted(assets.kinds.items()))}")
        refused = sum(assets.refused.values())
        print(f"  refused: {refused} {dict(sorted(assets.refused.items()))}")
        columns = ("zstd level", 10), ("build", 6), ("s", 7), ("pack bytes", 13), ("x src", 6)
        print("  " + " ".join(f"{title:>{width}}" for title, width in columns) + " read MB/s")
        for run in assets.runs:
            level = "plain" if run["level"] is None else run["level"]
            what = "clean" if run["clean"] else "pack"
            print(
                f"  {level!s:>10} {what:>6} {run['build_s']:>7} {run['pack_bytes']:>13,}"
                f" {run['ratio']:>6} {run['read_mbps']:>9}"
            )
        default = next(r for r in assets.runs if r["level"] == ZSTD_LEVEL_DEFAULT and r["clean"])
        for passed, line in (
            (
                float(default["ratio"]) <= SIZE_GOAL_RATIO,  # type: ignore[arg-type]
                f"pack at level {ZSTD_LEVEL_DEFAULT} / source bytes {default['ratio']} <= 1.0",
            ),
            (
                float(default["read_mbps"]) >= READ_GOAL_MBPS,  # type: ignore[arg-type]
                f"PackReader reads every entry at {default['read_mbps']} MB/s >= 500",
            ),
        ):
            print(f"  {'PASS' if passed else 'MISS'}  {line}")
            ok = ok and passed
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--levels", default="3,9,19")
    parser.add_argument("--work", default=os.path.join("build", "bench", "assetset"))
    args = parser.parse_args(argv)
    levels = sorted({int(level) for level in args.levels.split(",")} - {ZSTD_LEVEL_DEFAULT})
    sets = []
    for source in args.sources:
        name = os.path.basename(os.path.normpath(source))
        assets = AssetSet(name, source)
        root = os.path.abspath(os.path.join(args.work, name))
        make_workspace(assets, root)
        measure(assets, root, None, clean=True)
        for level in levels:
            measure(assets, root, level, clean=False)
        measure(assets, root, ZSTD_LEVEL_DEFAULT, clean=True)
        sets.append(assets)
    ok = report(sets)
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.work, "assetset.json"), "w", encoding="utf-8") as handle:
        json.dump(
            [{**vars(s), "kinds": dict(s.kinds), "refused": dict(s.refused)} for s in sets],
            handle,
            indent=2,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
