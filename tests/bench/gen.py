"""Synthetic workspaces for the benchmark: deterministic content from a seeded ``random.Random``.

``ensure_workspace(bench_dir, n, seed)`` makes (or reuses) ``<bench_dir>/ws-<n>/``: a real packer
workspace created with ``packer init``, filled with asset folders, registered once with
``packer sync``. Beside it, ``ws-<n>.meta.json`` records what the harness needs to know about the
assets (folders, inputs, deps, which asset the single-asset scenarios touch) so that it never
has to scan the workspace itself.

The mix (fractions of N):
- ``raw`` (the rest, ~88%): one input of 4-64 KiB (log-uniform), 5% of them two inputs;
  1% of them depend on one earlier raw asset;
- ``text`` (6%): 0.2-4 KiB of UTF-8 lines, some with CRLF line ends;
- ``json`` (4%): small level-like documents; a quarter depend on 1-3 earlier text/image assets;
- ``image``: min(300, N // 30) small PNGs (8-64 px square, RGBA, RGB or grey).

From ``SMALL_FROM`` assets up, raw inputs are 16 times smaller (256 B-4 KiB), so that a
million-asset workspace, its artifacts and its pack fit one disk (about 3 GB of inputs instead of
30 GB); the files and folders are as many as ever, which is what a no-op's cost follows.

A workspace is reused when its stamp (``bench-stamp.json``) names the same generator version, N
and seed and says the last run left it clean (scenarios mutate the workspace and restore it at the
end; an interrupted run leaves the stamp "dirty" and the workspace is generated again).
Imports: stdlib, Pillow (for the PNGs).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

GENERATOR_VERSION = 1
SMALL_FROM = 1_000_000
"""The workspace size from which raw inputs are drawn 16 times smaller (see the module doc)."""
STAMP_FILE = "bench-stamp.json"

_WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "level",
    "player",
    "enemy",
    "coin",
    "jump",
    "score",
    "health",
    "door",
    "key",
    "chest",
    "tile",
    "map",
    "music",
    "sound",
    "sprite",
    "castle",
    "forest",
    "cave",
    "water",
    "fire",
    "ice",
    "stone",
    "gold",
    "silver",
    "bronze",
    "hero",
    "world",
)


@dataclass
class AssetSpec:
    folder: str
    """Workspace-relative folder of the asset (POSIX)."""
    name: str
    kind: str
    inputs: list[str]
    """File names inside the folder."""
    deps: list[str] = field(default_factory=list)
    """Folders of the assets this one depends on."""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkspaceMeta:
    n: int
    seed: int
    generator: int
    assets: list[AssetSpec]
    target: str
    """Folder of the raw asset the single-asset scenarios change (no asset depends on it)."""

    @property
    def by_folder(self) -> dict[str, AssetSpec]:
        return {a.folder: a for a in self.assets}

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "seed": self.seed,
            "generator": self.generator,
            "target": self.target,
            "assets": [asdict(a) for a in self.assets],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkspaceMeta:
        return cls(
            n=data["n"],
            seed=data["seed"],
            generator=data["generator"],
            target=data["target"],
            assets=[AssetSpec(**a) for a in data["assets"]],
        )


def _text(rng: random.Random) -> bytes:
    lines = []
    size = int(200 * 20 ** rng.random())
    total = 0
    while total < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
        lines.append(line)
        total += len(line) + 1
    sep = "\r\n" if rng.random() < 0.2 else "\n"
    return (sep.join(lines) + sep).encode("utf-8")


def _json(rng: random.Random) -> bytes:
    width, height = rng.randint(4, 24), rng.randint(4, 16)
    doc = {
        "name": " ".join(rng.choice(_WORDS) for _ in range(2)),
        "size": [width, height],
        "tiles": [[rng.randint(0, 15) for _ in range(width)] for _ in range(height)],
        "spawn": {"x": rng.randint(0, width - 1), "y": rng.randint(0, height - 1)},
        "music": rng.choice(_WORDS),
    }
    return json.dumps(doc, indent=2).encode("utf-8") + b"\n"


def _png(rng: random.Random, mode: str) -> bytes:
    from PIL import Image

    side = rng.choice((8, 16, 16, 32, 32, 64))
    channels = {"RGBA": 4, "RGB": 3, "L": 1}[mode]
    # Blocky pixels compress like sprites do, rather than like noise.
    block = rng.randint(1, 4)
    row: list[int] = []
    pixels = bytearray()
    for y in range(side):
        if y % block == 0:
            row = []
            for _x in range(0, side, block):
                px = [rng.randrange(256) for _ in range(channels)]
                for _ in range(block):
                    row.extend(px)
            row = row[: side * channels]
        pixels.extend(row)
    image = Image.frombytes(mode, (side, side), bytes(pixels))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def plan_assets(
    n: int, seed: int, sink: Callable[[str, bytes], None] | None = None
) -> tuple[list[AssetSpec], str]:
    """The asset specs for ``n`` and the target folder; each input file goes to ``sink``.

    ``sink(workspace-relative path, bytes)`` is called as each file is drawn, so the contents of
    a large workspace are never all in memory at once.
    """
    rng = random.Random(seed * 1_000_003 + n)
    n_image = min(300, n // 30)
    n_text = round(n * 0.06)
    n_json = round(n * 0.04)
    n_raw = n - n_image - n_text - n_json
    if n_raw < 1:
        raise ValueError(f"N={n} is too small for the mix")
    raw_base = 256 if n >= SMALL_FROM else 4096
    kinds = ["raw"] * n_raw + ["text"] * n_text + ["json"] * n_json + ["image"] * n_image
    rng.shuffle(kinds)
    area = {"raw": "data", "text": "text", "json": "levels", "image": "sprites"}
    ext = {"raw": ".bin", "text": ".txt", "json": ".json", "image": ".png"}
    specs: list[AssetSpec] = []
    made: dict[str, list[str]] = {"raw": [], "text": [], "json": [], "image": []}
    counters = dict.fromkeys(area, 0)
    for kind in kinds:
        index = counters[kind]
        counters[kind] += 1
        group = index // 100
        stem = f"{kind[0]}{index:06d}"
        folder = f"assets/{area[kind]}/g{group:03d}/{stem}"
        name = f"{area[kind]}/{index:06d}"
        params: dict[str, Any] = {}
        deps: list[str] = []
        if kind == "raw":
            count = 2 if rng.random() < 0.05 else 1
            inputs = [
                f"part{i}{ext[kind]}" if count > 1 else f"{stem}{ext[kind]}" for i in range(count)
            ]
            contents = [rng.randbytes(int(raw_base * 16 ** rng.random())) for _ in inputs]
            if made["raw"] and rng.random() < 0.01:
                deps = [rng.choice(made["raw"])]
        elif kind == "text":
            inputs = [f"{stem}{ext[kind]}"]
            contents = [_text(rng)]
            if rng.random() < 0.3:
                params = {"trailing_newline": rng.random() < 0.5}
        elif kind == "json":
            inputs = [f"{stem}{ext[kind]}"]
            contents = [_json(rng)]
            pool = made["text"] + made["image"]
            if pool and rng.random() < 0.25:
                deps = sorted(set(rng.sample(pool, min(len(pool), rng.randint(1, 3)))))
        else:
            mode = rng.choice(("RGBA", "RGBA", "RGB", "L"))
            inputs = [f"{stem}{ext[kind]}"]
            contents = [_png(rng, mode)]
            params = {"format": {"RGBA": "rgba8", "RGB": "rgb8", "L": "l8"}[mode]}
        spec = AssetSpec(folder, name, kind, inputs, deps, params)
        specs.append(spec)
        made[kind].append(folder)
        if sink is not None:
            for input_name, content in zip(inputs, contents, strict=True):
                sink(f"{folder}/{input_name}", content)
    depended = {d for s in specs for d in s.deps}
    singles = [s.folder for s in specs if s.kind == "raw" and len(s.inputs) == 1]
    candidates = [f for f in singles if f not in depended]
    target = candidates[len(candidates) // 2]
    return specs, target


def declaration(spec: AssetSpec, by_folder: dict[str, AssetSpec]) -> bytes:
    """The asset.json text of ``spec`` (two-space indent, as people write them)."""
    data: dict[str, Any] = {"asset_name": spec.name, "kind": spec.kind, "inputs": spec.inputs}
    if spec.params:
        data["params"] = spec.params
    if spec.deps:
        data["deps"] = [by_folder[d].name for d in spec.deps]
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _packer(args: list[str], cwd: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "packer", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"packer {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


def read_stamp(ws: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(ws, STAMP_FILE), encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
            return data
    except (OSError, ValueError):
        return None


def write_stamp(ws: str, n: int, seed: int, state: str) -> None:
    stamp = {"generator": GENERATOR_VERSION, "n": n, "seed": seed, "state": state}
    tmp = os.path.join(ws, STAMP_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(stamp, handle)
    os.replace(tmp, os.path.join(ws, STAMP_FILE))


def meta_path(bench_dir: str, n: int) -> str:
    return os.path.join(bench_dir, f"ws-{n}.meta.json")


def ensure_workspace(
    bench_dir: str, n: int, seed: int, *, fresh: bool = False, log: Any = print
) -> tuple[str, WorkspaceMeta]:
    """The workspace folder for ``n`` and its meta, generated unless a matching one is present."""
    bench_dir = os.path.abspath(bench_dir)
    ws = os.path.join(bench_dir, f"ws-{n}")
    stamp = read_stamp(ws)
    wanted = {"generator": GENERATOR_VERSION, "n": n, "seed": seed, "state": "clean"}
    if not fresh and stamp == wanted and os.path.exists(meta_path(bench_dir, n)):
        with open(meta_path(bench_dir, n), encoding="utf-8") as handle:
            return ws, WorkspaceMeta.from_json(json.load(handle))
    log(f"generating workspace N={n} in {os.path.relpath(ws)} ...")
    for sibling in (ws, f"{ws}-plain", f"{ws}-ninja"):
        shutil.rmtree(sibling, ignore_errors=True)
    os.makedirs(bench_dir, exist_ok=True)
    _packer(["init", ws, "--name", f"bench-{n}"], cwd=bench_dir)

    def write(rel: str, content: bytes) -> None:
        path = os.path.join(ws, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)

    specs, target = plan_assets(n, seed, write)
    by_folder = {s.folder: s for s in specs}
    for spec in specs:
        write(f"{spec.folder}/asset.json", declaration(spec, by_folder))
    _packer(["sync"], cwd=ws)
    meta = WorkspaceMeta(n, seed, GENERATOR_VERSION, specs, target)
    with open(meta_path(bench_dir, n), "w", encoding="utf-8") as handle:
        json.dump(meta.to_json(), handle)
    write_stamp(ws, n, seed, "clean")
    return ws, meta
