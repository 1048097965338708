"""A stateful fuzz of packer: random histories of user actions on a real workspace.

A hypothesis ``RuleBasedStateMachine`` keeps a model of the workspace (for each asset folder: its
asset_name, kind, inputs, params, deps and, once synced, its asset_id; and the registry it
expects) and drives a real workspace through what users do: add an asset of each kind (in a
group folder or nested in another asset, maybe named as a deleted one was), copy one, edit an
input, edit it to the same size with its atime and mtime put back, touch a file, change params,
reformat or rename (to a new name, an old one, or another asset's), ``packer mv`` (to a new
folder, onto a registered path whose folder is gone, into a dot folder), a plain filesystem move
(of an asset, of a folder of assets, onto a vacated registered path), delete a folder (or only
its asset.json, or hide it), add or remove a dep, break an asset.json or an input and fix them,
delete or truncate caches and outputs, ``packer status``/``ls``/``sync``, and builds with plain
``doit`` (``-n 1``, ``-n 2`` with processes or threads) and ``packer build``.

After every build, in the same run, it checks (SPEC §2, §4, §5):
- a build fails exactly while an asset.json hides its identity (invalid JSON, duplicate name) or
  a kind refuses an input; a failed build leaves the previous pack and manifest byte-identical
  (and the registry too, when the asset.json is at fault);
- the incremental pack and manifest are byte-identical to a clean build of a copy of the
  workspace (fresh ``.packer/`` and ``build/``, same registry, frozen);
- every asset keeps its asset_id through renames, ``packer mv`` and plain moves (a plain move
  together with a rename loses identity by design: the old id is retired, a new one drawn; a
  new folder where a registered one was takes its id, as identity rests on the path); no id is
  ever reused; registry.json holds exactly the entries and retired ids the model expects;
- the manifest lists exactly the registered assets, sorted by asset_id, and ``PackReader``
  returns for each the bytes its kind makes from the current inputs (computed through the
  ``Kind`` interface); ``verify_pack`` accepts the pack;
- a task whose asset.json, inputs or deps' outputs changed since the last good build ran; a
  build after nothing but touches (or after another build) ran no task at all.
``packer status --json`` and ``ls --json`` agree with the model; after every step, registry.json
parses and is in canonical form.

Budgets come from hypothesis profiles: ``ci`` (the default, about a minute on 2 cores at most,
run by ``.ci/run`` with the rest of the suite) and ``release`` (``doit fuzz``, tests/fuzz.py).
Environment: PACKER_FUZZ_PROFILE (ci | release), PACKER_FUZZ_EXAMPLES and PACKER_FUZZ_STEPS
(override the profile), PACKER_FUZZ_SUBPROCESS=1 (run doit and packer as real processes instead
of in this process), PACKER_FUZZ_STATS (a JSON file that receives the counts of examples, steps
and actions run), PACKER_FUZZ_RACY_S (see ``RACY_S``).

doit runs in this process by default: the workspace's own dodo.py is executed with ``runpy``
and handed to ``DoitMain(ModuleTaskLoader(...))``, which is what ``doit`` does minus the
interpreter start and the ``os.chdir`` of its dodo loader (this process's cwd is left alone;
the dodo.py spells paths relative to it). A real process costs ~0.7 s per command here, which
would leave the CI budget a handful of builds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import doit.cmd_run
from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from packer import api, statcache
from packer.cli import main as cli_main
from packer.errors import PackerError
from packer.hashing import hash_bytes
from packer.kinds.base import KindContext
from packer.kinds.registry import builtin_kinds
from packer.pack import PackReader, verify_pack
from packer.plan import content_fingerprint
from packer.registry import parse, render

# --- budgets ------------------------------------------------------------------------------------

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci",
    max_examples=80,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=_HEALTH,
    derandomize=False,
    print_blob=True,
)
settings.register_profile(
    "release",
    max_examples=500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=_HEALTH,
    derandomize=False,
    print_blob=True,
)


def _budget() -> settings:
    profile = settings.get_profile(os.environ.get("PACKER_FUZZ_PROFILE", "ci") or "ci")
    overrides: dict[str, int] = {}
    if os.environ.get("PACKER_FUZZ_EXAMPLES"):
        overrides["max_examples"] = int(os.environ["PACKER_FUZZ_EXAMPLES"])
    if os.environ.get("PACKER_FUZZ_STEPS"):
        overrides["stateful_step_count"] = int(os.environ["PACKER_FUZZ_STEPS"])
    return settings(profile, **overrides)  # type: ignore[arg-type]


SUBPROCESS = os.environ.get("PACKER_FUZZ_SUBPROCESS", "") not in ("", "0")
RACY_S = float(os.environ.get("PACKER_FUZZ_RACY_S", "0.1"))
"""The stat cache's racy window while fuzzing in this process (packer's own is 2 s).

Files touched within the window are never recorded, so with 2 s the stat cache would hardly
ever be used in a run of a few seconds. Any window longer than the file system's timestamp
granularity keeps the cache sound; a shorter one lets the fuzz reach the cache's hit path."""
STATS: Counter[str] = Counter()
"""Examples, steps and actions run in this process (written to PACKER_FUZZ_STATS)."""

NAME = "game"
MAX_ASSETS = 6
GROUPS = st.integers(0, 2)
PICK = st.integers(0, 1 << 16)

# --- input contents, valid for their kind -------------------------------------------------------


def make_png(width: int, height: int, mode: str, seed: bytes) -> bytes:
    """A tiny PNG stored without compression, so a pixel change keeps its size."""
    from PIL import Image

    need = width * height * len(mode)
    pixels = (seed * need)[:need]
    buffer = io.BytesIO()
    Image.frombytes(mode, (width, height), pixels).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


LIBSNDFILE_SNIFFED = (b"OggS", b"wvpk")
"""libsndfile takes a PCM WAV whose samples begin with these for Ogg or WavPack data and refuses
it (docs/kinds.md, pinned by tests/test_kinds_audio.py); the model predicts no such refusal."""


def make_wav(channels: int, width: int, rate: int, frames: bytes) -> bytes:
    frame_size = channels * width
    data = frames[: len(frames) - len(frames) % frame_size]
    if data.startswith(LIBSNDFILE_SNIFFED):
        data = bytes([data[0] ^ 1, *data[1:]])
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(data)
    return buffer.getvalue()


_JSON_VALUE = st.dictionaries(
    st.text("abcxyz", min_size=1, max_size=3),
    st.one_of(
        st.integers(-999, 999),
        st.text("ab yz", max_size=4),
        st.lists(st.integers(0, 9), max_size=3),
    ),
    min_size=1,
    max_size=3,
)

CONTENT: dict[str, st.SearchStrategy[bytes]] = {
    "raw": st.binary(min_size=1, max_size=12),
    # The leading letter lets a same-size edit always change something.
    "text": st.text("ab z\n\r\té中", max_size=10).map(lambda s: ("t" + s).encode()),
    "json": st.tuples(_JSON_VALUE, st.sampled_from([None, 1, 2])).map(
        lambda pair: json.dumps(pair[0], indent=pair[1]).encode()
    ),
    "image": st.builds(
        make_png,
        st.integers(1, 3),
        st.integers(1, 3),
        st.sampled_from(["RGBA", "RGB", "L"]),
        st.binary(min_size=1, max_size=6),
    ),
    "audio": st.builds(
        make_wav,
        st.integers(1, 2),
        st.integers(1, 2),
        st.sampled_from([8000, 11025]),
        st.binary(max_size=8),
    ),
}
PARAMS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "raw": st.just({}),
    "text": st.sampled_from([{}, {"trailing_newline": True}, {"trailing_newline": False}]),
    "json": st.just({}),
    "image": st.sampled_from([{}, {"format": "rgba8"}, {"format": "rgb8"}, {"format": "l8"}]),
    "audio": st.just({}),
}
KINDS = tuple(CONTENT)
BAD_CONTENT = {
    # Each holds a letter, so a same-size edit changes it, and stays invalid for its kind.
    "text": b"t\xff",
    "json": b'{"a": ',
    "image": b"not a png",
    "audio": b"RIFF-not-a-wave",
}
INPUT_NAMES = {
    "raw": ("p0.bin", "sub/p1.bin"),
    "text": ("t0.txt", "t1.txt"),
    "json": ("data.json",),
    "image": ("pic.png",),
    "audio": ("snd.wav",),
}


def _asset_spec(kind: str) -> st.SearchStrategy[tuple[str, list[bytes], dict[str, Any]]]:
    most = len(INPUT_NAMES[kind])
    return st.tuples(
        st.just(kind), st.lists(CONTENT[kind], min_size=1, max_size=most), PARAMS[kind]
    )


ASSET_SPEC = st.sampled_from(KINDS).flatmap(_asset_spec)


def _shift_letters(data: bytes, shift: int) -> bytes:
    return bytes(
        (c - 97 + shift) % 26 + 97 if 97 <= c <= 122 else c  # a-z, a bijection: keys stay unique
        for c in data
    )


def same_size_variant(kind: str, data: bytes, shift: int) -> bytes:
    """Different bytes of the same length, still valid for ``kind``."""
    if kind == "raw":
        return bytes([data[0] ^ shift, *data[1:]])
    if kind in ("text", "json"):
        return _shift_letters(data, shift)
    if kind == "image":
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
            pixels = bytes(b ^ shift for b in image.tobytes())
            buffer = io.BytesIO()
            Image.frombytes(image.mode, image.size, pixels).save(buffer, "PNG", compress_level=0)
        return buffer.getvalue()
    with wave.open(io.BytesIO(data), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    return make_wav(
        channels, width, 11025 if rate == 8000 else 8000, bytes(b ^ shift for b in frames)
    )


# --- running packer and doit --------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def executed(self) -> list[str]:
        # ``packer build`` piped names the asset after its task: ``.  asset:ID  NAME``.
        lines = self.out.splitlines()
        return [line[3:].split(" ", 1)[0] for line in lines if line.startswith(".  ")]


def run_doit(root: str, args: list[str], *, frozen: bool = False) -> Run:
    """Plain ``doit ARGS`` in the workspace ``root`` (its own dodo.py)."""
    env = dict(os.environ)
    env.pop("PACKER_FROZEN", None)
    if frozen:
        env["PACKER_FROZEN"] = "1"
    if SUBPROCESS:
        done = subprocess.run(
            [sys.executable, "-m", "doit", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Run(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.copy()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            namespace = runpy.run_path(os.path.join(root, "dodo.py"))
            # doit's reporter writes to the sys.stdout it saw when it was imported, unless told;
            # no config files: they would be read from this process's cwd, not the workspace.
            main = DoitMain(
                ModuleTaskLoader(namespace),
                config_filenames=(),
                extra_config={"GLOBAL": {"outfile": out}},
            )
            code = main.run(args)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Run(code, out.getvalue(), err.getvalue())


def run_packer(root: str, *args: str) -> Run:
    """``packer -C ROOT ARGS``."""
    if SUBPROCESS:
        done = subprocess.run(
            [sys.executable, "-m", "packer", "-C", root, *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Run(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    # ``packer build`` runs doit in this process, whose reporter writes to the sys.stdout doit
    # saw when it was imported (the default of its --output-file option) unless told.
    outfile = doit.cmd_run.opt_outfile
    saved = outfile["default"]
    try:
        outfile["default"] = out
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(["-C", root, *args])
    finally:
        outfile["default"] = saved
    return Run(code, out.getvalue(), err.getvalue())


def read_or_none(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


# --- the model ----------------------------------------------------------------------------------


@dataclass
class Asset:
    path: str
    """Workspace-relative folder, as it is now."""
    name: str
    kind: str
    inputs: list[tuple[str, bytes]]
    params: dict[str, Any]
    deps: list[int]
    """Handles of the assets it deps on, in declared order."""
    style: int
    """How its asset.json is formatted (indent, key order): must not matter."""
    decl: bytes = b""
    """The asset.json bytes last written (while not broken)."""
    broken: bool = False
    """Its asset.json is not valid JSON."""
    bad: set[int] = field(default_factory=set)
    """Indexes of inputs its kind refuses (the build fails in its task)."""
    asset_id: str | None = None
    """The id the last sync gave it (None before its first sync)."""

    @property
    def content(self) -> str | None:
        """SPEC §8: what identifies it when it moves and is renamed at once."""
        return content_fingerprint(self.kind, [hash_bytes(data) for _, data in self.inputs])


def _dump(decl: dict[str, Any], style: int) -> bytes:
    if style == 1:
        return json.dumps(decl, separators=(",", ":")).encode()
    if style == 2:
        return (json.dumps(decl, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    return json.dumps(decl, indent=2).encode()


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


@dataclass(frozen=True)
class SyncPlan:
    """What ``packer sync`` must do, as SPEC §2 says, computed from the model alone."""

    keep: dict[int, str]
    """Asset handle -> the registered id it keeps (same path, or moved with its unique name)."""
    new: list[int]
    missing: list[str]
    moved: dict[str, str]
    """id -> new path."""
    renamed: dict[str, str]
    """id -> new name."""


class PackerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        self.base = tempfile.mkdtemp(prefix="packer-fuzz-")
        self.root = os.path.join(self.base, "ws")
        api.init(self.root, NAME)
        self._racy_ns = statcache.RACY_NS
        if not SUBPROCESS:
            statcache.RACY_NS = int(RACY_S * 1e9)
        self.assets: dict[int, Asset] = {}
        self.counter = 0
        self.handles = 0
        self.groups = ["assets/g0", "assets/g1", "assets/g2"]
        self.names: list[str] = []
        """Every asset_name given so far (a rename may take an unused one back)."""
        self.registry: dict[str, tuple[str, str]] = {}
        """The registry as the model expects it: asset_id -> (path, asset_name)."""
        self.retired: set[str] = set()
        self.content: dict[str, str | None] = {}
        """What the last sync saw each registered asset's inputs hold (``Asset.content``)."""
        self.ever: set[str] = set()
        """Every id ever seen active: none may be drawn again."""
        self.quiet = False
        """True while nothing but touches happened since the last successful build."""
        self.built = False
        self.task_inputs: dict[str, tuple[Any, ...]] | None = None
        """What each asset task depends on (SPEC §4), by asset_id, at the last good build."""
        self.written = time.monotonic()
        """When the fuzz last wrote a file in the workspace."""
        self.zstd_level: int | None = None
        """packer.toml's ``[pack] level`` with ``compression = "zstd"``; None: no compression."""
        with open(os.path.join(self.root, "packer.toml"), encoding="utf-8") as handle:
            self.config = handle.read()

    def teardown(self) -> None:
        statcache.RACY_NS = self._racy_ns
        shutil.rmtree(self.base, ignore_errors=True)
        stats_file = os.environ.get("PACKER_FUZZ_STATS")
        if stats_file:
            with open(stats_file, "w", encoding="utf-8") as handle:
                json.dump(dict(sorted(STATS.items())), handle, indent=2)

    # --- helpers --------------------------------------------------------------------------------

    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _fresh_leaf(self) -> str:
        self.counter += 1
        return ("f{}", "f {}", "fé{}")[self.counter % 3].format(self.counter)

    def _fresh_name(self) -> str:
        self.counter += 1
        name = ("n{}", "sprites/n{}", "ñ {}")[self.counter % 3].format(self.counter)
        self.names.append(name)
        return name

    def _fresh_path(self, group: int) -> str:
        return f"{self.groups[group]}/{self._fresh_leaf()}"

    def _destination(self, src: str, group: int, inside: int | None) -> str:
        """A new folder in a group folder, or in another asset's folder (not inside ``src``)."""
        hosts = sorted(h for h, a in self.assets.items() if not _under(a.path, src))
        if inside is None or not hosts:
            return self._fresh_path(group)
        return f"{self.assets[self._pick(inside, hosts)].path}/{self._fresh_leaf()}"

    def _duplicated(self) -> bool:
        names = [a.name for a in self.assets.values() if not a.broken]
        return len(names) != len(set(names))

    def _blocked(self) -> bool:
        """An asset.json hides its identity (invalid JSON, duplicate name): no sync, no build."""
        return any(a.broken for a in self.assets.values()) or self._duplicated()

    def _abs(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def _pick(self, pick: int, where: list[int] | None = None) -> int:
        handles = sorted(self.assets) if where is None else where
        return handles[pick % len(handles)]

    def _write_decl(self, handle: int) -> None:
        a = self.assets[handle]
        decl: dict[str, Any] = {
            "asset_name": a.name,
            "kind": a.kind,
            "inputs": [name for name, _ in a.inputs],
        }
        if a.params:
            decl["params"] = a.params
        if a.deps:
            decl["deps"] = [self.assets[dep].name for dep in a.deps]
        a.decl = _dump(decl, a.style)
        with open(os.path.join(self._abs(a.path), "asset.json"), "wb") as out:
            out.write(a.decl)
        a.broken = False
        self.written = time.monotonic()

    def _write_input(self, handle: int, index: int) -> str:
        a = self.assets[handle]
        name, data = a.inputs[index]
        path = os.path.join(self._abs(a.path), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(data)
        self.written = time.monotonic()
        return path

    def _create(self, path: str, spec: tuple[str, list[bytes], dict[str, Any]], style: int) -> int:
        kind, contents, params = spec
        self.handles += 1
        inputs = [(INPUT_NAMES[kind][i], data) for i, data in enumerate(contents)]
        self.assets[self.handles] = Asset(
            path, self._fresh_name(), kind, inputs, dict(params), [], style
        )
        os.makedirs(self._abs(path), exist_ok=True)
        for index in range(len(inputs)):
            self._write_input(self.handles, index)
        self._write_decl(self.handles)
        self.quiet = False
        return self.handles

    def _reaches(self, start: int, goal: int) -> bool:
        seen: set[int] = set()
        stack = [start]
        while stack:
            h = stack.pop()
            if h == goal:
                return True
            if h not in seen:
                seen.add(h)
                stack.extend(self.assets[h].deps)
        return False

    def _drop(self, handles: set[int]) -> None:
        """Forget deleted assets; their dependents drop the dep (as the user would)."""
        for h in handles:
            del self.assets[h]
        for h, a in self.assets.items():
            if any(dep in handles for dep in a.deps):
                a.deps = [dep for dep in a.deps if dep not in handles]
                self._write_decl(h)
        self.quiet = False

    def _folder_moved(self, src: str, dst: str) -> None:
        for a in self.assets.values():
            if _under(a.path, src):
                a.path = dst + a.path[len(src) :]
        self.quiet = False

    def _vacated(self) -> list[str]:
        """Registered paths where no asset is now (deleted or moved away, not yet synced)."""
        here = {a.path for a in self.assets.values()}
        return sorted(path for path, _ in self.registry.values() if path not in here)

    def _plan_sync(self) -> SyncPlan:
        """SPEC §2: an entry keeps its path's asset (renamed if need be); a missing entry and
        one new folder with its asset_name are a move, and so are (SPEC §8) a missing entry and
        one new folder whose content is theirs alone; other missing entries are retired."""
        at_path = {a.path: h for h, a in self.assets.items()}
        keep: dict[int, str] = {}
        renamed: dict[str, str] = {}
        gone: dict[str, list[str]] = {}
        for asset_id, (path, name) in sorted(self.registry.items()):
            h = at_path.get(path)
            if h is None:
                gone.setdefault(name, []).append(asset_id)
            elif not self.assets[h].broken:
                keep[h] = asset_id
                if self.assets[h].name != name:
                    renamed[asset_id] = self.assets[h].name
            else:
                keep[h] = asset_id  # hidden behind its broken asset.json, not missing
        registered = {path for path, _ in self.registry.values()}
        fresh: dict[str, list[int]] = {}
        for h, a in sorted(self.assets.items()):
            if a.path not in registered and not a.broken:
                fresh.setdefault(a.name, []).append(h)
        new: list[int] = []
        missing: list[str] = []
        moved: dict[str, str] = {}
        for name in sorted(set(gone) | set(fresh)):
            ids, handles = gone.get(name, []), fresh.get(name, [])
            # Registered names are unique (a sync is refused while two decls share one), and so
            # are current ones (else _plan_sync is not called): no move is ambiguous here.
            assert len(ids) <= 1 and len(handles) <= 1, (name, ids, handles)
            if ids and handles:
                keep[handles[0]] = ids[0]
                moved[ids[0]] = self.assets[handles[0]].path
            else:
                missing += ids
                new += handles
        by_content: dict[str, tuple[list[str], list[int]]] = {}
        for asset_id in missing:
            if (recorded := self.content.get(asset_id)) is not None:
                by_content.setdefault(recorded, ([], []))[0].append(asset_id)
        for h in new:
            if (content := self.assets[h].content) in by_content:
                by_content[content][1].append(h)
        for ids, handles in by_content.values():
            if len(ids) == 1 and len(handles) == 1:
                keep[handles[0]] = ids[0]
                moved[ids[0]] = self.assets[handles[0]].path
                STATS["moves told by content (planned)"] += 1
                missing.remove(ids[0])
                new.remove(handles[0])
        return SyncPlan(keep, new, missing, moved, renamed)

    def _registry(self) -> dict[str, Any]:
        with open(os.path.join(self.root, "registry.json"), encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
        return data

    def _check_registry(self) -> None:
        registry = self._registry()
        actual = {e["asset_id"]: (e["path"], e["asset_name"]) for e in registry["assets"]}
        assert actual == self.registry, (actual, self.registry)
        assert set(registry["retired"]) == self.retired, (registry["retired"], self.retired)

    def _synced(self) -> None:
        """After a successful sync: the plan applied, the drawn ids fresh, identities kept."""
        plan = self._plan_sync()
        registry = self._registry()
        by_path = {e["path"]: e["asset_id"] for e in registry["assets"]}
        for h, a in self.assets.items():
            asset_id = by_path.get(a.path)
            assert asset_id is not None, f"{a.path} is not registered: {registry}"
            if h in plan.keep:
                # Renames, `packer mv` and moves with a unique name keep the id (SPEC §2).
                assert asset_id == plan.keep[h], f"{a} got {asset_id}, not {plan.keep[h]}"
            else:
                assert h in plan.new
                assert asset_id not in self.ever, f"id {asset_id} reused for {a}"
            a.asset_id = asset_id
            self.ever.add(asset_id)
        self.retired |= set(plan.missing)
        self.registry = {a.asset_id: (a.path, a.name) for a in self.assets.values()}  # type: ignore[misc]
        self._check_registry()
        # Every sync records what it saw, so a later move and rename is recognised.
        recorded = {e["asset_id"]: e.get("content") for e in registry["assets"]}
        self.content = {a.asset_id: a.content for a in self.assets.values()}  # type: ignore[misc]
        assert recorded == self.content, (recorded, self.content)
        assert self.ever == self.retired | set(self.registry)

    def _expected_bytes(self) -> dict[int, bytes] | None:
        """What each asset's kind makes of its current inputs; None when a kind refuses one."""
        kinds = builtin_kinds()
        done: dict[int, bytes] = {}

        def make(h: int) -> bytes:
            if h not in done:
                a = self.assets[h]
                kind = kinds[a.kind]
                ctx = KindContext(
                    input_names=tuple(name for name, _ in a.inputs),
                    inputs=tuple(data for _, data in a.inputs),
                    params=kind.Params.model_validate(a.params),
                    deps={self.assets[d].name: make(d) for d in a.deps},
                )
                done[h] = kind.process(ctx)
            return done[h]

        try:
            for h in self.assets:
                make(h)
        except PackerError:
            assert any(a.bad for a in self.assets.values())  # the fuzzer's own inputs
            return None
        assert not any(a.bad for a in self.assets.values())
        return done

    def _outputs(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        out = os.path.join(self.root, "build")
        return (
            read_or_none(os.path.join(out, f"{NAME}.pack")),
            read_or_none(os.path.join(out, f"{NAME}.manifest.json")),
            read_or_none(os.path.join(self.root, "registry.json")),
        )

    def _check_pack(self) -> None:
        pack, manifest, _ = self._outputs()
        assert pack is not None and manifest is not None
        pack_path = os.path.join(self.root, "build", f"{NAME}.pack")
        verify_pack(pack_path)
        document = json.loads(manifest)
        assert document["format"] == (1 if self.zstd_level is None else 2)
        listed = [entry["asset_id"] for entry in document["assets"]]
        assert listed == sorted(self.registry, key=str.encode), (listed, self.registry)
        expected = self._expected_bytes()
        assert expected is not None
        by_id = {a.asset_id: h for h, a in self.assets.items()}
        with PackReader(pack_path) as reader:
            assert list(reader.asset_ids) == listed
            for entry in document["assets"]:
                h = by_id[entry["asset_id"]]
                a = self.assets[h]
                assert (entry["asset_name"], entry["kind"]) == (a.name, a.kind), (entry, a)
                assert reader.get(entry["asset_id"]) == expected[h], (a, entry)
                assert reader.get_by_name(a.name) == expected[h]

    def _check_rebuilt(self, executed: list[str]) -> None:
        """SPEC §4: a task is up to date only while its asset.json, inputs, params, kind and
        deps' outputs are unchanged; whenever one of them changed, doit must have run it."""
        expected = self._expected_bytes()
        assert expected is not None
        now = {
            a.asset_id: (
                a.decl,
                a.kind,
                tuple(a.inputs),
                tuple(expected[d] for d in a.deps),
            )
            for a in self.assets.values()
            if a.asset_id is not None
        }
        if self.task_inputs is not None:
            for asset_id, parts in now.items():
                if asset_id in self.task_inputs and self.task_inputs[asset_id] != parts:
                    assert f"asset:{asset_id}" in executed, f"asset:{asset_id} not rebuilt"
        self.task_inputs = now

    def _check_clean_build(self) -> None:
        """A copy with fresh state and outputs, built frozen, gives the same bytes."""
        copy = tempfile.mkdtemp(prefix="packer-fuzz-clean-")
        try:
            target = os.path.join(copy, "elsewhere")
            shutil.copytree(
                self.root,
                target,
                ignore=lambda folder, names: (
                    [n for n in names if n in (".packer", "build")]
                    if os.path.samefile(folder, self.root)
                    else []
                ),
            )
            done = run_doit(target, ["-n", "1"], frozen=True)
            assert done.code == 0, done.out + done.err
            for name in (f"{NAME}.pack", f"{NAME}.manifest.json"):
                clean = read_or_none(os.path.join(target, "build", name))
                incremental = read_or_none(os.path.join(self.root, "build", name))
                assert clean == incremental, f"{name} differs from a clean build"
        finally:
            shutil.rmtree(copy, ignore_errors=True)

    def _count(self, action: str) -> None:
        STATS["steps"] += 1
        STATS[action] += 1

    # --- actions --------------------------------------------------------------------------------

    @precondition(lambda self: len(self.assets) < MAX_ASSETS)
    @rule(
        spec=ASSET_SPEC,
        group=GROUPS,
        style=st.integers(0, 2),
        inside=st.none() | PICK,
        reuse=st.none() | PICK,
    )
    def add_asset(
        self,
        spec: tuple[str, list[bytes], dict[str, Any]],
        group: int,
        style: int,
        inside: int | None,
        reuse: int | None,
    ) -> None:
        """A new asset folder in a group folder, or nested in another asset's folder; maybe
        named as a deleted asset was (if that one is not synced away yet, SPEC §2 takes the
        new folder for the old one moved, and it inherits the id)."""
        self._count("add_asset")
        if inside is not None and self.assets:
            path = f"{self.assets[self._pick(inside)].path}/{self._fresh('f')}"
        else:
            path = self._fresh_path(group)
        h = self._create(path, spec, style)
        taken = {a.name for a in self.assets.values()}
        unused = [name for name in self.names if name not in taken]
        if reuse is not None and unused:
            self._rename(h, unused[reuse % len(unused)])

    @precondition(lambda self: self.assets and len(self.assets) < MAX_ASSETS)
    @rule(pick=PICK, group=GROUPS)
    def add_copy(self, pick: int, group: int) -> None:
        """A second asset with the same kind, inputs and params: the same output key."""
        self._count("add_copy")
        a = self.assets[self._pick(pick)]
        spec = (a.kind, [data for _, data in a.inputs], a.params)
        self.assets[self._create(self._fresh_path(group), spec, a.style)].bad = set(a.bad)

    @precondition(lambda self: self._vacated() and len(self.assets) < MAX_ASSETS)
    @rule(pick=PICK, spec=ASSET_SPEC)
    def add_at_vacated_path(self, pick: int, spec: tuple[str, list[bytes], dict[str, Any]]) -> None:
        """A new asset where a registered one was: the registry takes it for a rename of that
        one (identity rests on the path), which the model predicts."""
        self._count("add_at_vacated_path")
        vacated = self._vacated()
        self._create(vacated[pick % len(vacated)], spec, 0)

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, which=st.integers(0, 1), data=st.data())
    def edit_input(self, pick: int, which: int, data: st.DataObject) -> None:
        self._count("edit_input")
        h = self._pick(pick)
        a = self.assets[h]
        index = which % len(a.inputs)
        a.inputs[index] = (a.inputs[index][0], data.draw(CONTENT[a.kind], label="content"))
        a.bad.discard(index)
        self._write_input(h, index)
        self.quiet = False

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, which=st.integers(0, 1), shift=st.integers(1, 25))
    def same_size_edit(self, pick: int, which: int, shift: int) -> None:
        """Different bytes of the same size, with atime and mtime put back to the ns."""
        self._count("same_size_edit")
        h = self._pick(pick)
        a = self.assets[h]
        index = which % len(a.inputs)
        name, old = a.inputs[index]
        if index in a.bad:
            new = bytes([old[0] ^ shift, *old[1:]])
        else:
            new = same_size_variant(a.kind, old, shift)
        assert len(new) == len(old) and new != old  # the fuzzer's own helper
        path = os.path.join(self._abs(a.path), name)
        before = os.stat(path)
        a.inputs[index] = (name, new)
        self._write_input(h, index)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.quiet = False

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, which=st.integers(0, 2), delta=st.integers(-3600, 3600))
    def touch(self, pick: int, which: int, delta: int) -> None:
        self._count("touch")
        a = self.assets[self._pick(pick)]
        files = ["asset.json", *(name for name, _ in a.inputs)]
        when = time.time_ns() + delta * 1_000_000_000
        os.utime(os.path.join(self._abs(a.path), files[which % len(files)]), ns=(when, when))

    @precondition(lambda self: any(a.kind in ("text", "image") for a in self.assets.values()))
    @rule(pick=PICK, data=st.data())
    def change_params(self, pick: int, data: st.DataObject) -> None:
        self._count("change_params")
        where = sorted(h for h, a in self.assets.items() if a.kind in ("text", "image"))
        h = self._pick(pick, where)
        self.assets[h].params = data.draw(PARAMS[self.assets[h].kind], label="params")
        self._write_decl(h)
        self.quiet = False

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, reuse=st.none() | PICK)
    def rename(self, pick: int, reuse: int | None) -> None:
        """A new asset_name in asset.json (maybe one an asset had before and gave up, or a
        deleted asset had); assets that dep on it follow (deps are by name)."""
        self._count("rename")
        h = self._pick(pick)
        taken = {a.name for a in self.assets.values()}
        unused = [name for name in self.names if name not in taken]
        if reuse is not None and unused:
            self._rename(h, unused[reuse % len(unused)])
        else:
            self._rename(h, self._fresh_name())

    def _rename(self, h: int, name: str) -> None:
        self.assets[h].name = name
        self._write_decl(h)
        for other, a in self.assets.items():
            if h in a.deps:
                self._write_decl(other)
        self.quiet = False

    @precondition(lambda self: self.assets)
    @rule(
        pick=PICK,
        group=GROUPS,
        inside=st.none() | PICK,
        source=st.sampled_from(["registered", "any", "gone"]),
        to=st.sampled_from(["new", "vacated", "hidden"]),
    )
    def packer_mv(self, pick: int, group: int, inside: int | None, source: str, to: str) -> None:
        """``packer mv`` of an asset folder (or of a registered folder that is gone) to a new
        folder, to where a registered asset was (its folder gone, not yet synced), or into a
        folder the scan skips."""
        self._count("packer_mv")
        registered = {path for path, _ in self.registry.values()}
        here = sorted(h for h, a in self.assets.items() if a.path in registered)
        src = self.assets[self._pick(pick, here if source == "registered" and here else None)].path
        vacated = self._vacated()
        if source == "gone" and vacated:
            src = vacated[pick % len(vacated)]
        dst = self._destination(src, group, inside)
        if to == "vacated" and [p for p in vacated if not os.path.lexists(self._abs(p))]:
            free = [p for p in vacated if not os.path.lexists(self._abs(p))]
            dst = free[group % len(free)]
        elif to == "hidden":
            dst = f"{self.groups[group]}/.hidden/{self._fresh_leaf()}"
        before = self._registry()
        # Refused: a source not registered at this path (new, or moved since the last sync) or
        # whose folder is gone; a destination where the registry has an asset (the registry
        # would claim one path twice) or that the scan skips (the asset would go missing).
        movable = (
            os.path.isdir(self._abs(src))
            and any(path == src for path, _ in self.registry.values())
            and not any(_under(path, dst) for path, _ in self.registry.values())
            and to != "hidden"
        )
        done = run_packer(self.root, "mv", self._abs(src), self._abs(dst))
        STATS[f"packer_mv to {to}: {'moved' if movable else 'refused'}"] += 1
        if movable:
            assert done.code == 0, done.out + done.err
            # The folder and every registry entry in it move in one commit.
            self.registry = {
                asset_id: (dst + path[len(src) :] if _under(path, src) else path, name)
                for asset_id, (path, name) in self.registry.items()
            }
            self._folder_moved(src, dst)
            self._check_registry()
        else:
            assert done.code == 1, done.out + done.err
            assert done.err.startswith("error: "), done.err
            assert not os.path.exists(self._abs(dst))
            assert self._registry() == before

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, group=GROUPS, inside=st.none() | PICK)
    def fs_move(self, pick: int, group: int, inside: int | None) -> None:
        """A move outside packer (a file manager, ``git mv``)."""
        self._count("fs_move")
        src = self.assets[self._pick(pick)].path
        dst = self._destination(src, group, inside)
        os.makedirs(os.path.dirname(self._abs(dst)), exist_ok=True)
        os.rename(self._abs(src), self._abs(dst))
        self._folder_moved(src, dst)

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, group=GROUPS)
    def fs_move_and_rename(self, pick: int, group: int) -> None:
        """A folder moved and its asset renamed before any sync (SPEC §8): recognised by its
        inputs' content when no other missing or new asset shares it."""
        self._count("fs_move_and_rename")
        h = self._pick(pick)
        src = self.assets[h].path
        dst = self._fresh_path(group)
        os.makedirs(os.path.dirname(self._abs(dst)), exist_ok=True)
        os.rename(self._abs(src), self._abs(dst))
        self._folder_moved(src, dst)
        self._rename(h, self._fresh_name())

    @precondition(lambda self: self.assets and self._vacated())
    @rule(pick=PICK, where=PICK)
    def fs_move_to_vacated_path(self, pick: int, where: int) -> None:
        """A plain move into the folder of a registered asset that is gone."""
        self._count("fs_move_to_vacated_path")
        src = self.assets[self._pick(pick)].path
        vacated = [
            p for p in self._vacated() if not _under(p, src) and not os.path.lexists(self._abs(p))
        ]
        if not vacated:
            return
        dst = vacated[where % len(vacated)]
        os.makedirs(os.path.dirname(self._abs(dst)), exist_ok=True)
        os.rename(self._abs(src), self._abs(dst))
        self._folder_moved(src, dst)

    @precondition(lambda self: self.assets)
    @rule(group=GROUPS)
    def fs_move_group(self, group: int) -> None:
        """A plain move of a whole folder of assets."""
        self._count("fs_move_group")
        src, dst = self.groups[group], f"assets/{self._fresh_leaf()}"
        if os.path.isdir(self._abs(src)):
            os.rename(self._abs(src), self._abs(dst))
        self.groups[group] = dst
        self._folder_moved(src, dst)

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, how=st.sampled_from(["folder", "asset.json", "hide"]))
    def delete_asset(self, pick: int, how: str) -> None:
        """Delete an asset folder (and assets nested in it), or only its asset.json, or hide
        the folder (a name starting with '.', which the scan skips)."""
        self._count("delete_asset")
        folder = self.assets[self._pick(pick)].path
        if how == "asset.json":
            os.unlink(os.path.join(self._abs(folder), "asset.json"))
            self._drop({h for h, a in self.assets.items() if a.path == folder})
            return
        if how == "hide":
            parent = folder.rsplit("/", 1)[0]
            os.rename(self._abs(folder), self._abs(f"{parent}/.{self._fresh_leaf()}"))
        else:
            shutil.rmtree(self._abs(folder))
        self._drop({h for h, a in self.assets.items() if _under(a.path, folder)})

    @precondition(lambda self: self.assets)
    @rule(group=GROUPS)
    def delete_group(self, group: int) -> None:
        """Delete a whole folder of assets."""
        self._count("delete_group")
        folder = self.groups[group]
        shutil.rmtree(self._abs(folder), ignore_errors=True)
        self._drop({h for h, a in self.assets.items() if _under(a.path, folder)})

    @precondition(lambda self: len(self.assets) >= 2)
    @rule(pick=PICK, other=PICK)
    def add_dep(self, pick: int, other: int) -> None:
        self._count("add_dep")
        h = self._pick(pick)
        candidates = [
            d
            for d in sorted(self.assets)
            if d != h and d not in self.assets[h].deps and not self._reaches(d, h)
        ]
        if not candidates:
            return
        self.assets[h].deps.append(self._pick(other, candidates))
        self._write_decl(h)
        self.quiet = False

    @precondition(lambda self: any(a.deps for a in self.assets.values()))
    @rule(pick=PICK, which=st.integers(0, 5))
    def remove_dep(self, pick: int, which: int) -> None:
        self._count("remove_dep")
        h = self._pick(pick, sorted(h for h, a in self.assets.items() if a.deps))
        deps = self.assets[h].deps
        deps.pop(which % len(deps))
        self._write_decl(h)
        self.quiet = False

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, how=st.sampled_from(["truncated", "garbage", "empty"]))
    def break_decl(self, pick: int, how: str) -> None:
        self._count("break_decl")
        a = self.assets[self._pick(pick)]
        path = os.path.join(self._abs(a.path), "asset.json")
        with open(path, "rb") as handle:
            text = handle.read()
        broken = {"truncated": text.rstrip()[:-1], "garbage": b"{not json", "empty": b""}[how]
        with open(path, "wb") as handle:
            handle.write(broken)
        a.broken = True
        self.quiet = False

    @precondition(lambda self: len(self.assets) >= 2)
    @rule(pick=PICK, other=PICK)
    def duplicate_name(self, pick: int, other: int) -> None:
        """Give an asset the asset_name of another: both are refused until one changes."""
        self._count("duplicate_name")
        h = self._pick(pick)
        self._rename(h, self.assets[self._pick(other, sorted(set(self.assets) - {h}))].name)

    @precondition(lambda self: any(a.kind != "raw" for a in self.assets.values()))
    @rule(pick=PICK, which=st.integers(0, 1))
    def break_input(self, pick: int, which: int) -> None:
        """An input its kind refuses: the build fails in that asset's task."""
        self._count("break_input")
        h = self._pick(pick, sorted(h for h, a in self.assets.items() if a.kind != "raw"))
        a = self.assets[h]
        index = which % len(a.inputs)
        a.inputs[index] = (a.inputs[index][0], BAD_CONTENT[a.kind])
        a.bad.add(index)
        self._write_input(h, index)
        self.quiet = False

    @precondition(lambda self: any(a.broken for a in self.assets.values()))
    @rule(pick=PICK)
    def fix_decl(self, pick: int) -> None:
        self._count("fix_decl")
        self._write_decl(self._pick(pick, sorted(h for h, a in self.assets.items() if a.broken)))
        self.quiet = False

    @precondition(lambda self: self.assets)
    @rule(pick=PICK, style=st.integers(0, 2))
    def reformat_decl(self, pick: int, style: int) -> None:
        """The same declaration in other bytes (indent, key order)."""
        self._count("reformat_decl")
        h = self._pick(pick)
        self.assets[h].style = style
        self._write_decl(h)
        self.quiet = False

    @precondition(lambda self: self.built)
    @rule(
        what=st.sampled_from(
            ["statcache", "decls", "cache", "doit.json", ".packer", "truncate", "build", "artifact"]
        ),
        pick=PICK,
    )
    def disturb_state(self, what: str, pick: int) -> None:
        """Delete a cache (SPEC §1: caches are never authority, so no byte changes), truncate
        one (ignored like a missing one), or delete build/ or one artifact (their tasks run)."""
        self._count(f"disturb_state {what}")
        state = os.path.join(self.root, ".packer")
        out = os.path.join(self.root, "build")
        if what == "truncate":
            path = os.path.join(state, ("statcache", "decls")[pick % 2])
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    data = handle.read()
                with open(path, "wb") as handle:
                    handle.write(data[: pick % max(len(data), 1)])
        elif what == "artifact":
            folder = os.path.join(out, "assets")
            artifacts = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            if artifacts:
                os.unlink(os.path.join(folder, artifacts[pick % len(artifacts)]))
            self.quiet = False
        else:
            path = {".packer": state, "build": out}.get(what, os.path.join(state, what))
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.unlink(path)
            if what in ("doit.json", ".packer", "build"):
                self.quiet = False  # doit forgot what it built, or its targets are gone

    def _status_and_ls(self) -> None:
        """``packer status --json`` reports what the model says a sync would do, ``packer sync
        --dry-run`` agrees, ``packer ls`` lists the registry; none of them writes anything."""
        before = self._outputs()
        blocked = self._blocked()
        done = run_packer(self.root, "status", "--json")
        report = json.loads(done.out)
        if not self._duplicated():  # two decls with one name: the plan is packer's to refuse
            plan = self._plan_sync()
            in_sync = not (plan.new or plan.missing or plan.moved or plan.renamed)
            assert done.code == (0 if in_sync and not blocked else 1), done.out + done.err
            assert report["in_sync"] == in_sync, (report, plan)
            assert sorted(n["path"] for n in report["new"]) == sorted(
                self.assets[h].path for h in plan.new
            ), (report, plan)
            assert sorted(m["asset_id"] for m in report["missing"]) == sorted(plan.missing)
            assert {m["asset_id"]: m["to"] for m in report["moved"]} == plan.moved
            assert {r["asset_id"]: r["to"] for r in report["renamed"]} == plan.renamed
            # Each broken asset.json is reported; so may be the assets that dep on it (their
            # dep's name is hidden), and nothing else.
            invalid = {p["path"] for p in report["invalid"]}
            broken = {h for h, a in self.assets.items() if a.broken}
            assert {f"{self.assets[h].path}/asset.json" for h in broken} <= invalid, report
            assert invalid <= {
                f"{a.path}/asset.json"
                for h, a in self.assets.items()
                if h in broken or any(d in broken for d in a.deps)
            }, report
        else:
            assert done.code == 1, done.out + done.err
        done = run_packer(self.root, "sync", "--dry-run")
        assert done.code == (1 if blocked else 0), done.out + done.err
        done = run_packer(self.root, "ls", "--json")
        assert done.code == 0, done.out + done.err
        kinds = {a.path: (None if a.broken else a.kind) for a in self.assets.values()}
        listed = [
            (e["asset_id"], e["asset_name"], e["path"], e["kind"])
            for e in json.loads(done.out)["assets"]
        ]
        assert listed == [
            (asset_id, name, path, kinds.get(path))
            for asset_id, (path, name) in sorted(self.registry.items(), key=lambda i: i[0].encode())
        ]
        assert self._outputs() == before

    @rule(level=st.sampled_from([None, 1, 3]))
    def set_compression(self, level: int | None) -> None:
        """Compress the pack's entries with zstd at ``level``, or not at all (SPEC §5): the
        pack's bytes change, the entries' do not (``_check_pack``), and a clean build of the
        same settings gives the same pack (``_check_clean_build``)."""
        self._count(f"set_compression {level}")
        table = "" if level is None else f'\n[pack]\ncompression = "zstd"\nlevel = {level}\n'
        with open(os.path.join(self.root, "packer.toml"), "w", encoding="utf-8") as handle:
            handle.write(self.config + table)
        self.written = time.monotonic()
        if level != self.zstd_level:
            self.quiet = False
        self.zstd_level = level

    @rule(apply=st.booleans())
    def sync(self, apply: bool) -> None:
        """``packer status``, ``ls`` and ``sync --dry-run``; then ``packer sync`` if ``apply``."""
        self._count("sync" if apply else "status")
        self._status_and_ls()
        if not apply:
            return
        before = self._outputs()
        done = run_packer(self.root, "sync")
        if self._blocked():
            # An asset.json that hides its identity stops the sync: nothing is written.
            assert done.code == 1, done.out + done.err
            assert done.err.startswith("error: "), done.err
            assert self._outputs() == before
            return
        assert done.code == 0, done.out + done.err
        self._synced()
        if self._outputs()[2] != before[2]:
            self.quiet = False

    @rule(
        args=st.sampled_from(
            [
                ["-n", "1"],
                ["-n", "2"],
                ["-n", "2", "-P", "thread"],
                ["packer", "build"],
                ["packer", "build", "-n", "2"],
            ]
        ),
        aged=st.booleans(),
    )
    def build(self, args: list[str], aged: bool) -> None:
        """Plain ``doit`` in the workspace, or ``packer build`` (whose no-op fast path skips
        doit). ``aged``: first let the files age past the racy window, so that this build's stat
        cache records them and the next one may reuse them."""
        self._count("build " + " ".join(args))
        if aged:
            time.sleep(max(0.0, RACY_S + 0.02 - (time.monotonic() - self.written)))
        before = self._outputs()
        if args[0] == "packer":
            done = run_packer(self.root, *args[1:])
        else:
            done = run_doit(self.root, args)
        assert "Traceback" not in done.out + done.err, done.out + done.err
        if self._blocked():
            # Refused before any task runs: the previous pack, manifest and registry stay as
            # they were, byte for byte.
            assert done.code != 0, done.out + done.err
            assert self._outputs() == before
            STATS["failed builds (asset.json)"] += 1
            return
        if self._expected_bytes() is None:
            # A kind refused an input: that task fails, the pack task does not run, and the
            # previous pack and manifest stay; the build synced the registry first.
            assert done.code == 1, done.out + done.err
            assert self._outputs()[:2] == before[:2]
            self._synced()
            STATS["failed builds (input)"] += 1
            self.quiet = False
            self.task_inputs = None  # doit recorded the tasks that did succeed: unknown here
            return
        assert done.code == 0, done.out + done.err
        STATS["good builds"] += 1
        self.built = True
        if self.quiet:
            assert done.executed == [], f"nothing changed, yet doit ran {done.executed}"
        self._synced()
        self._check_pack()
        self._check_rebuilt(done.executed)
        self._check_clean_build()
        self.quiet = True

    @invariant()
    def registry_is_canonical(self) -> None:
        with open(os.path.join(self.root, "registry.json"), "rb") as handle:
            text = handle.read()
        assert render(parse(text)) == text


PackerMachine.TestCase.settings = _budget()
TestPackerStateMachine = PackerMachine.TestCase
