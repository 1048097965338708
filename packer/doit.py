"""The doit adapter: packer's plan as doit tasks. No logic of its own beyond the translation.

Each registered asset becomes a top-level task ``<prefix>asset:<asset_id>`` (not a subtask, so a
plain ``doit list`` shows it) and one aggregate task ``<prefix>pack`` writes the pack and the
manifest. A task is up to date exactly when its key (``packer.keys``) equals the key saved by
doit after its last success; keys are content hashes, so a ``touch`` rebuilds nothing and a
content change is never missed, whatever mtimes say. No task has file_deps on workspace files:
the snapshot already hashed them, and doit's own checker trusts mtimes. The exception is an
input that another task of a larger graph generates (``packer_tasks(generated=...)``, or missing
when the tasks are created): its asset gets a file_dep on it, so doit runs the generator first,
and that asset's key and its workspace's pack key are made when doit checks their tasks
(``LateKeyUnchanged``), with the plan's ``late`` tasks.

Actions are module-level functions over plain data, so ``doit -n N`` can pickle them; they turn a
``PackerError`` or an ``OSError`` (a full disk) into doit's ``TaskFailed``: one line naming the
file, workspace-relative, no traceback. Task loading turns them into ``InvalidDodoFile``.

Both entry points take the workspace's build lock while doit imports the dodo.py, before doit
opens its record, and keep it until the process ends (``packer.lane``): builds of one
workspace run one after the other.

Two entry points:
- ``workspace_tasks(__file__)``: the two-line dodo.py that ``packer init`` writes;
- ``packer_tasks(workspace, prefix=...)``: add a workspace's tasks to a larger dodo.py.
What is not translation lives where it belongs: keys and their completion in ``packer.keys``,
the ``packer build`` shortcut's record in ``packer.shortcut``, the load phase's collector
pause in ``packer.gcpause``.
Imports: doit, packer.api, packer.plan, packer.build, packer.keys, packer.pack, packer.shortcut,
packer.gcpause, packer.workspace, packer.doitdb, packer.doittask, packer.lane, packer.errors,
packer.snapshot, packer.scan, packer.model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain
from doit.exceptions import InvalidDodoFile, TaskFailed
from doit.globals import Globals
from doit.loader import create_after
from doit.task import Task

from packer import api
from packer.build import AssetJob, build_asset
from packer.doitdb import BACKEND, save_values
from packer.doittask import new_task
from packer.errors import InputError, MissingInputError, PackerError, shown
from packer.gcpause import collector_paused
from packer.keys import completed, recorded_dep_digests
from packer.lane import hold_build_until_exit, holding_build
from packer.model import CACHE_REMOTE_ENV, PackSection
from packer.pack import PackEntry, ZstdCodec, recover_outputs, write_pack
from packer.plan import PENDING, AssetTask, BuildPlan, changed_since, plan_build, with_generated
from packer.progress import UP_TO_DATE, UPLOADED, BuildReporter, asset_outcome, summary_json
from packer.scan import Declaration
from packer.shards import shard_tasks, with_deps
from packer.shortcut import nothing_changed, output_paths, record_build
from packer.snapshot import Snapshot, hash_generated, with_generated_inputs
from packer.statrecord import up_to_date_line, write_record
from packer.why import KEY_VALUE, PARTS_VALUE, key_parts, reasons
from packer.workspace import CONFIG_FILE, PACK_RECORD, Workspace, open_workspace

if TYPE_CHECKING:
    from packer.cache.remote import RemoteCache

FROZEN_ENV = "PACKER_FROZEN"


def doit_config(ws: Workspace) -> dict[str, Any]:
    """DOIT_CONFIG for a workspace's own dodo.py: doit's state lives under ``.packer/``.

    packer's JSON backend (``packer.doitdb.RecordDB``) is read once per run and written only
    when it changed, which beats the ``dbm.dumb`` that doit falls back to on most Pythons, and
    a damaged record costs a rebuild instead of a failure. ``pack`` (which task_deps on every
    asset) is the default task: doit 0.37's ``doit forget`` without a task name reads the
    default tasks and fails with a traceback when there are none (pydoit/doit PR #484).
    """
    os.makedirs(ws.state_dir, exist_ok=True)
    return {
        "dep_file": ws.doit_record_path,
        "backend": BACKEND,
        "default_tasks": ["pack"],
    }


def _failure(err: PackerError | OSError, root: str) -> PackerError:
    """``err`` as a PackerError naming its file workspace-relative where it lies inside ``root``
    (an OSError, a full disk say, names the absolute path it was given)."""
    if isinstance(err, OSError):
        name = "" if err.filename is None else os.fsdecode(err.filename)
        err = PackerError(err.strerror or str(err), name)
    if os.path.isabs(err.path):
        rel = os.path.relpath(err.path, root)
        if rel != ".." and not rel.startswith(f"..{os.sep}"):
            err.path = rel.replace(os.sep, "/")
    return err


def _run_asset(job: AssetJob) -> TaskFailed | dict[str, Any]:
    """Build one asset; the dict says how (``packer.progress``: doit keeps it as the values)."""
    try:
        ran = build_asset(job)
    except (PackerError, OSError) as err:
        return TaskFailed(str(_failure(err, job.root)))
    return asset_outcome(built=ran, fetched=job.fetched_key is not None)


def _run_pack(
    root: str,
    pack_path: str,
    manifest_path: str,
    snapshot: str,
    entries: Sequence[PackEntry],
    codec: ZstdCodec | None,
    reuse_record: str,
) -> TaskFailed | None:
    try:
        os.makedirs(os.path.dirname(pack_path), exist_ok=True)
        write_pack(pack_path, manifest_path, snapshot, entries, codec, reuse_record=reuse_record)
    except (PackerError, OSError) as err:
        return TaskFailed(str(_failure(err, root)))
    return None


def _warn_empty(asset_roots: Sequence[str]) -> None:
    # An empty pack is valid, but most often a mistake (the wrong folder, or `assets` misspelt
    # in packer.toml): said when the pack task writes it.
    sys.stderr.write(f"warning: no assets under {', '.join(asset_roots)}; the pack is empty\n")


def _success_values(
    key: str, asset: AssetTask | None, dep_digests: Sequence[str]
) -> dict[str, str]:
    """What doit saves for a task after its success: its completed key and, for an asset, the
    key's parts (``packer.why``)."""
    if asset is None:
        return {KEY_VALUE: key}
    return {KEY_VALUE: key, PARTS_VALUE: key_parts(asset, dep_digests)}


class KeyUnchanged:
    """doit ``uptodate`` check: true while the task's key equals the key saved after its last
    success. For an asset with deps the key is completed (``keys.completed``) with the digests
    the deps' artifacts record, when doit checks the task, which is after the deps ran.

    Like doit's ``config_changed``, but with a fixed ``__signature__``: doit inspects the
    signature of every uptodate callable on every run, which at 10,000 tasks costs more than
    all other up-to-date checking together. With ``asset``, a success also saves the key's
    parts (``packer.why``), and once the check has found the task out of date its ``str`` is
    the reasons in words (what ``doit info`` prints); nothing of that runs on a no-op.
    """

    __signature__ = inspect.Signature(
        [
            inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("values", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ]
    )

    def __init__(
        self, key: str, dep_artifacts: Sequence[str] = (), asset: AssetTask | None = None
    ) -> None:
        self.key = key
        self.dep_artifacts = tuple(dep_artifacts)
        """Each dep's artifact, whose recorded digest completes the key (``packer.keys``)."""
        self.asset = asset
        self._dep_digests: tuple[str, ...] = ()
        self._recorded: dict[str, Any] | None = None
        """The saved values, kept once the check found them out of date (for ``__str__``)."""

    def configure_task(self, task: Any) -> None:
        task.value_savers.append(self._saved)

    def _complete(self) -> bool:
        """Fold the deps' recorded digests into the key, once; False while one is missing."""
        if self.dep_artifacts:
            digests = recorded_dep_digests(self.dep_artifacts)
            if digests is None:
                return False
            self.key = completed(self.key, digests)
            self._dep_digests = digests
            self.dep_artifacts = ()
        return True

    def _saved(self) -> dict[str, str]:
        self._complete()  # the deps ran before this task: their artifacts are there now
        return _success_values(self.key, self.asset, self._dep_digests)

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        if not self._complete():
            return False  # a dep's output is missing: the task must run (and will say so)
        if values.get(KEY_VALUE) == self.key:
            return True
        self._recorded = values
        return False

    def __str__(self) -> str:
        if self._recorded is None:  # the check stopped before the key: a dep has no output
            return "packer: a dep's output is missing: it builds first"
        if self.asset is None:
            built = KEY_VALUE in self._recorded
            return "packer: " + (
                "an asset's output or the workspace changed" if built else "never built"
            )
        return "packer: " + "; ".join(
            reasons(self._recorded, key_parts(self.asset, self._dep_digests))
        )


@dataclass(frozen=True)
class _LateAsset:
    """An asset that reads generated inputs (``generated``, workspace-relative), planned before
    they exist (``BuildPlan.late``)."""

    job: AssetJob
    generated: tuple[str, ...]

    def task(self) -> AssetTask:
        """The asset's task as it is now that its generated inputs exist."""
        hashes = hash_generated(self.job.root, [self.job.task.decl], self.generated)
        return with_generated(self.job.task, hashes)

    def key(self) -> tuple[str, AssetTask | None]:
        task = self.task()
        return task.task_key, task


@dataclass(frozen=True)
class _LatePack:
    """The pack of a workspace with late assets (``decls``): planned once their generated
    inputs exist, which is after every asset task ran."""

    root: str
    snapshot: Snapshot
    pack: PackSection | None
    decls: tuple[Declaration, ...]
    generated: frozenset[str]

    def plan(self) -> BuildPlan:
        hashes = hash_generated(self.root, self.decls, self.generated)
        return plan_build(with_generated_inputs(self.snapshot, hashes), self.pack)

    def key(self) -> tuple[str, AssetTask | None]:
        return self.plan().pack_key, None


class LateKeyUnchanged(KeyUnchanged):
    """``KeyUnchanged`` for a task whose key waits for generated inputs: the key is made when
    doit checks the task, which is after the tasks that write them (doit orders them through
    the task's ``file_dep``). The action saves the key it built with, since with ``doit -n N``
    it runs in a process that never sees this check."""

    def __init__(self, late: _LateAsset | _LatePack, dep_artifacts: Sequence[str] = ()) -> None:
        super().__init__(PENDING, dep_artifacts)
        self.late = late
        self._not_ready: str | None = None

    def configure_task(self, task: Any) -> None:
        pass  # the action returns the key as the task's value

    def _complete(self) -> bool:
        if self.key == PENDING:
            try:
                self.key, self.asset = self.late.key()
            except (PackerError, OSError) as err:
                self._not_ready = str(_failure(err, self.late_root))
                return False  # the action runs and reports it, unless doit finds it first
        return super()._complete()

    @property
    def late_root(self) -> str:
        return self.late.job.root if isinstance(self.late, _LateAsset) else self.late.root

    def __str__(self) -> str:
        if self._not_ready is not None:
            return f"packer: a generated input is not there yet: {self._not_ready}"
        return super().__str__()


def _run_late_asset(late: _LateAsset) -> TaskFailed | dict[str, Any]:
    """``_run_asset`` for a late asset, returning the key it was built under as well."""
    try:
        task = late.task()
        job = dataclasses.replace(late.job, task=task)
        ran = build_asset(job)
        digests = recorded_dep_digests(job.dep_artifacts) or ()
    except (PackerError, OSError) as err:
        return TaskFailed(str(_failure(err, late.job.root)))
    key = completed(task.task_key, digests)
    return {**asset_outcome(built=ran), KEY_VALUE: key, PARTS_VALUE: key_parts(task, digests)}


def _run_late_pack(
    late: _LatePack,
    pack_path: str,
    manifest_path: str,
    entries: Sequence[PackEntry],
    reuse_record: str,
) -> TaskFailed | dict[str, Any]:
    """``_run_pack`` for a workspace with late assets, returning the pack key as well."""
    try:
        plan = late.plan()
    except (PackerError, OSError) as err:
        return TaskFailed(str(_failure(err, late.root)))
    failed = _run_pack(
        late.root,
        pack_path,
        manifest_path,
        plan.snapshot_fingerprint,
        entries,
        plan.pack_codec,
        reuse_record,
    )
    return failed or {KEY_VALUE: plan.pack_key}


def _frozen_from_env() -> bool:
    return os.environ.get(FROZEN_ENV, "") not in ("", "0")


class PackerTasks:
    """A doit task creator for one workspace (doit calls ``create_doit_tasks``).

    ``workspace`` is spelled as the caller spells it: target paths are built by joining onto
    it, so a relative workspace gives targets relative to the folder doit runs in, which is how
    other tasks of the same graph spell their ``file_dep``. Use ``pack_path`` and
    ``manifest_path`` rather than spelling them again.
    """

    def __init__(
        self,
        workspace: str = ".",
        *,
        prefix: str = "",
        frozen: bool | None = None,
        state_dir: str | None = None,
        out_dir: str | None = None,
        after: Sequence[str] = (),
        plan: BuildPlan | None = None,
        fetched: Mapping[str, str] | None = None,
        generated: Sequence[str] | None = None,
        only: Collection[str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.prefix = prefix
        self.frozen = frozen
        self._generated = None if generated is None else tuple(generated)
        """In a larger graph (not None): input files other tasks write, spelled as their
        ``targets`` are; inputs missing when the tasks are created count as generated too."""
        self._snapshot: Snapshot | None = None
        self._generated_spelled: Mapping[str, str] = {}
        """Each generated input (workspace-relative) as this graph's file_dep spells it."""
        self._state_dir = state_dir
        self._out_dir = out_dir
        self._plan = plan
        self._fetched = fetched or {}
        """asset_id -> the output key ``packer build`` fetched from the remote cache for it."""
        self._only = None if only is None else frozenset(only)
        """The asset_ids to make tasks for (None: all). The others are known up to date: their
        tasks are left out of the graph, and out of the task_dep of those that remain."""
        self._ws: Workspace | None = None

        def create_doit_tasks() -> Iterator[Task]:
            return self._tasks()

        if after:
            # Inputs generated by other tasks must exist before the snapshot is taken, so the
            # tasks are created only once those have run. doit's delayed creator waits for one
            # task (a second create_after would replace the first, not add to it), and its
            # placeholder task takes the creator's ``basename``: naming it ``<prefix>pack`` lets
            # doit swap in the real pack task, whose task_dep pull in the asset tasks. Under any
            # other name the created tasks would never be selected and nothing would be built.
            if len(after) != 1:
                raise ValueError(
                    "after= takes one task name (doit waits for one task before a delayed "
                    "creator runs); make a group task with task_dep on all of them"
                )
            create_doit_tasks = create_after(executed=after[0])(create_doit_tasks)
            create_doit_tasks.basename = f"{prefix}pack"  # type: ignore[attr-defined]
        self.create_doit_tasks = create_doit_tasks

    @property
    def ws(self) -> Workspace:
        if self._ws is None:
            self._ws = open_workspace(
                self.workspace, search_up=False, state_dir=self._state_dir, out_dir=self._out_dir
            )
        return self._ws

    def _spell(self, path: str) -> str:
        if os.path.isabs(self.workspace):
            return path
        return os.path.relpath(path)

    @property
    def pack_path(self) -> str:
        """The pack target, spelled as other tasks should ``file_dep`` on it."""
        return self._spell(self.ws.pack_path)

    @property
    def manifest_path(self) -> str:
        return self._spell(self.ws.manifest_path)

    @property
    def _artifact_prefix(self) -> str:
        """Spelled folder of the artifacts, ending in a separator (joined once, not per task)."""
        return os.path.join(self._spell(self.ws.artifacts_dir), "")

    def _load_plan(self) -> BuildPlan:
        if self._plan is not None:
            return self._plan
        frozen = _frozen_from_env() if self.frozen is None else self.frozen
        try:
            snapshot = api.snapshot(self.ws, frozen=frozen, on_change=_say_change)
            if self._generated is None:
                return plan_build(snapshot, self.ws.config.pack)
            self._snapshot = snapshot
            self._generated_spelled = self._generated_inputs(snapshot, self._generated)
            generated = frozenset(self._generated_spelled)
            return plan_build(snapshot, self.ws.config.pack, generated)
        except (PackerError, OSError) as err:
            raise self._loading_error(err) from None

    def _generated_inputs(self, snapshot: Snapshot, declared: Sequence[str]) -> dict[str, str]:
        """The inputs to plan late, workspace-relative, each with its spelling in file_dep: the
        ``generated`` files, then those missing now (spelled as packer spells targets)."""
        root = self.ws.root
        found: dict[str, str] = {}
        for problem in snapshot.scan.problems:
            if isinstance(problem, MissingInputError):
                found[problem.input_path] = self._spell(os.path.join(root, problem.input_path))
        for spelled in declared:
            rel = os.path.relpath(os.path.abspath(spelled), root)
            if rel == ".." or rel.startswith(f"..{os.sep}") or os.path.isabs(rel):
                raise InputError("a generated input must be inside the workspace", spelled)
            found[rel.replace(os.sep, "/")] = spelled
        return found

    def _loading_error(self, err: PackerError | OSError) -> InvalidDodoFile:
        """What doit prints, as ``ERROR: ...`` without a traceback (and exits 3), when this
        workspace's tasks cannot be loaded."""
        where = f" [{shown(self.workspace)}]" if self.prefix else ""
        root = self._ws.root if self._ws is not None else os.path.abspath(self.workspace)
        return InvalidDodoFile(f"packer{where}: {_failure(err, root)}")

    def _hold_build_lock(self) -> None:
        """Take the workspace's build lock for the rest of this process (see module doc), then
        clear what a killed build left beside the pack (the pack task may be up to date)."""
        try:
            hold_build_until_exit(self.ws)
            _recover_outputs(self.ws)
        except (PackerError, OSError) as err:
            raise self._loading_error(err) from None

    def _tasks(self) -> Iterator[Task]:
        with collector_paused():
            yield from self._make_tasks()

    def _make_tasks(self) -> Iterator[Task]:
        plan = self._load_plan()
        ws = self.ws
        cache_dir = ws.output_cache_dir
        entries: list[PackEntry] = []
        names: list[str] = []
        spelled_prefix = self._artifact_prefix
        late_decls: list[Declaration] = []
        artifact_prefix = os.path.join(ws.artifacts_dir, "")
        task_prefix = f"{self.prefix}asset:"
        recorded = _recorded_values()
        for t in plan.tasks:
            asset_id, decl = t.asset_id, t.decl
            artifact = f"{artifact_prefix}{asset_id}.bin"
            entries.append(PackEntry(asset_id, decl.asset_name, decl.kind, artifact))
            if self._only is not None and asset_id not in self._only:
                continue
            deps = tuple(f"{artifact_prefix}{dep_id}.bin" for dep_id in t.dep_ids)
            job = AssetJob(ws.root, t, artifact, deps, cache_dir, self._fetched.get(asset_id))
            name = task_prefix + asset_id
            names.append(name)
            targets = [f"{spelled_prefix}{asset_id}.bin"]
            task_dep = [
                task_prefix + dep_id
                for dep_id in t.dep_ids
                if self._only is None or dep_id in self._only
            ]
            doc = shown(f"{decl.asset_name} ({decl.kind}, {decl.path})")
            if asset_id not in plan.late:
                yield new_task(
                    name,
                    [(_run_asset, [job])],
                    targets=targets,
                    task_dep=task_dep,
                    uptodate=KeyUnchanged(t.task_key, deps, t),
                    doc=doc,
                    # Without deps the key is whole now: compared here, once, against the record
                    # doit has opened, doit need not call a check on each of 10,000 tasks.
                    settled=not deps and recorded(name).get(KEY_VALUE) == t.task_key,
                )
                continue
            # Reads generated inputs: a file_dep on each, which doit links to the task that has
            # it as a target, and the key made when doit checks the task.
            generated = tuple(dict.fromkeys(r for r in decl.inputs if r in self._generated_spelled))
            late = _LateAsset(job, generated)
            late_decls.append(decl)
            yield Task(
                name,
                [(_run_late_asset, [late])],
                file_dep=[self._generated_spelled[rel] for rel in generated],
                targets=targets,
                task_dep=task_dep,
                uptodate=[LateKeyUnchanged(late, deps)],
                clean=True,
                doc=doc,
            )
        paths = [ws.pack_path, ws.manifest_path]
        reuse_record = ws.state_path(PACK_RECORD)
        pack_action: tuple[Any, list[Any]] = (
            _run_pack,
            [ws.root, *paths, plan.snapshot_fingerprint, entries, plan.pack_codec, reuse_record],
        )
        pack_uptodate: KeyUnchanged = KeyUnchanged(plan.pack_key)
        if late_decls and self._snapshot is not None:
            generated_all = frozenset(self._generated_spelled)
            late_pack = _LatePack(
                ws.root, self._snapshot, ws.config.pack, tuple(late_decls), generated_all
            )
            pack_action = (_run_late_pack, [late_pack, *paths, entries, reuse_record])
            pack_uptodate = LateKeyUnchanged(late_pack)
        yield new_task(
            f"{self.prefix}pack",
            [pack_action] if entries else [(_warn_empty, [ws.asset_roots]), pack_action],
            targets=[self.pack_path, self.manifest_path],
            task_dep=names,
            uptodate=pack_uptodate,
            doc=f"write {os.path.basename(ws.pack_path)} and its manifest",
        )


def _recorded_values() -> Callable[[str], Mapping[str, Any]]:
    """The values doit saved after each task's last success, by task name, from the record of
    the doit command loading these tasks (doit opens it before it loads them); nothing where no
    doit command is running."""
    record = Globals.dep_manager
    if record is None:
        return lambda name: {}
    values: Callable[[str], Mapping[str, Any]] = record.get_values
    return values


def packer_tasks(
    workspace: str,
    *,
    prefix: str = "",
    frozen: bool | None = None,
    state_dir: str | None = None,
    out_dir: str | None = None,
    after: Sequence[str] = (),
    generated: Sequence[str] = (),
) -> PackerTasks:
    """Packer's tasks for ``workspace``, to assign to a name in a larger dodo.py.

    ``prefix`` is prepended to every task name (``<prefix>asset:<id>``, ``<prefix>pack``) so
    several workspaces fit in one graph. ``frozen`` defaults to ``PACKER_FROZEN``.
    ``generated`` names input files that other tasks of the graph write, spelled as their
    ``targets`` are: an asset reading one gets a ``file_dep`` on it and its key is made when
    its task is checked; an input missing when the tasks are created is treated so too.
    ``after`` names one task (a group task when there are several): packer's tasks are created
    once it has run. doit links a ``file_dep`` to the target of a task created that late only
    when the task is named, so with ``after`` a task that ``file_dep``s on ``pack_path`` also
    needs ``task_dep: ["<prefix>pack"]``.

    Called while doit imports the dodo.py, it takes the workspace's build lock and keeps it
    until the process ends, so that builds of one workspace serialize (a later one says on
    stderr which process it waits for).
    """
    tasks = PackerTasks(
        workspace,
        prefix=prefix,
        frozen=frozen,
        state_dir=state_dir,
        out_dir=out_dir,
        after=after,
        generated=generated,
    )
    tasks._hold_build_lock()
    return tasks


def workspace_tasks(dodo_file: str) -> tuple[dict[str, Any], PackerTasks]:
    """``DOIT_CONFIG`` and the task creator for the workspace holding ``dodo_file`` (holding
    its build lock, as ``packer_tasks`` does)."""
    folder = os.path.dirname(os.path.abspath(dodo_file))
    tasks = PackerTasks(os.path.relpath(folder))
    tasks._hold_build_lock()
    try:
        config = doit_config(tasks.ws)
    except (PackerError, OSError) as err:
        raise tasks._loading_error(err) from None
    return config, tasks


def _recover_outputs(ws: Workspace) -> None:
    if os.path.isdir(ws.out_dir):  # nothing to recover before the first build
        recover_outputs(ws.pack_path, ws.manifest_path)


def _runs_tasks(argv: Sequence[str]) -> bool:
    """Whether doit runs tasks with ``argv``: doit takes its first argument as a command when it
    names one (``list``, ``clean``...), else it runs tasks."""
    return not argv or argv[0] == "run" or argv[0] not in {c.get_name() for c in DoitMain.DOIT_CMDS}


def _warn(line: str) -> None:
    sys.stderr.write(shown(line) + "\n")


def _say_to(out: TextIO) -> Callable[[str], None]:
    """``packer build``'s identity lines: with its own lines, before doit's."""

    def say(line: str) -> None:
        out.write(shown(line) + "\n")

    return say


def _say_change(line: str) -> None:
    """A sync's identity line while doit loads the tasks: on stderr, beside doit's report."""
    _warn(f"packer: {line}")


def _remote_cache(ws: Workspace) -> RemoteCache | None:
    """The build's remote cache; without one configured, ``packer.cache`` is never imported."""
    if ws.config.cache.remote is None and not os.environ.get(CACHE_REMOTE_ENV):
        return None
    from packer.cache.remote import open_remote

    return open_remote(ws.config.cache, _warn)


@dataclass(frozen=True)
class BuildOutcome:
    """How one ``build_workspace`` ended."""

    code: int
    """packer's exit code (0: success)."""
    counts: Mapping[str, int]
    """The summary's counts by outcome (``packer.progress``); all up to date when the shortcut
    answered."""
    errors: tuple[str, ...]
    """The text of the ``error:`` lines printed for the tasks that failed."""
    registry_hash: str
    """The hash of the registry text the build's snapshot read (after its own sync)."""
    plan: BuildPlan | None
    """The plan of a plain build (no doit arguments, no shard) that succeeded in full, which
    ``last-build.json`` now records; None for any other build."""


def run_doit(
    ws: Workspace,
    argv: Sequence[str],
    *,
    frozen: bool,
    shard: tuple[int, int] | None = None,
    json_summary: bool = False,
) -> int:
    """``packer build``: ``build_workspace`` on stdout, with a live count on a terminal."""
    return build_workspace(
        ws, argv, frozen=frozen, shard=shard, json_summary=json_summary, out=sys.stdout
    ).code


def build_workspace(
    ws: Workspace,
    argv: Sequence[str],
    *,
    frozen: bool,
    shard: tuple[int, int] | None = None,
    json_summary: bool = False,
    out: TextIO,
    since: BuildPlan | None = None,
    memory: api.ScanMemory | None = None,
    on_change: Callable[[str], None] | None = None,
) -> BuildOutcome:
    """One ``packer build``, its lines written to ``out`` (a live count when ``out`` is a
    terminal): snapshot and plan first (a ``PackerError`` is raised), then doit with ``argv``.

    The whole build holds the workspace's build lock, taken before the snapshot. A plain
    ``packer build`` (no doit arguments) whose plan matches the last successful one skips doit
    entirely. With a remote cache (docs/cache.md), the outputs the local cache lacks are
    fetched before doit runs (and their tasks recorded as done), and with ``write`` what this
    build's kinds made is uploaded while the build goes on. ``shard`` (K, N) runs only shard
    K's asset tasks (``packer.shards``; doit runs their deps too) and no pack.
    ``json_summary`` ends stdout with the counts as one JSON line. ``since`` is the plan of
    this process's last build that succeeded in full (``packer watch`` keeps it; the plan
    reuses its unchanged tasks, keys and all): while
    ``last-build.json`` vouches that the outputs are as that build left them, doit's record
    holds every key of that plan, so the asset tasks whose plan is unchanged since
    (``plan.changed_since``) are left out of doit's graph, which would find them up to date
    anyway; the others and the pack run as in a full graph, and the record ends the same.
    ``memory`` (``packer watch``'s) lets the snapshot rescan only what changed
    (``api.snapshot``). The sync's identity lines go to ``on_change`` (default: ``out``).
    doit's exit codes map onto
    packer's: 0 stays 0 (as does the None that doit's ``clean``, ``forget`` and ``ignore``
    return on success), a usage error (3) becomes 2, any failure 1.
    """
    started = time.monotonic()
    argv = list(argv)
    plain = shard is None and not argv
    # A plain build's own scan is kept to record what it read (``packer.statrecord``).
    scanned = api.ScanMemory() if plain and memory is None else None
    with holding_build(ws):
        _recover_outputs(ws)
        scan_started = time.time_ns()
        with collector_paused():
            say = _say_to(out) if on_change is None else on_change
            snapshot = api.snapshot(ws, frozen=frozen, on_change=say, memory=memory or scanned)
            plan = plan_build(snapshot, ws.config.pack, previous=since)
        if plain and nothing_changed(ws, plan.pack_key):
            out.write(up_to_date_line(len(plan.tasks)))
            _record_stats(ws, scanned, len(plan.tasks), scan_started)
            counts = {UP_TO_DATE: len(plan.tasks)}
            if json_summary:
                _write_json(out, counts, ok=True, pack=ws.pack_path)
            return BuildOutcome(0, counts, (), snapshot.registry_hash, plan)
        wanted = plan.tasks
        only: frozenset[str] | None = None
        if shard is None and not argv and since is not None and nothing_changed(ws, since.pack_key):
            only = changed_since(since, plan)
            wanted = tuple(t for t in plan.tasks if t.asset_id in only)
        if shard is not None:
            own = shard_tasks(plan.tasks, *shard)
            wanted = tuple(with_deps(plan.tasks, own))
            argv += [f"asset:{t.asset_id}" for t in own]
        remote = _remote_cache(ws) if _runs_tasks(argv) else None
        fetched = {} if remote is None else remote.prefetch(wanted, ws)
        by_id = {t.asset_id: t for t in plan.tasks}
        if any(f.placed for f in fetched.values()):
            # Fetched and in place, as the task would have left it: recorded as done, doit
            # finds the task up to date, and a later build is a no-op.
            save_values(
                ws.doit_record_path,
                {
                    f"asset:{asset_id}": _success_values(
                        completed(by_id[asset_id].task_key, f.dep_digests),
                        by_id[asset_id],
                        f.dep_digests,
                    )
                    for asset_id, f in fetched.items()
                    if f.placed
                },
            )
        uploading = remote is not None and remote.write
        reporter = BuildReporter(
            out,
            {f"asset:{t.asset_id}": t.asset_name for t in plan.tasks},
            started=started,
            live=out.isatty(),
            deferred=uploading,
            fetched={f"asset:{asset_id}" for asset_id, f in fetched.items() if f.placed},
            unchanged=len(plan.tasks) - len(wanted),
        )
        tasks = PackerTasks(
            ws.root,
            plan=plan,
            state_dir=ws.state_dir,
            out_dir=ws.out_dir,
            fetched={asset_id: f.key for asset_id, f in fetched.items()},
            only=only,
        )
        namespace = {"DOIT_CONFIG": {**doit_config(ws), "reporter": reporter}, "packer": tasks}
        with remote.uploading(ws) if uploading and remote else contextlib.nullcontext() as up:
            if up is not None:
                reporter.on_built = lambda name: up.submit(by_id[name.removeprefix("asset:")])
            if shard is not None and not wanted:
                code = 0  # an empty shard: doit without task names would build everything
                reporter.complete_run()
            else:
                code = DoitMain(ModuleTaskLoader(namespace)).run(argv) or 0
        if up is not None:
            reporter.counts[UPLOADED] = up.written
            reporter.write_summary()
        if code == 0 and not argv:
            record_build(ws, plan.pack_key)
            if plain:
                _record_stats(ws, scanned, len(plan.tasks), scan_started)
    code = {0: 0, 3: 2}.get(code, 1)
    if json_summary:
        pack = ws.pack_path if code == 0 and reporter.pack_done else None
        _write_json(out, reporter.counts, ok=code == 0, pack=pack)
    built = plan if code == 0 and not argv else None
    return BuildOutcome(
        code, dict(reporter.counts), tuple(reporter.errors), snapshot.registry_hash, built
    )


def _record_stats(ws: Workspace, scanned: api.ScanMemory | None, assets: int, started: int) -> None:
    """Keep the stat record of a plain build that ended with nothing left to do (or remove a
    stale one): what its scan read, from ``scanned``, and what it left."""
    state = scanned.state if scanned is not None else None
    confined = state is not None and state.incremental
    write_record(
        ws.root,
        (ws.registry_path, os.path.join(ws.root, CONFIG_FILE)),
        state.listed if state is not None and confined else None,
        state.folders if state is not None else (),
        state.result.input_stats if state is not None else (),
        (*output_paths(ws), ws.out_dir),
        assets=assets,
        started_ns=started,
    )


def _write_json(out: TextIO, counts: Mapping[str, int], *, ok: bool, pack: str | None) -> None:
    out.write(json.dumps(summary_json(counts, ok=ok, pack=pack)) + "\n")


__all__ = [
    "BuildOutcome",
    "PackerTasks",
    "build_workspace",
    "doit_config",
    "packer_tasks",
    "run_doit",
    "workspace_tasks",
]
