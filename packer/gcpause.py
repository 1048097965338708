"""The cyclic garbage collector paused while a process loads a build (snapshot, plan, tasks).

Loading makes tens of thousands of long-lived objects and almost no garbage, yet each
allocation burst triggers collections that walk every object alive: a third of a no-op
build's snapshot time at 10,000 assets. Afterwards the loaded objects are frozen out of
future collections, which then need not walk them either.

A module of its own because the pause spans layers: the snapshot and the plan (``api``,
``plan``) and the doit Task objects made from them (``packer.doit``), and no one of those owns
the process. Each doit entry point runs its load phase once per process; a long-lived process
that loads again and again should not use it, since frozen objects stay out of every later
collection.
Imports: stdlib only.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, then freeze what it made and turn it on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()
