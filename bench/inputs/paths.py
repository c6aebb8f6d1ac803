"""Paths a user gives on the command line, checked before anything is computed or written.

Each problem is a ``ConfigError`` naming the flag: an empty path, a directory where a file is
meant, a special file (a FIFO would block a reader or a writer), a wrong suffix, a place that
cannot be written. A leaf module (no torch, no pandas).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.inputs.errors import ConfigError


def path_arg(text: str) -> str:
    """argparse ``type`` of a path flag: not empty (``--results ""`` is a mistake, not a
    request for the default file)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


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
    Leaves nothing behind."""
    try:
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
        with tempfile.TemporaryFile(dir=parent):
            return None
    except OSError as e:
        return f"{e.filename or path} is not writable ({e.strerror})"


def output_file(text: str, flag: str, suffix: str) -> Path:
    """A file to write, ending in ``suffix``, whose place is writable."""
    p = Path(text)
    if p.suffix.lower() != suffix:
        raise ConfigError(flag, f"{p}: expected a {suffix} file name")
    problem = writable_problem(p)
    if problem:
        raise ConfigError(flag, f"cannot write: {problem}")
    return p
