"""doit ``Task`` objects for packer's tasks, made without ``Task.__init__``.

``Task.__init__`` checks the type of each of its twenty parameters and normalises each one:
at 10,000 assets that is a fifth of loading a no-op build, for tasks whose every parameter is
packer's own and always of one shape (string names and targets, no file_dep, one uptodate
check, clean=True). ``new_task`` makes the same object from a prototype that
``Task.__init__`` made once: every attribute the prototype holds is copied, and the ones that
differ per task, or that doit may change on a task (lists, sets, dicts), are made afresh.

The prototype's attributes must be exactly the ones this module knows (``_PER_TASK`` and
``_SHARED``); on a doit whose ``Task`` holds others, every task is made through
``Task.__init__`` instead, as it was before (tests/test_doittask.py compares the two ways on
the installed doit).
Imports: stdlib, doit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doit.task import Task, first_line

_PER_TASK = frozenset(
    {
        "name",
        "_actions",
        "targets",
        "task_dep",
        "uptodate",
        "value_savers",
        "doc",
        "setup_tasks",
        "creator_params",
        "file_dep",
        "wild_dep",
        "calc_dep",
        "getargs",
        "values",
        "teardown",
    }
)
"""Attributes given, or made empty and new, for each task."""

_SHARED = frozenset(
    {
        "params",
        "options",
        "pos_arg",
        "pos_arg_val",
        "io",
        "_action_instances",
        "dep_changed",
        "loader",
        "subtask_of",
        "has_subtask",
        "result",
        "verbosity",
        "custom_title",
        "cfg_values",
        "_remove_targets",
        "clean_actions",
        "watch",
        "meta",
        "executed",
    }
)
"""Attributes copied from the prototype: immutable values (None, a bool, an empty tuple) or,
for ``io``, an object doit only reads."""


def _prototype() -> dict[str, Any] | None:
    """The shared attributes of a task with ``clean=True`` and nothing else set; None when
    this doit's ``Task`` is not the one this module knows."""
    attributes = Task("prototype", [], clean=True).__dict__
    if set(attributes) != _PER_TASK | _SHARED:
        return None
    return {key: attributes[key] for key in _SHARED}


_SHARED_VALUES = _prototype()


def new_task(
    name: str,
    actions: list[tuple[Callable[..., Any], list[Any]]],
    *,
    targets: list[str],
    task_dep: list[str],
    uptodate: Any,
    doc: str,
    settled: bool = False,
) -> Task:
    """What ``Task(name, actions, targets=..., task_dep=..., uptodate=[uptodate], clean=True,
    doc=doc)`` makes, for a ``name`` without ``=`` and ``task_dep`` without ``*`` (doit's
    checks of those are not repeated). ``uptodate`` is one callable; its ``configure_task`` is
    called, as doit does. With ``settled`` (the caller knows the check would pass) the task's
    uptodate is ``True`` instead, which doit takes as it is, with no call, no signature
    inspected and no saved values looked up; the check still configures the task."""
    if _SHARED_VALUES is None:
        task = Task(
            name,
            actions,
            targets=targets,
            task_dep=task_dep,
            uptodate=[True if settled else uptodate],
            clean=True,
            doc=doc,
        )
        if settled:
            _configure(uptodate, task)
        return task
    task = Task.__new__(Task)
    task.__dict__.update(_SHARED_VALUES)
    task.__dict__.update(
        name=name,
        _actions=actions,
        targets=targets,
        task_dep=task_dep,
        # doit keeps a value with no arguments, a callable with empty ones.
        uptodate=[(True, None, None) if settled else (uptodate, [], {})],
        value_savers=[],
        doc=first_line(doc),
        setup_tasks=[],
        creator_params=[],
        file_dep=set(),
        wild_dep=[],
        calc_dep=set(),
        getargs={},
        values={},
        teardown=[],
    )
    _configure(uptodate, task)
    return task


def _configure(uptodate: Any, task: Task) -> None:
    configure = getattr(uptodate, "configure_task", None)
    if configure is not None:
        configure(task)


__all__ = ["new_task"]
