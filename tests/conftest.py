"""Shared helpers: real workspaces in tmp_path, the CLI in-process and as processes, real doit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from seaweed import S3Server, seaweed_server

from packer import api
from packer.cli import main as cli_main


def write_asset(
    root: Path,
    folder: str,
    decl: Mapping[str, Any] | str,
    files: Mapping[str, bytes | str] | None = None,
) -> Path:
    """Create ``root/folder`` holding an asset.json (a dict is dumped, a str written) and files."""
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    text = decl if isinstance(decl, str) else json.dumps(decl, indent=2)
    (path / "asset.json").write_text(text, encoding="utf-8")
    for name, content in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(content)
    return path


def text_asset(root: Path, folder: str, name: str, content: str = "hello\n", **extra: Any) -> Path:
    """A ``text`` asset with one input ``data.txt``."""
    decl = {"asset_name": name, "kind": "text", "inputs": ["data.txt"], **extra}
    return write_asset(root, folder, decl, {"data.txt": content})


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace made by ``packer init`` (name "game")."""
    root = tmp_path / "game"
    api.init(str(root), "game")
    return root


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``packer ARGS`` in-process through ``cli.main``; returns exit code, stdout, stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = cli_main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_packer(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """``python -m packer ARGS`` as a real process."""
    done = subprocess.run(
        [sys.executable, "-m", "packer", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class DoitRun:
    code: int
    out: str
    err: str
    executed: tuple[str, ...]
    """Tasks doit ran (``.  NAME``), in the order reported."""
    up_to_date: tuple[str, ...]
    """Tasks doit skipped as up to date (``-- NAME``)."""


def run_doit(
    root: Path | str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> DoitRun:
    """Plain ``doit ARGS`` in the workspace folder, as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "doit", *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    executed = tuple(line[3:] for line in done.stdout.splitlines() if line.startswith(".  "))
    skipped = tuple(line[3:] for line in done.stdout.splitlines() if line.startswith("-- "))
    return DoitRun(done.returncode, done.stdout, done.stderr, executed, skipped)


def built_template(
    factory: pytest.TempPathFactory, populate: Callable[[Path], None]
) -> tuple[Path, DoitRun]:
    """A module's template: a workspace ``game`` made by ``packer init``, filled by ``populate``
    and built once with plain doit; tests copy it rather than build again."""
    root = factory.mktemp("template") / "game"
    api.init(str(root), "game")
    populate(root)
    return root, run_doit(root)


def copy_built(template: Path, folder: Path) -> Path:
    """A copy of a built template as ``folder/game``: doit's state and packer's caches hold no
    absolute path, so everything in it is up to date where it lands."""
    root = folder / "game"
    shutil.copytree(template, root, symlinks=True)
    return root


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real SeaweedFS S3 server for the whole session (it takes seconds to start); tests
    keep apart by prefix. Its keys are values to pass on, never this process's environment."""
    with seaweed_server(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


def registry_json(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "registry.json").read_text(encoding="utf-8"))
    return data


def ids_by_name(root: Path) -> dict[str, str]:
    return {e["asset_name"]: e["asset_id"] for e in registry_json(root)["assets"]}


def pack_bytes(root: Path, name: str = "game") -> tuple[bytes, bytes]:
    """The pack and manifest bytes of a built workspace."""
    return (
        (root / "build" / f"{name}.pack").read_bytes(),
        (root / "build" / f"{name}.manifest.json").read_bytes(),
    )


__all__: Sequence[str] = [
    "DoitRun",
    "Result",
    "S3Server",
    "built_template",
    "copy_built",
    "ids_by_name",
    "pack_bytes",
    "registry_json",
    "run_doit",
    "run_packer",
    "text_asset",
    "write_asset",
]
