"""Paths a user gives on the command line, checked before anything is computed or written,
and the one way outputs are written (``write_file``).

Each problem is a ``ConfigError`` naming the flag: an empty path, a directory where a file is
meant, a special file (a FIFO would block a reader or a writer), a wrong suffix, a place that
cannot be written, a dangling or looping symbolic link, an output name that is a symbolic
link (writing through it would replace the link's target). A leaf module (no torch, no
pandas).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bench.inputs.errors import ConfigError


def path_arg(text: str) -> str:
    """argparse ``type`` of a path flag: not empty (``--results ""`` is a mistake, not a
    request for the default file)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


def text_arg(text: str) -> str:
    """argparse ``type`` of a flag whose value is text: not empty (``--baseline ""`` is a
    mistake, not a request for no baseline)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a value, got an empty string")
    return text


def env_path(name: str, default: Path) -> Path:
    """The path in environment variable ``name``, ``default`` when it is unset; set but empty
    is a ConfigError (``NAME=`` is a mistake, not a request for the default)."""
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.strip():
        raise ConfigError(name, f"is set but empty; unset it for the default ({default}) or "
                          "give a path")
    return Path(value)


def readable_files(paths: list[Path], flag: str) -> list[Path]:
    """``paths`` if each is a regular file, else a ConfigError naming the first that is not."""
    for p in paths:
        if not p.is_file():
            what = ("is a directory" if p.is_dir() else "is not a regular file" if p.exists()
                    else "does not exist")
            raise ConfigError(flag, f"{p} {what}; expected a JSONL results file (trnbench run "
                              "--results PATH)")
    return paths


def writable_problem(path: Path) -> str | None:
    """Why a file could not be written at ``path``, or None if it can.

    Probes for real (root passes every ``os.access`` check): opens an existing regular file
    for appending, or creates and removes a temporary file in the nearest existing ancestor.
    Leaves nothing behind. A symbolic link to nothing (dangling, or a loop) is a problem now,
    not when the run that wrote through it has ended."""
    try:
        if path.is_symlink() and not path.exists():
            return f"{path} is a symbolic link to nothing (dangling, or a loop)"
        if path.exists():
            if path.is_dir():
                return f"{path} is a directory"
            if not path.is_file():
                return f"{path} is not a regular file"
            with open(path, "ab"):
                return None
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            return f"{parent} is not a directory"
    except OSError as e:
        return f"{e.filename or path} is not writable ({e.strerror})"
    try:
        with tempfile.TemporaryFile(dir=parent):
            return None
    except OSError as e:  # name the folder, not the probe's temporary name
        return f"{path} is not writable: no file can be made in {parent} ({e.strerror})"


def output_file(text: str, flag: str, suffix: str) -> Path:
    """A file to write, ending in ``suffix``, whose place is writable and which is not a
    symbolic link."""
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.suffix.lower() != suffix:
        raise ConfigError(flag, f"{text}: expected a {suffix} file name")
    problem = _link_problem(p) or writable_problem(p)
    if problem:
        raise ConfigError(flag, f"cannot write: {problem}")
    return p


def _link_problem(path: Path) -> str | None:
    if path.is_symlink():
        return (f"{path} is a symbolic link; writing through it would replace "
                f"{os.path.realpath(path)} (remove the link, or choose another place)")
    return None


def output_dir(text: str | None, flag: str, default: Path, names: Iterable[str]) -> Path:
    """A directory to write the files ``names`` into (``default`` when ``text`` is None),
    checked before anything is computed: a directory or a place one can be made, writable,
    and none of ``names`` in it a symbolic link or anything but a regular file."""
    if text is not None and not text.strip():
        raise ConfigError(flag, f"expected a directory, got an empty string (default "
                          f"{default})")
    out = Path(text) if text is not None else default
    if out.exists() and not out.is_dir():
        raise ConfigError(flag, f"{out} exists and is not a directory")
    for name in names:
        target = out / name
        problem = _link_problem(target) or (
            f"{target} exists and is not a regular file"
            if target.exists() and not target.is_file() else None)
        if problem:
            raise ConfigError(flag, f"cannot write: {problem}")
    problem = writable_problem(out / next(iter(names)))
    if problem:
        raise ConfigError(flag, f"cannot write: {problem}")
    return out


def write_file(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, never through a symbolic link: into a
    temporary file beside it, then renamed over it (a rename replaces a link that appeared
    since the check, not its target)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
