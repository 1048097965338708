"""packer's doit tasks made without ``Task.__init__`` are the tasks ``Task.__init__`` makes."""

from __future__ import annotations

from typing import Any

from doit.task import Task

from packer import doittask
from packer.doittask import new_task


class Check:
    """An uptodate callable with a ``configure_task`` hook, as packer's ``KeyUnchanged``."""

    def __init__(self) -> None:
        self.configured: list[Any] = []

    def configure_task(self, task: Any) -> None:
        self.configured.append(task)
        task.value_savers.append(self.saved)

    def saved(self) -> dict[str, str]:
        return {"key": "k"}

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        return True


def both(**changes: Any) -> tuple[Task, Task, Check, Check]:
    args: dict[str, Any] = {
        "name": "asset:0123",
        "actions": [(print, ["x"])],
        "targets": ["build/assets/0123.bin"],
        "task_dep": ["asset:4567", "asset:89ab"],
        "doc": "  hero (image, sprites/hero)  ",
    }
    args.update(changes)
    slow_check, fast_check = Check(), Check()
    slow = Task(
        args["name"],
        args["actions"],
        targets=list(args["targets"]),
        task_dep=list(args["task_dep"]),
        uptodate=[slow_check],
        clean=True,
        doc=args["doc"],
    )
    fast = new_task(
        args["name"],
        args["actions"],
        targets=list(args["targets"]),
        task_dep=list(args["task_dep"]),
        uptodate=fast_check,
        doc=args["doc"],
    )
    return slow, fast, slow_check, fast_check


def comparable(task: Task, check: Check) -> dict[str, Any]:
    """The task's attributes, its uptodate check and value savers named by role."""
    attributes = dict(task.__dict__)
    attributes["uptodate"] = [
        ("check" if utd is check else utd, args, kwargs) for utd, args, kwargs in task.uptodate
    ]
    attributes["value_savers"] = [
        "saver" if saver == check.saved else saver for saver in task.value_savers
    ]
    attributes["io"] = vars(task.io)
    return attributes


def test_the_installed_doit_takes_the_fast_way() -> None:
    # A doit whose Task holds other attributes would silently fall back: say so here.
    assert doittask._SHARED_VALUES is not None


def test_a_task_made_fast_equals_one_made_by_doit() -> None:
    for changes in ({}, {"task_dep": []}, {"doc": "write game.pack and its manifest"}):
        slow, fast, slow_check, fast_check = both(**changes)
        assert comparable(fast, fast_check) == comparable(slow, slow_check)
        assert fast_check.configured == [fast]
        assert type(fast) is Task


def test_fast_tasks_share_nothing_doit_may_change() -> None:
    _, one, _, _ = both()
    _, two, _, _ = both()
    for key, value in one.__dict__.items():
        if isinstance(value, list | set | dict):
            assert value is not two.__dict__[key], key
    one.task_dep.append("asset:cdef")
    one.file_dep.add("x")
    one.values["a"] = 1
    assert two.task_dep == ["asset:4567", "asset:89ab"]
    assert two.file_dep == set()
    assert two.values == {}


def test_a_settled_task_is_uptodate_true_and_still_saves_its_key() -> None:
    args: dict[str, Any] = {
        "targets": ["build/assets/0123.bin"],
        "task_dep": [],
        "doc": "hero (raw, data/hero)",
    }
    slow_check, fast_check = Check(), Check()
    slow = Task("asset:0123", [(print, ["x"])], uptodate=[True], clean=True, **args)
    slow_check.configure_task(slow)
    fast = new_task("asset:0123", [(print, ["x"])], uptodate=fast_check, settled=True, **args)
    assert fast.uptodate == [(True, None, None)]
    assert comparable(fast, fast_check) == comparable(slow, slow_check)
    assert fast_check.configured == [fast]
