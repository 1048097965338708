"""The ``atlas`` kind through real builds: its entry parsed by hand from docs/kinds.md, every
rectangle's pixels compared with its source image as Pillow decodes it.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Result, pack_bytes, run_doit, run_packer, write_asset
from PIL import Image
from pydantic import ValidationError

from packer import api
from packer.errors import KindError
from packer.kinds.base import KindContext
from packer.kinds.registry import builtin_kinds
from packer.pack import PackReader

ATLAS = builtin_kinds()["atlas"]


def _png(width: int, height: int, seed: int, border: int = 0) -> bytes:
    """Random RGBA pixels (alpha never 0) inside ``border`` fully transparent pixels."""
    rnd = random.Random(seed)
    image = Image.new("RGBA", (width + 2 * border, height + 2 * border), (0, 0, 0, 0))
    inner = bytes(
        value
        for _ in range(width * height)
        for value in (
            rnd.randrange(256),
            rnd.randrange(256),
            rnd.randrange(256),
            rnd.randint(1, 255),
        )
    )
    if inner:
        image.paste(Image.frombytes("RGBA", (width, height), inner), (border, border))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


SPRITES: dict[str, bytes] = {
    "hero.png": _png(17, 23, seed=1),
    "walk/01.png": _png(40, 9, seed=2),
    "walk/02.png": _png(40, 9, seed=3),
    "coin.png": _png(8, 8, seed=4),
    "tree.png": _png(12, 61, seed=5),
    "wide.png": _png(70, 3, seed=6),
}


@dataclass(frozen=True)
class Rect:
    name: str
    x: int
    y: int
    w: int
    h: int
    trim_x: int
    trim_y: int
    source_w: int
    source_h: int


@dataclass(frozen=True)
class Atlas:
    rects: tuple[Rect, ...]
    width: int
    height: int
    texture: Image.Image


def parse(entry: bytes) -> Atlas:
    """The layout of docs/kinds.md, read with struct alone."""
    magic, version, zero, count, names_size = struct.unpack_from("<4sHHII", entry, 0)
    assert (magic, version, zero) == (b"PKAT", 1, 0)
    names_at = 16 + 40 * count
    names = entry[names_at : names_at + names_size]
    rects = []
    for index in range(count):
        offset, length, *fields = struct.unpack_from("<10I", entry, 16 + 40 * index)
        rects.append(Rect(names[offset : offset + length].decode(), *fields))
    image_at = names_at + names_size
    magic, version, code, width, height = struct.unpack_from("<4sHHII", entry, image_at)
    assert (magic, version, code) == (b"PKIM", 1, 1)
    pixels = entry[image_at + 16 :]
    assert len(pixels) == width * height * 4
    texture = Image.frombytes("RGBA", (width, height), pixels)
    return Atlas(tuple(rects), width, height, texture)


def _atlas_asset(
    root: Path,
    folder: str,
    files: Mapping[str, bytes],
    params: Mapping[str, Any] | None = None,
    inputs: Sequence[str] | None = None,
) -> None:
    decl = {
        "asset_name": folder,
        "kind": "atlas",
        "inputs": list(inputs if inputs is not None else files),
        "params": dict(params or {}),
    }
    write_asset(root, f"assets/{folder}", decl, files)


def _built_entry(root: Path, name: str, *doit_args: str) -> bytes:
    done = run_doit(root, *doit_args)
    assert done.code == 0, done.out + done.err
    with PackReader(str(root / "build/game.pack")) as reader:
        return reader.get_by_name(name)


def _check_against_sources(atlas: Atlas, sources: Mapping[str, bytes], padding: int) -> None:
    assert [r.name for r in atlas.rects] == sorted(sources, key=str.encode)
    for rect in atlas.rects:
        with Image.open(io.BytesIO(sources[rect.name])) as source:
            original = source.convert("RGBA")
        assert (rect.source_w, rect.source_h) == original.size
        box = (rect.trim_x, rect.trim_y, rect.trim_x + rect.w, rect.trim_y + rect.h)
        expected = original.crop(box).tobytes()
        got = atlas.texture.crop((rect.x, rect.y, rect.x + rect.w, rect.y + rect.h)).tobytes()
        assert got == expected, rect.name
        assert rect.x + rect.w <= atlas.width and rect.y + rect.h <= atlas.height
    # No two rectangles overlap, and at least `padding` pixels separate any two.
    for a in atlas.rects:
        for b in atlas.rects:
            if a is not b and a.w and b.w:
                apart = (
                    a.x + a.w + padding <= b.x
                    or b.x + b.w + padding <= a.x
                    or a.y + a.h + padding <= b.y
                    or b.y + b.h + padding <= a.y
                )
                assert apart, (a, b)
    # Every pixel outside the rectangles is transparent black.
    covered = Image.new("1", (atlas.width, atlas.height), 0)
    for rect in atlas.rects:
        covered.paste(1, (rect.x, rect.y, rect.x + rect.w, rect.y + rect.h))
    blank = Image.new("RGBA", atlas.texture.size, (0, 0, 0, 0))
    outside = Image.composite(blank, atlas.texture, covered)
    assert outside.tobytes() == bytes(4 * atlas.width * atlas.height)


def test_every_rectangle_holds_its_source_and_none_overlap(workspace: Path) -> None:
    _atlas_asset(workspace, "sheet", SPRITES)
    atlas = parse(_built_entry(workspace, "sheet"))
    _check_against_sources(atlas, SPRITES, padding=0)
    assert all((r.trim_x, r.trim_y) == (0, 0) for r in atlas.rects)
    assert all((r.w, r.h) == (r.source_w, r.source_h) for r in atlas.rects)
    # A tight layout: no texture can be narrower than wide.png or lower than tree.png, and this
    # one is within 10% of that bound.
    assert atlas.width * atlas.height <= 1.1 * 70 * 61


def test_padding_separates_rectangles_and_power_of_two_rounds_the_texture(workspace: Path) -> None:
    _atlas_asset(workspace, "sheet", SPRITES, {"padding": 3, "power_of_two": True})
    atlas = parse(_built_entry(workspace, "sheet"))
    _check_against_sources(atlas, SPRITES, padding=3)
    for side in (atlas.width, atlas.height):
        assert side & (side - 1) == 0


def test_trim_cuts_transparent_borders_and_records_the_offset(workspace: Path) -> None:
    sources = {
        "framed.png": _png(5, 7, seed=7, border=4),
        "plain.png": _png(6, 6, seed=8),
        "empty.png": _png(0, 0, seed=9, border=3),
    }
    _atlas_asset(workspace, "sheet", sources, {"trim": True, "padding": 1})
    atlas = parse(_built_entry(workspace, "sheet"))
    _check_against_sources(atlas, sources, padding=1)
    by_name = {r.name: r for r in atlas.rects}
    framed = by_name["framed.png"]
    assert (framed.trim_x, framed.trim_y, framed.w, framed.h) == (4, 4, 5, 7)
    assert (framed.source_w, framed.source_h) == (13, 15)
    assert (by_name["plain.png"].trim_x, by_name["plain.png"].w) == (0, 6)
    empty = by_name["empty.png"]
    assert (empty.x, empty.y, empty.w, empty.h, empty.trim_x, empty.trim_y) == (0,) * 6
    assert (empty.source_w, empty.source_h) == (6, 6)


def test_layout_ignores_declared_order_and_jobs(tmp_path: Path) -> None:
    names = list(SPRITES)
    entries, packs = [], []
    for index, (order, jobs) in enumerate([(names, "1"), (names[::-1], "1"), (names[::-1], "2")]):
        root = tmp_path / f"w{index}" / "game"
        api.init(str(root), "game")
        for folder in ("a", "b", "c"):
            _atlas_asset(root, folder, SPRITES, {"padding": 1}, inputs=order)
        if index:
            # The same registry, so the same ids: only the order of the inputs differs.
            shutil.copy(tmp_path / "w0/game/registry.json", root / "registry.json")
        entries.append(_built_entry(root, "a", "-n", jobs))
        with PackReader(str(root / "build/game.pack")) as reader:
            assert reader.get_by_name("b") == reader.get_by_name("c") == entries[-1]
        packs.append(pack_bytes(root))
    # The declared order changes asset.json, so the snapshot, but no entry's byte.
    assert entries[0] == entries[1] == entries[2]
    assert packs[1] == packs[2]


def test_nested_names_are_normalised(workspace: Path) -> None:
    files = {"walk/01.png": SPRITES["walk/01.png"], "coin.png": SPRITES["coin.png"]}
    _atlas_asset(workspace, "sheet", files, inputs=["./walk/../walk/01.png", "coin.png"])
    atlas = parse(_built_entry(workspace, "sheet"))
    assert [r.name for r in atlas.rects] == ["coin.png", "walk/01.png"]


def _error_lines(result: Result) -> list[str]:
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    return [line for line in result.err.splitlines() if line.startswith("error:")]


def test_an_image_larger_than_max_size_is_one_error_line(workspace: Path) -> None:
    files = {"big.png": _png(40, 9, seed=1), "small.png": _png(4, 4, seed=2)}
    _atlas_asset(workspace, "sheet", files, {"max_size": 32})
    assert _error_lines(run_packer("build", cwd=workspace)) == [
        "error: assets/sheet/asset.json: big.png: 40x9 pixels is larger than the largest "
        "texture, max_size 32x32"
    ]
    assert not (workspace / "build/game.pack").exists()


def test_images_that_do_not_fit_together_are_one_error_line(workspace: Path) -> None:
    files = {f"{n}.png": _png(20, 20, seed=n) for n in range(5)}
    _atlas_asset(workspace, "sheet", files, {"max_size": 50, "power_of_two": True})
    assert _error_lines(run_packer("build", cwd=workspace)) == [
        "error: assets/sheet/asset.json: 5 images do not fit in one texture of 32x32 (the "
        "largest power of two within max_size 50) with padding 0; raise max_size or split them "
        "into several atlases"
    ]


def test_two_inputs_naming_one_rectangle_are_an_error(workspace: Path) -> None:
    _atlas_asset(workspace, "sheet", {"a.png": _png(2, 2, seed=1)}, inputs=["a.png", "./a.png"])
    assert _error_lines(run_packer("build", cwd=workspace)) == [
        "error: assets/sheet/asset.json: ./a.png: names the same rectangle 'a.png' as input 'a.png'"
    ]


def test_an_input_that_is_no_image_is_named(workspace: Path) -> None:
    files = {"a.png": _png(2, 2, seed=1), "notes.txt": b"not an image"}
    _atlas_asset(workspace, "sheet", files)
    [line] = _error_lines(run_packer("build", cwd=workspace))
    assert line.startswith("error: assets/sheet/asset.json: notes.txt: not a readable image: ")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_size": 0}, "max_size"),
        ({"max_size": 16385}, "max_size"),
        ({"max_size": "512"}, "max_size"),
        ({"padding": -1}, "padding"),
        ({"power_of_two": "yes"}, "power_of_two"),
        ({"trim": 1}, "trim"),
        ({"extrude": 1}, "extrude"),
    ],
)
def test_params_are_checked(params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ATLAS.Params.model_validate(params)
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_a_bad_param_is_one_error_line_naming_the_field(
    workspace: Path, cli: Callable[..., Result]
) -> None:
    _atlas_asset(workspace, "sheet", {"a.png": _png(2, 2, seed=1)}, {"padding": -2})
    [line] = _error_lines(cli("-C", str(workspace), "status"))
    assert line == "error: assets/sheet/asset.json:8:5: params.padding: must be at least 0, not -2"


def test_no_inputs_is_an_error() -> None:
    ctx = KindContext(input_names=(), inputs=(), params=ATLAS.Params.model_validate({}))
    with pytest.raises(KindError, match="atlas needs at least one input"):
        ATLAS.process(ctx)
