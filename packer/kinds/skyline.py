"""Rectangle packing for ``atlas``: skyline bottom-left, in integers, the same on every machine.

The skyline is the top edge of what is placed so far, as segments from left to right. Each
rectangle goes where its top edge ends lowest, the leftmost such place on ties, with its left
edge on a segment's left end. Rectangles are placed tallest first, then widest, then in the
order given (the caller sorts them by name): the order in which skyline packing wastes least.
Everything is integer arithmetic over sorted input, so a layout depends on the sizes and their
order alone and never changes with a library.

The texture's size is searched, not given: the packing is tried at a fixed series of widths and
the squarest texture wins (the shortest longer side, then the smallest area, then the smallest
width), as textures near square suit GPUs and a layout by area alone tends to long strips. The
series holds the widths from the widest rectangle up to the limit: powers of two when the
texture must be one, otherwise eight steps in each octave (``2**k * (8 + j) // 8``) plus the
widest rectangle's width and the limit itself.
Imports: stdlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Where each rectangle went (by the index it was given at), and the texture's size."""

    width: int
    height: int
    positions: tuple[tuple[int, int], ...]


def pack(
    sizes: Sequence[tuple[int, int]], limit: int, padding: int, power_of_two: bool
) -> Layout | None:
    """The best texture (see above) of sides at most ``limit`` holding every ``(w, h)`` of
    ``sizes`` with ``padding`` pixels between any two; None when none fits.

    Every size is positive and at most ``limit`` on each side (the caller checks). Padding lies
    only between rectangles, not along the texture's edges."""
    widest = max(w for w, _ in sizes)
    # Past this width every rectangle fits in one row: wider candidates only add empty columns.
    one_row = sum(w for w, _ in sizes) + padding * (len(sizes) - 1)
    area = sum((w + padding) * (h + padding) for w, h in sizes)
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i][1], -sizes[i][0], i))
    best: Layout | None = None
    for width in _widths(widest, limit, power_of_two):
        if (width + padding) * (limit + padding) >= area:
            found = _pack_at(sizes, order, width, limit, padding, power_of_two)
            if found is not None and (best is None or _score(found) < _score(best)):
                best = found
        if width >= one_row:
            break
    return best


def _widths(widest: int, limit: int, power_of_two: bool) -> list[int]:
    steps = (8,) if power_of_two else tuple(range(8, 16))
    widths = set() if power_of_two else {widest, limit}
    octave = 1
    while octave <= limit:
        widths.update(octave * step // 8 for step in steps)
        octave *= 2
    return sorted(w for w in widths if widest <= w <= limit)


def _score(layout: Layout) -> tuple[int, int, int]:
    return (max(layout.width, layout.height), layout.width * layout.height, layout.width)


def _pack_at(
    sizes: Sequence[tuple[int, int]],
    order: Sequence[int],
    width: int,
    limit: int,
    padding: int,
    power_of_two: bool,
) -> Layout | None:
    # Each rectangle takes its padding on its right and bottom; the bin is as much larger, so
    # the last column and row need none.
    bin_width, bin_height = width + padding, limit + padding
    skyline = _Skyline(bin_width)
    positions: list[tuple[int, int]] = [(0, 0)] * len(sizes)
    used_width = used_height = 0
    for index in order:
        w, h = sizes[index]
        spot = skyline.place(w + padding, h + padding, bin_height)
        if spot is None:
            return None
        positions[index] = spot
        used_width = max(used_width, spot[0] + w)
        used_height = max(used_height, spot[1] + h)
    if power_of_two:
        used_width, used_height = _power_of_two(used_width), _power_of_two(used_height)
        if used_height > limit:
            return None
    return Layout(used_width, used_height, tuple(positions))


def _power_of_two(value: int) -> int:
    return 1 << (value - 1).bit_length()


class _Skyline:
    """Segments ``[x, y, width]`` from left to right, covering the bin's whole width."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.segments: list[list[int]] = [[0, 0, width]]

    def place(self, w: int, h: int, bin_height: int) -> tuple[int, int] | None:
        """Put a ``w`` by ``h`` rectangle at the lowest-ending leftmost spot; None if none fits."""
        best: tuple[int, int, int] | None = None  # top, x, segment index
        segments = self.segments
        for start, (x, _, _) in enumerate(segments):
            if x + w > self.width:
                break
            y = self._rest_height(start, w)
            if y + h <= bin_height and (best is None or (y + h, x) < best[:2]):
                best = (y + h, x, start)
        if best is None:
            return None
        top, x, start = best
        self._raise(start, x, w, top)
        return x, top - h

    def _rest_height(self, start: int, w: int) -> int:
        """The height a rectangle ``w`` wide rests at with its left edge on segment ``start``."""
        segments = self.segments
        end = segments[start][0] + w
        y = 0
        index = start
        while index < len(segments) and segments[index][0] < end:
            y = max(y, segments[index][1])
            index += 1
        return y

    def _raise(self, start: int, x: int, w: int, top: int) -> None:
        """The skyline after a rectangle from ``x`` to ``x + w`` whose top is at ``top``."""
        segments = self.segments
        end = x + w
        index = start
        while index < len(segments) and segments[index][0] + segments[index][2] <= end:
            index += 1
        rest = segments[index:]
        if rest and rest[0][0] < end:
            cut = end - rest[0][0]
            rest[0] = [end, rest[0][1], rest[0][2] - cut]
        merged = [*segments[:start], [x, top, w], *rest]
        self.segments = _merge(merged)


def _merge(segments: list[list[int]]) -> list[list[int]]:
    """Neighbouring segments of one height joined, so the skyline stays short."""
    out = [segments[0]]
    for segment in segments[1:]:
        last = out[-1]
        if last[1] == segment[1]:
            out[-1] = [last[0], last[1], last[2] + segment[2]]
        else:
            out.append(segment)
    return out
