"""The error tree of packer.

Every mistake a user can make, and every fault packer detects, is a ``PackerError`` that carries
the path it is about (workspace-relative, POSIX form) and, where known, line and column or field.
``str(err)`` renders ``PATH[:LINE:COL]: message`` so the CLI and the doit adapter print one line;
``shown`` escapes control characters in it, so a name or path holding a newline or an ANSI
escape cannot forge or restyle a line of output.

Errors must pickle: with ``doit -n N`` processes they cross process boundaries, and subclasses
have their own constructor signatures, so ``__reduce__`` rebuilds from the instance's state.
Imports: stdlib only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls and DEL (newlines, ANSI escapes); Cf: format characters such as the
    # bidi overrides, which reorder what a terminal shows.
    return unicodedata.category(char) in ("Cc", "Cf")


def shown(text: str) -> str:
    """``text`` as packer prints it: every control or format character escaped (``\\n``,
    ``\\x1b``, ``\\u202e``), everything else as it is. Names are data, never formatting."""
    if text.isprintable():
        return text  # the common case, one C call
    return "".join(_escape(char) if _is_control(char) else char for char in text)


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` naming the one of ``known`` closest to a mistyped ``word``,
    or nothing when none is close."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 asset``, ``2 assets``, ``0 entries``: a count with its noun in the right number."""
    many = plural or (noun[:-1] + "ies" if noun.endswith("y") else noun + "s")
    return f"{count:,} {noun if count == 1 else many}"


class PackerError(Exception):
    """Root of every error packer reports to a user (exit code 1)."""

    def __init__(
        self,
        message: str,
        path: str = "",
        line: int | None = None,
        col: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.__dict__.copy()))

    def location(self) -> str:
        where = self.path or "."
        if self.line is not None:
            where += f":{self.line}:{self.col if self.col is not None else 1}"
        return where

    def __str__(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return shown(f"{self.location()}: {field}{self.message}")


def _rebuild(cls: type[PackerError], state: dict[str, object]) -> PackerError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ConfigError(PackerError):
    """packer.toml is missing, unreadable or invalid, or no workspace was found."""


class DeclError(PackerError):
    """An asset.json is not valid JSON or breaks the schema (unknown key, registry-owned field)."""


class DuplicateNameError(DeclError):
    """Two asset.json files declare the same asset_name; the message names both paths."""


class UnknownKindError(DeclError):
    """An asset.json names a kind that is not registered; carries the known kinds."""

    def __init__(
        self, kind: str, known: Sequence[str], path: str = "", field: str | None = "kind"
    ) -> None:
        hint = did_you_mean(kind, known)
        message = f"unknown kind {kind!r}{hint}; known kinds: {', '.join(sorted(known))}"
        super().__init__(message, path, field=field)
        self.kind = kind
        self.known = tuple(sorted(known))


class InputError(PackerError):
    """An input is missing, escapes the workspace, or changed while a build read it."""


class MissingInputError(InputError):
    """An input file does not exist. ``input_path`` is its workspace-relative path, by which a
    larger doit graph tells an input that one of its tasks generates (``packer.doit``)."""

    def __init__(self, message: str, path: str, field: str, input_path: str) -> None:
        super().__init__(message, path, field=field)
        self.input_path = input_path


class CycleError(PackerError):
    """Asset deps form a cycle; carries the asset names along it."""

    def __init__(self, cycle: Sequence[str], path: str = "") -> None:
        super().__init__("dependency cycle: " + " -> ".join(cycle), path, field="deps")
        self.cycle = tuple(cycle)


class RegistryError(PackerError):
    """registry.json is corrupt, hand-broken, or disagrees with the workspace in frozen mode."""


class LaneBusy(PackerError):
    """Another process held the write lane longer than the timeout.

    ``holder`` says who holds it (``pid N on HOST (COMMAND)``, or why that is unknown),
    ``lock_path`` (also ``path``) is the lock file, ``waited_s`` how long this process waited,
    and ``timeout_setting`` names what a user sets to wait longer.
    """

    def __init__(self, holder: str, lock_path: str, waited_s: float, timeout_setting: str) -> None:
        super().__init__(
            f"write lane busy for {waited_s:g}s: held by {holder}; "
            f"wait for it to finish, or set {timeout_setting} to wait longer",
            lock_path,
        )
        self.holder = holder
        self.lock_path = lock_path
        self.waited_s = waited_s
        self.timeout_setting = timeout_setting


class MoveError(PackerError):
    """``packer mv`` refused a move and changed nothing: the source is not a registered asset
    folder, or the destination is taken, outside the workspace or the asset folders, reached
    through a link, or in a folder the scan never looks in."""


class ConflictError(PackerError):
    """A registry merge found both sides claiming the same id or path differently."""


class PackError(PackerError):
    """A pack is damaged or does not agree with its manifest; carries the entry when known."""

    def __init__(self, message: str, path: str = "", entry: str | None = None) -> None:
        super().__init__(message if entry is None else f"entry {entry}: {message}", path)
        self.entry = entry


class KindRegistrationError(PackerError):
    """A ``packer.kinds`` entry point takes the name of a built-in or of another entry point,
    or registers a kind under a name that is not the kind's own: a kind name must mean one
    processor on every machine, or packs would differ between machines."""


class KindError(PackerError):
    """A kind could not process its inputs (bad image, bad WAV, invalid UTF-8...)."""
