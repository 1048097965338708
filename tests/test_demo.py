"""The repository's own dodo.py builds the committed demo workspace, and leaves it untouched.

The dodo.py and fixtures/demo are copied into tmp_path with their relative layout, so the build
writes the copy's build/ and never the checkout's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import wave
from pathlib import Path
from typing import Any

import pytest
from conftest import run_doit
from PIL import Image

from packer.pack import PackReader, verify_pack

REPO = Path(__file__).resolve().parent.parent
DEMO_REL = Path("fixtures") / "demo"
IMAGE_FORMATS = {"rgba8": (1, "RGBA"), "rgb8": (2, "RGB"), "l8": (3, "L")}


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's sha256, or "dir" for a folder."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = "dir"
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def expected_text(data: bytes) -> bytes:
    text = data.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text = text.rstrip("\n")
    return (text + "\n").encode() if text else b""


def check_entry(blob: bytes, decl: dict[str, Any], folder: Path) -> None:
    """``blob`` is what docs/kinds.md says the asset's kind makes of its inputs."""
    inputs = [(folder / name).read_bytes() for name in decl["inputs"]]
    kind, params = decl["kind"], decl.get("params", {})
    if kind == "raw":
        assert blob == b"".join(inputs)
    elif kind == "text":
        assert blob == b"".join(expected_text(data) for data in inputs)
    elif kind == "json":
        value = json.loads(inputs[0])
        assert json.loads(blob) == value
        canon = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert blob == canon.encode()
    elif kind == "image":
        code, mode = IMAGE_FORMATS[params.get("format", "rgba8")]
        magic, version, fmt, width, height = struct.unpack_from("<4sHHII", blob)
        with Image.open(io.BytesIO(inputs[0])) as image:
            assert (width, height) == image.size
            pixels = image.convert(mode).tobytes()
        assert (magic, version, fmt) == (b"PKIM", 1, code)
        assert blob[16:] == pixels
    elif kind == "audio":
        magic, version, channels, rate, width, reserved, frames = struct.unpack_from(
            "<4sHHIHHI", blob
        )
        with wave.open(io.BytesIO(inputs[0])) as handle:
            params_wav = handle.getparams()
            samples = handle.readframes(params_wav.nframes)
        assert (magic, version, reserved) == (b"PKAU", 1, 0)
        assert (channels, rate, width, frames) == (
            params_wav.nchannels,
            params_wav.framerate,
            params_wav.sampwidth,
            params_wav.nframes,
        )
        assert blob[20:] == samples
    else:
        pytest.fail(f"the demo uses a kind this test does not know: {kind}")


def test_repo_dodo_builds_the_demo_without_touching_fixtures(tmp_path: Path) -> None:
    shutil.copy2(REPO / "dodo.py", tmp_path / "dodo.py")
    shutil.copytree(REPO / DEMO_REL, tmp_path / DEMO_REL)
    # The dodo also declares the repository's own tasks (bench, fuzz); their creators must import.
    for module in ("tests/bench/tasks.py", "tests/fuzz.py"):
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / module, tmp_path / module)
    demo = tmp_path / DEMO_REL
    before = tree_digest(tmp_path / "fixtures")

    first = run_doit(tmp_path, timeout=120)
    assert first.code == 0, first.out + first.err

    registry = json.loads((demo / "registry.json").read_text(encoding="utf-8"))
    ids = sorted(entry["asset_id"] for entry in registry["assets"])
    assert sorted(first.executed) == sorted([*(f"asset:{i}" for i in ids), "pack"])
    assert first.executed[-1] == "pack"

    pack = tmp_path / "build" / "demo.pack"
    manifest_path = tmp_path / "build" / "demo.manifest.json"
    assert verify_pack(str(pack), str(manifest_path)).entry_count == len(ids)

    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["pack"] == "demo.pack"
    assert [a["asset_id"] for a in manifest["assets"]] == ids
    decls = {}
    for entry in registry["assets"]:
        folder = demo / entry["path"]
        decls[entry["asset_id"]] = (json.loads((folder / "asset.json").read_bytes()), folder)
    with PackReader(str(pack)) as reader:
        for listed in manifest["assets"]:
            decl, folder = decls[listed["asset_id"]]
            assert (listed["asset_name"], listed["kind"]) == (decl["asset_name"], decl["kind"])
            check_entry(reader.get(listed["asset_id"]), decl, folder)
        hero = reader.get_by_name("sprites/hero")
        jump = reader.get_by_name("sounds/jump")
    assert struct.unpack_from("<II", hero, 8) == (16, 16)
    assert struct.unpack_from("<HIH", jump, 6) == (1, 22050, 1)

    second = run_doit(tmp_path, timeout=120)
    assert second.code == 0, second.out + second.err
    assert second.executed == ()
    assert sorted(second.up_to_date) == sorted(first.executed)

    assert tree_digest(tmp_path / "fixtures") == before
