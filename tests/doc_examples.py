"""The shell examples of README.md and docs/, as the doc-test reads, checks and runs them
(tests/docs/test_doc_examples.py, the docs lane: `make test-docs`; this module's own tests:
tests/unit/test_doc_example_checks.py).

An example is a command line of a fenced ``sh`` block (a line ending in ``\\`` goes on). Every
command is checked: the flags of a ``trnbench`` verb parse with the real parser (also the
``TRNBENCH_VERB``/``TRNBENCH_ARGS`` of a Slurm job), every repository path it names exists, a
``make`` target is in the Makefile. Then each command runs, in order, in a temporary working
directory of its page (``workdir``: a copy of scripts/ and results/, so the published records
are there and nothing is written into the repository; ``results/local.jsonl`` is the temporary
results file, holding one small CPU run to start with) and must exit 0.

What a page says in its blocks (docs/README.md tells the reader):

- ``hardware-only: REASON`` in a comment: the command needs an accelerator, Slurm or the
  network; it is checked, not run. A trailing comment marks its own command, a comment line
  the commands under it up to the next comment line. A command that runs may hold no
  placeholder (``<...>``, ``...``).
- ``(exit N)`` in a command's comment: the exit code it is shown to end with.
- a fenced block whose first line is ``# file: NAME``: a file the examples use, written into
  the working directory before they run.

A runnable command runs small (``shrink``): training verbs train ``tiny`` for 2 steps after 1
warm-up step, a sweep file runs one point once with those settings, a ``for`` loop its first
word, collectives run 2 timed iterations, pytest-benchmark the ``tiny`` benchmark, the
harness's benchmark scripts one round. A loop or ``if`` over several lines is one command; a
command repeated on a page runs once.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from tests.conftest import ROOT, invoke

DOCS = [ROOT / "README.md", ROOT / "results" / "README.md",
        *sorted((ROOT / "docs").rglob("*.md"))]
SH_BLOCK = re.compile(r"^```sh[ \t]*\n(.*?)^```", re.M | re.S)
MARKER = re.compile(r"hardware-only:\s*([^)]*)")
EXIT = re.compile(r"\(exit (\d+)\)")
FOR_LOOP = re.compile(r"\b(for\s+\w+\s+in\s+)(\S+)[^;]*;")  # for NAME in WORD ...;
OPENS, CLOSES = re.compile(r"\b(?:do|then)\b"), re.compile(r"\b(?:done|fi)\b")
FILE_BLOCK = re.compile(r"^```\w*[ \t]*\n# file: (\S+)\n(.*?)^```", re.M | re.S)
PLACEHOLDER = re.compile(r"<[^<>]+>|^\.\.\.$")
# paths of the repository an example may name (results/ holds data that runs make)
CHECKED_DIRS = ("scripts", "tests", "docs", "bench", "models")
TRNBENCH = ("trnbench", ".venv/bin/trnbench")

# how a runnable example runs small: flags appended to a verb's arguments (the last given wins)
SMALL_MODELS = ("tiny", "moe-tiny")
TRAIN = ["--steps", "2", "--warmup", "1"]
APPEND = {"run": TRAIN, "scaling": TRAIN, "comm": ["--iters", "2", "--warmup", "1"],
          "pytest": ["-k", "not moe", "-p", "no:cacheprovider"],
          "scripts/startup_bench.py": ["--repeats", "1"],
          "scripts/gpu/bare_loop.py": ["--rounds", "1", *TRAIN]}


@dataclass
class Command:
    """One example: where it is, its text (comment removed) and why it does not run."""

    doc: Path
    line: int
    text: str
    hardware: str | None = None  # the reason of a hardware-only mark
    tokens: list[str] = field(default_factory=list)
    exit: int = 0  # the exit code its comment gives, as "(exit 1)"

    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}: `{self.text}`"


def split_comment(line: str) -> tuple[str, str]:
    """``line`` as (code, comment): the comment starts at a ``#`` outside quotes that begins
    the line or follows a blank, as in bash."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def mark(comment: str) -> str | None:
    """The reason of a ``hardware-only: REASON`` mark in ``comment``; '' for a mark without
    a reason, None for no mark."""
    m = MARKER.search(comment)
    return m[1].strip() if m else None


def _lines(body: str) -> list[tuple[int, str, str]]:
    """The logical lines of a block (a backslash-newline joins two, as in bash): each one's
    index in the block, its code and its comment."""
    lines, out, i = body.split("\n"), [], 0
    while i < len(lines):
        start, raw = i, lines[i]
        while raw.endswith("\\") and i + 1 < len(lines):
            i += 1
            raw = raw[:-1] + lines[i]
        i += 1
        out.append((start, *split_comment(raw)))
    return out


def commands(doc: Path, text: str | None = None) -> list[Command]:
    """Every command of the ``sh`` blocks of ``doc`` (``text``: its Markdown, default read); a
    loop or ``if`` over several lines is one command."""
    text = doc.read_text() if text is None else text
    out: list[Command] = []
    for block in SH_BLOCK.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        heading: str | None = None  # the mark of the last comment line
        pending: list[tuple[int, str, str]] = []  # the lines of an open loop or if
        for index, code, comment in _lines(block[1]):
            if not code:
                if comment and not pending:
                    heading = mark(comment)
                continue
            pending.append((index, code, comment))
            codes = [c for _, c, _ in pending]
            if sum(len(OPENS.findall(c)) - len(CLOSES.findall(c)) for c in codes) > 0:
                continue
            comments = " ".join(c for _, _, c in pending)
            own, code_given = mark(comments), EXIT.search(comments)
            joined = "\n".join(codes)
            out.append(Command(doc, first + pending[0][0], joined,
                               own if own is not None else heading,
                               shlex.split(joined.replace("\n", " ")),
                               int(code_given[1]) if code_given else 0))
            pending = []
    return out


# --- checks that every example passes, marked or not ---------------------------------------

OPERATORS = ("&&", "||", "|", ";")


def segments(tokens: list[str]) -> list[list[str]]:
    """``tokens`` cut at the shell's list and pipe operators: one list per simple command."""
    out: list[list[str]] = [[]]
    for t in tokens:
        if t in OPERATORS:
            out.append([])
        else:
            out[-1].append(t)
    return [s for s in out if s]


def env_of(tokens: list[str]) -> dict[str, str]:
    """The ``NAME=value`` assignments before a simple command's program."""
    env = {}
    for t in tokens:
        name, eq, value = t.partition("=")
        if not eq or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
            break
        env[name] = value
    return env


def verb_argv(tokens: list[str]) -> list[str] | None:
    """The arguments of the ``trnbench`` call of a simple command (``trnbench``,
    ``.venv/bin/trnbench``, ``python -m bench``, ``torchrun ... -m bench``), None for none."""
    program = tokens[len(env_of(tokens)):]
    if program[:1] and program[0] in TRNBENCH:
        return program[1:]
    for i, t in enumerate(program[:-1]):
        if t == "-m" and program[i + 1] == "bench":
            return program[i + 2:]
    return None


def parse_error(argv: list[str]) -> str | None:
    """What the real parser says of ``trnbench ARGV`` (None: it parses)."""
    import contextlib
    import io

    from bench.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as e:
        return err.getvalue().strip() or f"exit {e.code}"
    return None


def repository_paths(tokens: list[str]) -> list[str]:
    """The words of ``tokens`` (values of ``A=B`` and words of quoted lists too) that name a
    path under one of ``CHECKED_DIRS``."""
    words = [w for t in tokens for part in t.split("=") for w in part.split()]
    return [w for w in words if w.split("/")[0] in CHECKED_DIRS and "/" in w]


def _check_call(tokens: list[str]) -> list[str]:
    """The trnbench flags (also a Slurm job's) and the make target of one simple command."""
    problems = []
    argv = verb_argv(tokens)
    env = env_of(tokens)
    if argv is None and "TRNBENCH_ARGS" in env:  # a Slurm job's trnbench call
        argv = [env.get("TRNBENCH_VERB", "run"), *shlex.split(env["TRNBENCH_ARGS"])]
    if argv is not None and not any("$" in a for a in argv):  # a variable parses when it runs
        error = parse_error(argv)
        if error:
            problems.append(f"trnbench {shlex.join(argv)}: {error}")
    program = tokens[len(env):]
    if program[:1] == ["make"]:
        target = program[1] if len(program) > 1 else ""
        if not re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M):
            problems.append(f"no make target {target!r} in the Makefile")
    return problems


def check(cmd: Command) -> list[str]:
    """What is wrong with ``cmd`` without running it: a placeholder in a runnable example, an
    empty mark, a missing repository file, a flag the parser refuses, an unknown make target."""
    problems = []
    if cmd.hardware == "":
        problems.append("hardware-only without a reason")
    if cmd.hardware is None and any(PLACEHOLDER.search(t) for t in cmd.tokens):
        problems.append("a placeholder in an example that runs: give a value, or mark it "
                        "hardware-only with the reason")
    problems += [f"no such file: {p}" for p in repository_paths(cmd.tokens)
                 if not (ROOT / p).exists()]
    for line in cmd.text.split("\n"):
        for segment in segments(shlex.split(line)):
            problems += _check_call(segment)
    return problems


# --- running the examples that need no hardware ---------------------------------------------

def workdir(path: Path, local: Path) -> Path:
    """A working directory for one page's examples: scripts/ and results/ copied, the records
    of ``local`` as results/local.jsonl, .venv the interpreter's own environment; ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("scripts", "results"):
        shutil.copytree(ROOT / name, path / name, ignore=shutil.ignore_patterns("local.jsonl"))
    shutil.copyfile(local, path / "results" / "local.jsonl")
    for name in ("tests", "pyproject.toml", "Makefile"):
        (path / name).symlink_to(ROOT / name)
    (path / ".venv").symlink_to(Path(sys.prefix))
    return path


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def small_sweep(work: Path, name: str) -> str:
    """A copy of sweep file ``name`` (under ``work``) with one point run once: each list
    cut to its first value, the model ``tiny``, 2 steps after 1 warm-up step; its name."""
    table = tomllib.loads((work / name).read_text())["sweep"]
    table = {k: v[0] if isinstance(v, list) else v for k, v in table.items()}
    table.update(model="tiny", steps=2, warmup=1, repeats=1)
    small = Path(name).with_suffix(".small.toml")
    (work / small).write_text("[sweep]\n" + "".join(f"{k} = {_toml_value(v)}\n"
                                                    for k, v in table.items()))
    return str(small)


def shrink(cmd: Command, work: Path) -> str:
    """The text of ``cmd`` as the doc-test runs it (module docstring): small flags appended to
    each call, a sweep file replaced by its small copy, a ``for`` loop over its first word."""
    return "\n".join(_shrink_line(line, work) for line in cmd.text.split("\n"))


def _shrink_line(line: str, work: Path) -> str:
    if FOR_LOOP.search(line):
        return FOR_LOOP.sub(r"\1\2;", line)
    tokens = shlex.split(line)
    argv = next((a for s in segments(tokens) if (a := verb_argv(s))), None)
    if argv:
        verb = argv[0]
        if verb == "sweep" and "--dry-run" not in argv:
            file = next(a for a in argv[1:] if not a.startswith("-"))
            return re.sub(rf"(?<!\S){re.escape(file)}(?!\S)", small_sweep(work, file), line)
        extra = list(APPEND.get(verb, []))
        if verb in ("run", "scaling"):
            model = argv[argv.index("--model") + 1] if "--model" in argv else None
            if model not in SMALL_MODELS:
                extra += ["--model", "tiny"]
    else:
        extra = next((APPEND[t] for t in tokens if t in APPEND), [])
    return " ".join([line, *map(shlex.quote, extra)])


def execute(cmd: Command, work: Path, env: dict[str, str]) -> str | None:
    """Run ``cmd`` in ``work``: a plain ``trnbench`` call in this process (``invoke``), any
    other command through bash with the interpreter's environment first on PATH. None when it
    exits with the code its comment gives (0 unless "(exit N)"), else what went wrong."""
    text = shrink(cmd, work)
    tokens = shlex.split(text)
    if tokens[0] in TRNBENCH and not re.search(r"[|&;<>$`\n]", text):
        proc = invoke(*tokens[1:], cwd=work, env={**env, "TRNBENCH_RESULTS": None})
    else:
        # a user's shell: no results file of the caller's, no pytest(-xdist) worker variables
        full = {k: v for k, v in os.environ.items()
                if k != "TRNBENCH_RESULTS" and not k.startswith("PYTEST_")}
        full.update(env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{full['PATH']}")
        proc = subprocess.run(["bash", "-ec", text], cwd=work, env=full, capture_output=True,
                              text=True, timeout=600)
    if proc.returncode == cmd.exit:
        return None
    tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
    return f"exit {proc.returncode} running `{text}`: " + " / ".join(tail)


def run_page(doc: Path, work: Path, env: dict[str, str],
             text: str | None = None) -> tuple[list[str], int]:
    """Write the files the page shows (a block whose first line is ``# file: NAME``) into
    ``work``, check every example of ``doc`` and run the runnable ones in order there: the
    problems, each with its place, and how many commands ran (a repeated one runs once)."""
    text = doc.read_text() if text is None else text
    for name, body in FILE_BLOCK.findall(text):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(body)
    problems, ran = [], set()
    for cmd in commands(doc, text):
        found = check(cmd)
        if not found and cmd.hardware is None and cmd.text not in ran:  # a repeat runs once
            ran.add(cmd.text)
            error = execute(cmd, work, env)
            found = [error] if error else []
        problems += [f"{cmd.where()}: {p}" for p in found]
    return problems, len(ran)
