"""`trnbench sweep FILE.toml`: a grid of runs, each repeated, each in its own subprocess.

The file holds one ``[sweep]`` table. Any field of ``bench.inputs.config.RunConfig`` takes a value
or a list of values; the points are the Cartesian product of the lists, the first field of
RunConfig (model, backend, batch, seq, steps, warmup, precision, ...) varying slowest. A field
left out resolves as in ``trnbench run`` (backend defaults, the model's batch and seq). Four
keys steer the sweep itself: ``repeats`` (runs per point, default ``metrics.MIN_REPEATS``, 3:
the fewest a report gives an interval for), ``name`` (the ``sweep``
tag, default the file's stem), ``results`` (JSONL file, relative to the working directory)
and ``timeout_s`` (a run still going after this many seconds is killed and stored as failed).

Every point is resolved and validated before anything runs; a bad file is one error line
``FILE:LINE: FIELD: message`` (the line of the key in the file; tomllib's line for a syntax
error). The sweep is then a loop over its runs: each is a child process of the launcher
(``bench.launch.launcher.run``: ``python -m bench run <the point's flags> ... --tag sweep=NAME --tag
sweep_file=PATH --tag sweep_id=ID --tag point=I --tag repeat=R``), so that an OOM kill or a
crash ends that run only. The run stores its own record (ok, or failed with exit code 1);
when it dies without storing one (a signal, ``timeout_s``), the launcher stores a failed
record in its place.

``--resume`` counts the ok records in the results file whose ``config`` equals the point's
full resolved RunConfig and whose environment key equals this machine's, and runs only the
missing repeats. Environment key = (host, CPU model, torch version, world size): what a
sweep can know before it runs anything. The device name is not part of it: reading it would
initialise the accelerator in the sweep's own process (a NeuronCore belongs to one process,
a CUDA context holds memory) for the whole sweep; on one host with one backend it is fixed.
The git commit is not part of it either: a new commit does not invalidate a measurement.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import progress as rp
from rich.markup import escape
from rich.table import Table

# torch-free at import (`trnbench sweep --help`): backends and environment import torch
# and load in the functions that resolve and run points
from bench.inputs import config, numbers
from bench.inputs.config import ConfigError, RunConfig, tomllib
from bench.launch import launcher
from bench.records import metrics, store
from bench.records.record import Record
from bench.report import console

if TYPE_CHECKING:
    from bench.backends.selection import Selection

SWEEP_KEYS = ("repeats", "name", "results", "timeout_s")
MAX_POINTS = 10_000  # a grid larger than this is a mistake (each point is a run)
CORE_COLUMNS = ("model", "backend", "batch", "seq", "precision", "steps", "warmup")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")


@dataclass(frozen=True)
class Point:
    index: int
    config: RunConfig
    selection: Selection


@dataclass(frozen=True)
class Sweep:
    path: Path
    name: str
    repeats: int
    results: Path
    timeout_s: float | None
    points: list[Point]

    def varying(self) -> list[str]:
        """RunConfig fields whose value differs between points."""
        return [f for f in config.OPTIONS
                if len({getattr(p.config, f) for p in self.points}) > 1]


@dataclass(frozen=True)
class Task:
    point: Point
    repeat: int


class _Source:
    """The sweep file's text, to point errors at the line of a key."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line_of(self, key: str | None, table: str | None = "sweep") -> int:
        """1-based line of ``key`` in ``[table]`` (of the table's header when key is None or
        absent; line 1 when neither is there)."""
        current, header = None, 1
        for n, text in enumerate(self.lines, 1):
            m = _TABLE.match(text)
            if m:
                current = m.group(1)
                if current == table:
                    header = n
                    if key is None:
                        return n
                continue
            m = _KEY.match(text)
            if current == table and m and key in m.groups():
                return n
        return header

    def key_at(self, line: int) -> str | None:
        m = _KEY.match(self.lines[line - 1]) if 0 < line <= len(self.lines) else None
        return next(g for g in m.groups() if g) if m else None

    def error(self, key: str, message: str, table: str | None = "sweep") -> ConfigError:
        return ConfigError(f"{self.path}:{self.line_of(key, table)}: {key}", message)


def _parse(path: Path) -> tuple[_Source, dict[str, Any]]:
    """The file's text and its ``[sweep]`` table; syntax errors at tomllib's line."""
    text = config.read_text(path, str(path))
    src = _Source(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        line = int(m.group(1)) if m else max(len(src.lines), 1)  # "at end of document"
        where = f"{path}:{line}: {src.key_at(line) or 'TOML'}"
        raise ConfigError(where, f"malformed TOML: {e}") from None
    for key in data:
        if key != "sweep":
            raise src.error(key, "unknown table or key; a sweep file holds one [sweep] table",
                            table=key if isinstance(data[key], dict) else None)
    table = data.get("sweep")
    if not isinstance(table, dict):
        raise src.error("sweep", "no [sweep] table; put the grid's fields under [sweep]",
                        table=None)
    return src, table


def _grid(src: _Source, table: dict[str, Any]) -> dict[str, list[Any]]:
    """Each RunConfig field of the table (``config.OPTIONS``) as a list of its values."""
    grid: dict[str, list[Any]] = {}
    for key, value in table.items():
        if key in SWEEP_KEYS:
            continue
        if key not in config.OPTIONS:
            accepted = ", ".join([*config.OPTIONS, *SWEEP_KEYS])
            raise src.error(key, f"unknown field; accepted: {accepted}")
        values = value if isinstance(value, list) else [value]
        if not values:
            raise src.error(key, "an empty list gives no points")
        if any(isinstance(v, list | dict) for v in values):
            raise src.error(key, "takes one value or a list of values")
        grid[key] = values
    return grid


def _points(src: _Source, grid: dict[str, list[Any]]) -> list[Point]:
    """Every grid point resolved and validated (duplicates after resolution dropped); a grid
    of more than MAX_POINTS is refused before any is resolved."""
    from bench.backends.selection import resolve_run

    fields = [f for f in config.OPTIONS if f in grid]
    size = math.prod(len(grid[f]) for f in fields)
    if size > MAX_POINTS:
        widest = max(fields, key=lambda f: len(grid[f]))
        raise src.error(widest, f"the grid has {size:,} points ("
                        + " x ".join(str(len(grid[f])) for f in fields)
                        + f"); at most {MAX_POINTS:,}: split the sweep")
    points: list[Point] = []
    seen: set[tuple] = set()
    for combo in itertools.product(*(grid[f] for f in fields)):
        layer = dict(zip(fields, combo, strict=True))
        try:
            cfg, selection = resolve_run(layer.pop("backend", "auto"), layer)
        except ConfigError as e:
            field = config.field_of(e.field) or e.field  # the file names fields, not flags
            raise src.error(field, e.message) from None
        if cfg.parallel != "ddp":
            raise src.error("parallel", f"{cfg.parallel} shards over torchrun ranks, and a "
                            "sweep runs one process per point (trnbench run --nproc N, or "
                            "trnbench scaling)")
        key = _config_key(cfg.as_dict())
        if key not in seen:
            seen.add(key)
            points.append(Point(len(points), cfg, selection))
    return points


def _number(src: _Source, table: dict[str, Any], key: str, default: Any,
            limits: numbers.Limits) -> Any:
    """A sweep key's number (``numbers.check``), or ``default`` when it is absent."""
    if key not in table:
        return default
    try:
        return numbers.check(table[key], key, limits)
    except ConfigError as e:
        raise src.error(key, e.message) from None


def load(path: str | os.PathLike, results: str | os.PathLike | None = None) -> Sweep:
    """Parse, resolve and validate a sweep file; ``results`` overrides the file's."""
    p = Path(path)
    src, table = _parse(p)
    repeats = _number(src, table, "repeats", metrics.MIN_REPEATS,
                      numbers.Limits(low=1, high=10**6, integer=True))
    name = table.get("name", p.stem)
    if not isinstance(name, str) or not name:
        raise src.error("name", f"must be a non-empty string, got {name!r}")
    timeout_s = _number(src, table, "timeout_s", None, numbers.Limits(low=0, low_open=True,
                                                                       high=1e9))
    if results is None and not isinstance(table.get("results", ""), str):
        raise src.error("results", f"must be a path string, got {table['results']!r}")
    points = _points(src, _grid(src, table))
    out = Path(results or table.get("results") or store.default_path())
    problem = store.writable_problem(out)
    if problem:
        if results is None and "results" in table:
            raise src.error("results", f"cannot append records: {problem}")
        raise ConfigError("--results", f"cannot append records: {problem}")
    return Sweep(p, name, repeats, out, timeout_s, points)


def _config_key(cfg: Any) -> tuple:
    """A hashable form of a config dict (``1 == 1.0`` as in Python)."""
    return tuple(sorted(cfg.items()))


def environment_key(env: dict[str, Any], world_size: Any) -> tuple:
    """Same environment = same host, CPU model, torch version and world size."""
    return (env.get("host"), env.get("cpu"), env.get("torch"), world_size)


def stored_ok(results: Path, env: dict[str, Any]) -> dict[tuple, list[Record]]:
    """The ok records of ``results`` measured in ``env`` (single process), by config; a run
    id read before (a line copied twice) counts once."""
    found: dict[tuple, list[Record]] = defaultdict(list)
    if not results.exists():
        return found
    here = environment_key(env, 1)
    seen: set[str | None] = set()
    for record in store.read(results):
        if record.run_id in seen or record.status != "ok" or \
                not isinstance(record.environment, dict):
            continue
        seen.add(record.run_id)
        if environment_key(record.environment, record.world_size) != here:
            continue
        with contextlib.suppress(TypeError):  # not a flat config dict
            found[_config_key(record.config)].append(record)
    return found


def plan(sweep: Sweep, stored: dict[tuple, list[Record]]
         ) -> tuple[list[Task], dict[int, list[Record]]]:
    """The runs still to do, and each point's stored ok records (the latest ``repeats``).

    A point with k stored records runs ``repeats - k`` more, under repeat indices that its
    stored records' ``repeat`` tags do not already use."""
    tasks: list[Task] = []
    done: dict[int, list[Record]] = {}
    for point in sweep.points:
        have = stored.get(_config_key(point.config.as_dict()), [])[-sweep.repeats:]
        done[point.index] = have
        used = {str((r.tags or {}).get("repeat")) for r in have}
        free = [i for i in range(sweep.repeats) if str(i) not in used]
        tasks += [Task(point, i) for i in free[:sweep.repeats - len(have)]]
    return tasks, done


def _describe(sweep: Sweep, title: str) -> tuple[Table, list[str]]:
    """A table with a row per point in its own columns, and the columns that name it."""
    columns = [*CORE_COLUMNS, *(f for f in sweep.varying() if f not in CORE_COLUMNS)]
    fixed = {f: v for f, v in sweep.points[0].config.as_dict().items() if f not in columns}
    caption = "fixed: " + ", ".join(f"{f}={v}" for f, v in fixed.items())
    table = Table(title=escape(title), caption=escape(caption))
    for col in ("#", *columns):
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")
    return table, columns


def _cells(point: Point, columns: list[str]) -> list[str]:
    return [str(point.index), *(str(getattr(point.config, c)) for c in columns)]


def dry_run_table(sweep: Sweep, done: dict[int, list[Record]] | None) -> Table:
    table, columns = _describe(sweep, f"sweep {sweep.name}: {len(sweep.points)} point(s) x "
                                      f"{sweep.repeats} repeat(s) -> {sweep.results}")
    if done is not None:
        table.add_column("stored", justify="right")
    for point in sweep.points:
        extra = [] if done is None else [str(len(done[point.index]))]
        table.add_row(*_cells(point, columns), *extra)
    return table


def summary_table(sweep: Sweep, records: dict[int, list[Record]]) -> Table:
    """Per point: ok repeats of all run, the median tokens/s and MFU over them, the CV of
    tokens/s and its flag (``metrics.repeat_stats``: CV above ``metrics.CV_FLAG``)."""
    table, columns = _describe(sweep, f"sweep {sweep.name}: {sweep.results}")
    for col in ("status", "tokens/s (median)", "MFU (median)", "CV", "flag"):
        table.add_column(col, justify="right")
    for point in sweep.points:
        ok = [r for r in records[point.index] if r.status == "ok"]
        status = f"{len(ok)}/{len(records[point.index])} ok"
        cells = [f"[green]{status}[/green]" if len(ok) == len(records[point.index])
                 else f"[red]{status}[/red]", "n/a", "n/a", "n/a", ""]
        if ok:
            tps = metrics.repeat_stats([r.tokens_per_s for r in ok])
            mfus = [r.mfu for r in ok]
            mfu = (f"{metrics.repeat_stats(mfus).median:.2%}" if None not in mfus
                   else "null")
            cv = f"{tps.cv:.1%}" if tps.n > 1 else "n/a"  # one run has no spread
            cells[1:] = [f"{tps.median:,.1f}", mfu, cv,
                         f"[yellow]CV > {metrics.CV_FLAG:.0%}[/yellow]" if tps.flagged else ""]
        table.add_row(*_cells(point, columns), *cells)
    return table


def _progress() -> rp.Progress:
    """The sweep's bar with the ETA of the runs left (rich: the rate of the finished ones);
    off when stderr is not a terminal, where each finished run still prints its line."""
    return rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(),
                       rp.MofNCompleteColumn(), rp.TimeElapsedColumn(), rp.TextColumn("eta"),
                       rp.TimeRemainingColumn(), console=console.stderr, refresh_per_second=2,
                       disable=not console.stderr.is_terminal)


def _outcome(task: Task, record: Record) -> str:
    head = f"point {task.point.index} repeat {task.repeat}: "
    if record.status == "ok":
        return head + f"[green]ok[/green] {record.tokens_per_s:,.1f} tokens/s"
    return head + f"[red]{record.status}[/red] {escape(str(record.error))}"


def execute(sweep: Sweep, resume: bool) -> int:
    """Run the sweep: 0 when every run is ok, 1 when one failed."""
    from bench.backends import environment

    stored = stored_ok(sweep.results, environment.capture()) if resume else {}
    tasks, done = plan(sweep, stored)
    total = len(sweep.points) * sweep.repeats
    if resume:
        console.stderr.print(f"--resume: {total - len(tasks)} of {total} run(s) already stored "
                             f"in {escape(str(sweep.results))} (same configuration and "
                             "environment), "
                             f"{len(tasks)} to run")
    sweep_id = uuid.uuid4().hex[:12]
    records: dict[int, list[Record]] = {i: list(rs) for i, rs in done.items()}
    failed = 0
    with _progress() as bar:
        name = escape(sweep.name)  # the bar's text is markup
        progress = bar.add_task(f"sweep {name}", total=total, completed=total - len(tasks))
        for task in tasks:
            bar.update(progress, description=f"sweep {name}: point {task.point.index}, "
                                             f"repeat {task.repeat}")
            tags = {"sweep": sweep.name, "sweep_file": str(sweep.path), "sweep_id": sweep_id,
                    "point": str(task.point.index), "repeat": str(task.repeat)}
            record = launcher.run(task.point.config, task.point.selection, sweep.results, tags,
                                timeout_s=sweep.timeout_s).record
            assert record is not None  # a results file: always stored
            records[task.point.index].append(record)
            failed += record.status != "ok"
            bar.console.print(_outcome(task, record), highlight=False)
            bar.advance(progress)
        bar.update(progress, description=f"sweep {name}")
    console.stdout.print(summary_table(sweep, records))
    console.stderr.print(f"{len(tasks)} run(s): {len(tasks) - failed} ok, {failed} failed; "
                         f"records in {escape(str(sweep.results))} (tag sweep_id={sweep_id})")
    return 1 if failed else 0


