"""The ``packer`` command line: parse arguments, call ``packer.api``, render text or JSON.

Exit codes: 0 success, 1 the command ran and found problems or failed, 2 usage error.
A ``PackerError`` becomes ``error: PATH[:LINE:COL]: message`` lines on stderr; anything else
is a bug and keeps its traceback.
Imports: packer.api, packer.errors, packer.plan (result types), packer.workspace; packer.doit,
packer.pack and packer.watch (with watchfiles) lazily, so that commands that do not build never
import doit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, NoReturn

from packer import api
from packer.errors import PackerError, counted, shown
from packer.plan import MovedAsset, RenamedAsset, Status, change_lines, moved_line, renamed_line
from packer.workspace import Workspace, open_workspace


class UsageError(Exception):
    """A command line that does not make sense (exit 2)."""


class _ArgumentError(UsageError):
    """argparse refused the command line; ``parser`` is the (sub)parser whose usage applies."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


def _out(line: str) -> None:
    """Print one line; names in it are data, so their control characters are escaped."""
    sys.stdout.write(shown(line) + "\n")


def _err(line: str) -> None:
    sys.stderr.write(shown(line) + "\n")


def _out_json(document: object, *, one_line: bool = False) -> None:
    """Print a JSON document (``one_line``: on one line, as ``packer build --json`` ends its
    output). json escapes C0 controls itself; DEL, C1 controls and format characters (bidi
    overrides) only occur inside strings, where a \\u escape is the same JSON value, so they
    are escaped too and a terminal never interprets them."""
    text = json.dumps(document, indent=None if one_line else 2, ensure_ascii=False)
    if not text.isascii():
        text = "".join(
            f"\\u{ord(c):04x}" if not c.isprintable() and c not in "\n " else c for c in text
        )
    sys.stdout.write(text + "\n")


def _problem_json(err: PackerError) -> dict[str, Any]:
    """The parts of one ``error:`` line; ``path`` is ``.`` when no file is involved."""
    return {
        "path": err.path or ".",
        "line": err.line,
        "col": err.col,
        "field": err.field,
        "message": err.message,
    }


def _failure_json(problems: Sequence[PackerError]) -> dict[str, Any]:
    """What every ``--json`` prints when the command could not do its work (exit 1 or 2)."""
    return {"ok": False, "errors": [_problem_json(p) for p in problems]}


def _moved_json(m: MovedAsset) -> dict[str, Any]:
    return {
        "asset_id": m.asset_id,
        "asset_name": m.asset_name,
        "from": m.from_path,
        "to": m.to_path,
        "from_name": m.from_name,
    }


def _renamed_json(r: RenamedAsset) -> dict[str, Any]:
    return {"asset_id": r.asset_id, "path": r.path, "from": r.old_name, "to": r.new_name}


def _status_json(status: Status) -> dict[str, Any]:
    return {
        "in_sync": status.in_sync,
        "ok": status.ok,
        "registered": status.registered,
        "new": [asdict(n) for n in status.new],
        "missing": [asdict(m) for m in status.missing],
        "moved": [_moved_json(m) for m in status.moved],
        "renamed": [_renamed_json(r) for r in status.renamed],
        "ambiguous": [
            {"asset_name": a.asset_name, "missing": list(a.missing), "new": list(a.new)}
            for a in status.ambiguous
        ],
        "invalid": [_problem_json(p) for p in status.invalid],
    }


def _status_lines(status: Status) -> list[str]:
    lines = [f"new        {n.path}  ({n.asset_name})" for n in status.new]
    lines += [f"missing    {m.asset_id}  {m.path}  ({m.asset_name})" for m in status.missing]
    lines += [moved_line(m) for m in status.moved]
    lines += [renamed_line(r) for r in status.renamed]
    lines += [
        f"ambiguous  {a.asset_name!r}: missing {', '.join(a.missing)}; new {', '.join(a.new)}"
        for a in status.ambiguous
    ]
    return lines


def _sync_json(result: api.SyncResult, *, dry_run: bool) -> dict[str, Any]:
    changes = result.changes
    return {
        "ok": not result.status.invalid,
        "dry_run": dry_run,
        "written": result.written,
        "registered": [
            {
                "asset_id": None if dry_run else e.asset_id,
                "asset_name": e.asset_name,
                "path": e.path,
            }
            for e in changes.registered
        ],
        "moved": [_moved_json(m) for m in changes.moved],
        "renamed": [_renamed_json(r) for r in changes.renamed],
        "retired": [asdict(m) for m in changes.retired],
        "invalid": [_problem_json(p) for p in result.status.invalid],
    }


def _cmd_init(args: argparse.Namespace) -> int:
    directory = args.dir or args.workspace or os.getcwd()
    ws = api.init(directory, args.name)
    if args.json:
        _out_json({"ok": True, "name": ws.name, "root": ws.root})
    else:
        _out(f"initialised workspace {ws.name!r} in {directory}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    status = api.status(_workspace(args))
    if args.json:
        _out_json(_status_json(status))
    else:
        for line in _status_lines(status):
            _out(line)
        for problem in status.invalid:
            _err(f"error: {problem}")
        if status.ok:
            _out(f"in sync: {counted(status.registered, 'asset')} registered")
    return 0 if status.ok else 1


def _cmd_sync(args: argparse.Namespace) -> int:
    result = api.sync(_workspace(args), dry_run=args.dry_run)
    code = 1 if result.status.invalid else 0
    if args.json:
        _out_json(_sync_json(result, dry_run=args.dry_run))
        return code
    for line in change_lines(result.changes, drawn=not args.dry_run):
        _out(("would: " if args.dry_run else "") + line)
    for problem in result.status.invalid:
        _err(f"error: {problem}")
    if result.status.in_sync:
        _out("registry already in sync")
    return code


def _cmd_ls(args: argparse.Namespace) -> int:
    assets = api.ls(_workspace(args))
    if args.json:
        _out_json({"ok": True, "assets": [asdict(a) for a in assets]})
    else:
        for a in assets:
            _out(f"{a.asset_id}  {a.asset_name}  {a.path}  {a.kind or '-'}")
    return 0


def _cmd_mv(args: argparse.Namespace) -> int:
    moved = api.mv(_workspace(args), args.src, args.dst)
    if args.json:
        _out_json({"ok": True, **_moved_json(moved)})
    else:
        _out(f"moved {moved.asset_id} {moved.from_path} -> {moved.to_path}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    # Plain, the schema itself (what an editor reads); with --json, in the common envelope.
    _out_json({"ok": True, "schema": api.schema()} if args.json else api.schema())
    return 0


def _cmd_merge_registry(args: argparse.Namespace) -> int:
    if args.install:
        if args.files:
            raise UsageError("--install takes no files")
        api.install_merge_driver(args.workspace or os.getcwd())
        if args.json:
            _out_json({"ok": True, "installed": api.MERGE_DRIVER})
        else:
            _out(f"installed git merge driver {api.MERGE_DRIVER!r}")
        return 0
    if len(args.files) != 3:
        raise UsageError("merge-registry takes BASE OURS THEIRS (git's %O %A %B)")
    merged = api.merge_registry(*args.files)
    if args.json:
        _out_json(
            {
                "ok": True,
                "merged": args.files[1],
                "assets": len(merged.entries),
                "retired": len(merged.retired),
            }
        )
    return 0


_BUILD_OWN_FLAGS = ("--frozen", "--json", "-h", "--help")
"""The flags right after ``build`` that are packer's; everything after them is doit's."""
_BUILD_OWN_OPTIONS = ("--shard",)
"""packer's options right after ``build`` that take a value (``--shard K/N``, ``--shard=K/N``)."""

_BUILD_DESCRIPTION = """\
Run the workspace's doit tasks, as `doit` in the workspace does: sync the registry (unless
frozen), build every asset:<asset_id> task that is not up to date, then the pack.

packer's own options come right after `build`. Everything after them goes to doit unchanged:
  packer build -n 2              run tasks in 2 processes (doit's -n / -P thread)
  packer build pack              build one task (and what it needs)
  packer build clean | forget | info asset:<id> | list --all | ignore asset:<id>
                                 doit's commands, on this workspace's tasks
See `doit help run` for doit's run options."""


def _cmd_build(args: argparse.Namespace) -> int:
    from packer.doit import run_doit

    if args.help:
        args.build_parser.print_help()
        return 0

    frozen = args.frozen or os.environ.get("PACKER_FROZEN", "") not in ("", "0")
    ws = _workspace(args)
    shard = None
    if args.shard is not None:
        from packer.cache.settings import cache_settings
        from packer.shards import parse_shard

        try:
            shard = parse_shard(args.shard)
        except ValueError as err:
            raise UsageError(str(err)) from None
        settings = cache_settings(ws.config.cache)
        if settings.remote is None or not settings.write:
            raise UsageError(
                "--shard uploads what it builds: it needs a remote cache with write on "
                "([cache] remote and write = true, or PACKER_CACHE_REMOTE and PACKER_CACHE_WRITE=1)"
            )
    return run_doit(ws, args.doit_args, frozen=frozen, shard=shard, json_summary=args.json)


def _cmd_watch(args: argparse.Namespace) -> int:
    from packer.watch import watch

    frozen = args.frozen or os.environ.get("PACKER_FROZEN", "") not in ("", "0")
    return watch(_workspace(args), frozen=frozen, json_lines=args.json)


def _cmd_verify(args: argparse.Namespace) -> int:
    from packer.pack import verify_pack

    # One spelling of the pack in every line, success or failure: as typed, or the workspace's
    # pack relative to the current folder.
    pack_path = args.pack or os.path.relpath(_workspace(args).pack_path)
    result = verify_pack(pack_path)
    if args.json:
        _out_json({"ok": True, "pack": pack_path, "entries": result.entry_count})
    else:
        _out(f"ok: {pack_path}: {counted(result.entry_count, 'entry')}")
    return 0


def _cmd_cache_prune(args: argparse.Namespace) -> int:
    from packer.cache.prune import prune

    result = prune(_workspace(args), dry_run=args.dry_run, warn=_err)
    if args.json:
        _out_json(
            {
                "ok": True,
                "remote": result.remote,
                "dry_run": result.dry_run,
                "kept": result.kept,
                "deleted": list(result.deleted),
                "copied": result.copied,
            }
        )
        return 0
    verb = "would delete" if result.dry_run else "deleted"
    for name in result.deleted:
        _out(f"{verb} {name}")
    copied = ""
    if result.copied:
        copy_verb = "would copy" if result.dry_run else "copied"
        copied = f", {copy_verb} {counted(result.copied, 'entry')} into new bundles"
    deleted = counted(len(result.deleted), "object")
    _out(f"{result.remote}: {verb} {deleted}, kept {result.kept:,}{copied}")
    return 0


def _cmd_why(args: argparse.Namespace) -> int:
    from packer.why import explain

    answer = explain(_workspace(args), args.asset)
    if args.json:
        _out_json({"ok": True, **asdict(answer)})
        return 0
    task = f"asset:{answer.asset_id}" if answer.asset_id else "not registered"
    state = "up to date" if answer.up_to_date else "not up to date"
    _out(f"{answer.asset_name} ({task}, {answer.path}): {state}")
    for reason in answer.reasons:
        _out(f"  {reason}")
    return 0


def _workspace(args: argparse.Namespace) -> Workspace:
    return open_workspace(args.workspace)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("packer")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message, self)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (docs/cli.md)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="packer", description="Asset packer on doit.")
    parser.add_argument("--version", action="version", version=f"packer {_version()}")
    parser.add_argument(
        "-C", "--workspace", metavar="DIR", help="workspace folder (default: found upward)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "init",
        help="create a workspace",
        description="Create a workspace in DIR: packer.toml, an empty registry.json, assets/, "
        "dodo.py, .gitignore and .gitattributes. Refused inside another workspace.",
    )
    p.add_argument("dir", nargs="?", metavar="DIR", help="where (default: -C DIR, or here)")
    p.add_argument("--name", help="the pack's name (default: the folder's name)")
    _json_flag(p)
    p.set_defaults(run=_cmd_init)

    p = sub.add_parser(
        "status",
        help="compare workspace and registry",
        description="Compare the asset folders with registry.json: new, missing, moved, renamed, "
        "ambiguous and invalid assets. Exit 1 when not in sync or invalid.",
    )
    _json_flag(p)
    p.set_defaults(run=_cmd_status)

    p = sub.add_parser(
        "sync",
        help="bring the registry in line with the workspace",
        description="Register new assets, apply unambiguous moves and renames, and retire missing "
        "assets, in one commit of registry.json.",
    )
    p.add_argument("--dry-run", action="store_true", help="say what it would do; write nothing")
    _json_flag(p)
    p.set_defaults(run=_cmd_sync)

    p = sub.add_parser(
        "ls",
        help="list registered assets by asset_id",
        description="List the registered assets, sorted by asset_id: asset_id, asset_name, path "
        "and kind.",
    )
    _json_flag(p)
    p.set_defaults(run=_cmd_ls)

    p = sub.add_parser(
        "mv",
        help="move an asset folder, keeping its identity",
        description="Move a registered asset folder and record the new path in registry.json, "
        "keeping its asset_id; folders it leaves empty are removed.",
    )
    p.add_argument("src", metavar="SRC", help="the asset folder")
    p.add_argument("dst", metavar="DST", help="where it goes (inside the asset folders)")
    _json_flag(p)
    p.set_defaults(run=_cmd_mv)

    p = sub.add_parser(
        "build",
        help="run the workspace's doit tasks",
        description=_BUILD_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="packer build [-h] [--frozen] [--json] [--shard K/N] [DOIT ARGS ...]",
        add_help=False,
    )
    p.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    p.add_argument(
        "--frozen",
        action="store_true",
        help="never write registry.json: an unregistered, missing or moved asset is an error "
        "(CI mode; also PACKER_FROZEN=1)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="end stdout with one JSON line: ok, pack, processed, cache_local, cache_remote, "
        "uploaded, up_to_date, failed",
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="build only shard K of N of the assets (and their deps), upload them, write no pack "
        "(needs a remote cache with write on; docs/cache.md)",
    )
    p.add_argument(
        "doit_args", nargs=argparse.REMAINDER, metavar="DOIT ARGS", help="passed to doit unchanged"
    )
    p.set_defaults(run=_cmd_build, build_parser=p)

    p = sub.add_parser(
        "why",
        help="say why an asset's task is not up to date",
        description="Whether an asset's task is up to date in doit's record and, if not, every "
        "reason: an input (by name), asset.json, params, the kind or its version, a dep's "
        "output, or never built. Exit 0 when answered, 1 for an asset packer does not know.",
    )
    p.add_argument("asset", metavar="ASSET", help="an asset_name, asset_id or asset folder")
    _json_flag(p)
    p.set_defaults(run=_cmd_why)

    p = sub.add_parser(
        "cache",
        help="manage the remote cache",
        description="Manage the remote cache of built outputs (docs/cache.md).",
    )
    cache = p.add_subparsers(dest="cache_command", required=True, parser_class=_Parser)
    p = cache.add_parser(
        "prune",
        help="delete the remote's objects the current assets do not need",
        description="Delete every object under the remote cache's prefix that is not the entry "
        "of a current asset's output. Other branches' entries go too: never run it while builds "
        "of other branches write to the same prefix (docs/cache.md, Eviction).",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    _json_flag(p)
    p.set_defaults(run=_cmd_cache_prune)

    p = sub.add_parser(
        "watch",
        help="build, then rebuild after every change",
        description="Build, then rebuild after every change under the asset roots, packer.toml "
        "or registry.json; one line per build. Ctrl-C (SIGINT) or SIGTERM ends it (exit 0).",
    )
    p.add_argument("--frozen", action="store_true", help="never write registry.json (as build)")
    p.add_argument("--json", action="store_true", help="one JSON object per build (docs/cli.md)")
    p.set_defaults(run=_cmd_watch)

    p = sub.add_parser(
        "verify",
        help="check a pack",
        description="Check a pack and its manifest completely: format, checksums, order by "
        "asset_id, agreement with the manifest. Exit 1 on any fault, naming the entry.",
    )
    p.add_argument("pack", nargs="?", metavar="PACK", help="default: the workspace's pack")
    _json_flag(p)
    p.set_defaults(run=_cmd_verify)

    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of asset.json",
        description="Print the JSON Schema of asset.json, for editors' completion and validation.",
    )
    _json_flag(p)
    p.set_defaults(run=_cmd_schema)

    p = sub.add_parser(
        "merge-registry",
        help="git merge driver for registry.json",
        description="git's merge driver for registry.json: merge BASE, OURS and THEIRS (git's "
        "%O %A %B) into OURS, or stop with exit 1 on a real conflict. --install adds the "
        "driver to this clone's git config.",
    )
    p.add_argument("--install", action="store_true", help="add the driver to the git config")
    p.add_argument("files", nargs="*", metavar="BASE OURS THEIRS", help="the three versions")
    _json_flag(p)
    p.set_defaults(run=_cmd_merge_registry)
    return parser


def _command_index(argv: Sequence[str]) -> int | None:
    """Where the command word is (the first argument that is not a global option), if any."""
    i = 0
    while i < len(argv):
        if argv[i] in ("-C", "--workspace"):
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def _split_doit_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``packer [-C DIR] build [--frozen] [--json] [--shard K/N] DOIT ARGS`` -> (packer's part,
    doit's part).

    argparse's REMAINDER refuses a first argument that looks like an option (``-n 2``), so
    everything after ``build`` and its own options is cut off before parsing.
    """
    i = _command_index(argv)
    if i is None or argv[i] != "build":
        return argv, []
    end = i + 1
    while end < len(argv):
        if argv[end] in _BUILD_OWN_OPTIONS:
            end += 2
        elif argv[end] in _BUILD_OWN_FLAGS or argv[end].startswith("--shard="):
            end += 1
        else:
            break
    end = min(end, len(argv))
    return argv[:end], argv[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    own, doit_args = _split_doit_args(list(sys.argv[1:] if argv is None else argv))
    # Known before parsing, so that a command line argparse refuses still answers in JSON.
    as_json = "--json" in own
    # packer build's output ends with its JSON line: a failure object is one line there too.
    command = _command_index(own)
    one_line = as_json and command is not None and own[command] == "build"
    try:
        args = parser.parse_args(own)
        if doit_args:
            args.doit_args = doit_args
        code: int = args.run(args)
    except UsageError as err:
        if isinstance(err, _ArgumentError):
            err.parser.print_usage(sys.stderr)
        _fail(PackerError(str(err)), f"error: {err}", as_json, one_line)
        return 2
    except PackerError as err:
        _fail(err, f"error: {err}", as_json, one_line)
        return 1
    except OSError as err:
        # The machine refused (a full disk, a permission, a name too long): not a bug of
        # packer's, so one line naming the file, as for any other failure.
        problem = _os_problem(err)
        _fail(problem, f"error: {problem if problem.path else problem.message}", as_json, one_line)
        return 1
    return code


def _fail(problem: PackerError, line: str, as_json: bool, one_line: bool) -> None:
    """Report what stopped the command: the ``error:`` line on stderr, and with ``--json`` the
    failure object on stdout as well."""
    _err(line)
    if as_json:
        _out_json(_failure_json([problem]), one_line=one_line)


def _os_problem(err: OSError) -> PackerError:
    """An OSError as a problem: its reason, and its file workspace-relative when it lies below
    the current folder (else as the system named it); no path when it names no file."""
    reason = err.strerror or str(err)
    if err.filename is None:
        return PackerError(reason)
    name = os.fsdecode(err.filename)
    rel = os.path.relpath(name) if os.path.isabs(name) else name
    return PackerError(reason, name if rel.startswith("..") else rel)


def entrypoint() -> NoReturn:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``packer ls | head``): not an error of ours, and no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    raise SystemExit(code)
