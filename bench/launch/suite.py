"""`trnbench suite FILE --hardware H`: one measurement suite, the same file on every machine.

The file (``scripts/suite.toml`` is the one both runbooks run) holds:

- ``[suite]``: ``name``, ``repeats`` (at least 3: fewer is too few to publish an interval),
  ``timeout_s`` (a run still going then is stopped and stored as failed);
- ``[defaults]``: fields of ``trnbench run``'s configuration (``RunConfig``) for every case;
- ``[backend.NAME]``: fields for the runs of one backend only (``compile`` on cuda...);
- ``[[case]]``: ``name``, ``scope`` (``chip``: one chip, i.e. one GPU or the logical
  NeuronCores of one Trainium; ``node``: every rank of one node; ``nodes``: ``nnodes``
  nodes), ``batch`` (sequences per data-parallel rank: a number, or the list a batch search
  takes, smallest first) and any other ``RunConfig`` field but ``backend`` (the machine's).

On a machine (``--hardware``, its backend, its ranks per node and per chip), each case of
scope chip or node:

1. **plan**: the case's configuration at its first batch in the layout the memory plan
   chooses for the case's ranks (``bench.parallel.memory_plan``): the configuration itself
   where it fits, else the smallest change of ``--tp``, ``--ac``, ``--parallel`` or
   ``--param-dtype`` that fits (what ``trnbench plan`` prints), else the case is refused with
   the plan's reason. Memory per rank as ``trnbench run`` reads it (neuron-ls, NVML,
   ``TRNBENCH_RANK_MEMORY_GIB``), else the hardware's datasheet;
2. **batch search**: one run per batch in that layout, smallest first, until the plan refuses
   one (nothing runs or is stored) or a run fails (stored as failed, e.g. out of memory);
   these are the cold runs (their first step compiles on an empty cache);
3. **repeats**: the batch with the most tokens/s, ``repeats`` more times (the warm runs).

Each run is a child of the launcher (``bench.launch.launcher``; torchrun for more than one
rank), tagged ``suite``, ``suite_id``, ``case``, ``phase`` (``search`` or ``repeat``) and
``repeat``. A case of scope ``nodes`` does not run on one machine: its Slurm command is
printed. ``--resume`` reuses the ok runs already stored for the same suite, case, phase,
configuration and host. The summary (``--summary``) is JSON: per case the plan's layout,
each run of the search and the repeats, the best batch, and each run's first-step seconds
with its cache state (cold or warm, where the backend counts it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from bench.inputs import config, numbers
from bench.inputs.config import ConfigError, RunConfig
from bench.launch import launcher
from bench.parallel import memory_plan
from bench.parallel.layout import for_world
from bench.records import metrics, store
from bench.records.record import Record
from bench.report import console

if TYPE_CHECKING:
    from bench.backends.hardware import Figure
    from bench.backends.selection import Selection

SCOPES = ("chip", "node", "nodes")
MIN_REPEATS = 3
SUITE_KEYS = ("name", "repeats", "timeout_s")
CASE_KEYS = ("name", "scope", "nnodes", "batch")
TABLES = ("suite", "defaults", "backend", "case")
SLURM = {"trn1": "scripts/slurm/trn2.sbatch", "trn2": "scripts/slurm/trn2.sbatch"}
SLURM_GPU = "scripts/slurm/gpu.sbatch"


@dataclass(frozen=True)
class Case:
    name: str
    scope: str
    nnodes: int
    batches: list[int]
    fields: dict[str, Any]  # RunConfig fields of the case itself (batch aside)


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    repeats: int
    timeout_s: float | None
    defaults: dict[str, Any]
    backends: dict[str, dict[str, Any]]
    cases: list[Case]

    def fields(self, case: Case, backend: str) -> dict[str, Any]:
        """A case's RunConfig fields on ``backend``: defaults, backend's, the case's."""
        return {**self.defaults, **self.backends.get(backend, {}), **case.fields}


@dataclass(frozen=True)
class Machine:
    """Where the suite runs: the node kind, its backend, ranks per node and per chip."""

    hardware: str
    backend: str
    per_node: int
    per_chip: int

    def ranks(self, case: Case) -> tuple[int, int]:
        """(ranks per node, nodes) of a case here."""
        if case.scope == "chip":
            return min(self.per_chip, self.per_node), 1
        return self.per_node, case.nnodes if case.scope == "nodes" else 1


@dataclass
class Plan:
    """A case on a machine: its ranks, its configuration at the first batch in the chosen
    layout (None: refused, ``reason`` says why), the flags the plan changed."""

    case: Case
    nproc: int
    nnodes: int
    config: RunConfig | None
    selection: Selection | None
    change: str
    reason: str | None
    search: list[dict[str, Any]] = field(default_factory=list)
    repeats: list[dict[str, Any]] = field(default_factory=list)
    best: int | None = None

    def torchrun(self) -> launcher.Torchrun | None:
        return launcher.Torchrun(self.nproc) if self.nproc * self.nnodes > 1 else None


def _error(path: Path, where: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {where}", message)


def _table(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _error(path, f"[{key}]", "must be a table")
    return value


def _fields(path: Path, where: str, table: dict[str, Any], extra: tuple[str, ...] = ()
            ) -> dict[str, Any]:
    """The RunConfig fields of a table (``extra``: its own keys, left out), each checked by
    its Option; ``backend`` is the machine's."""
    out = {}
    for key, value in table.items():
        if key in extra:
            continue
        if key not in config.OPTIONS or key == "backend":
            accepted = [k for k in (*extra, *config.OPTIONS) if k != "backend"]
            raise _error(path, f"{where} {key}", f"unknown field; accepted: {', '.join(accepted)}")
        try:
            out[key] = config.OPTIONS[key].check(value)
        except ConfigError as e:
            raise _error(path, f"{where} {key}", e.message) from None
    return out


def _case(path: Path, i: int, table: Any) -> Case:
    where = f"[[case]] {i + 1}"
    if not isinstance(table, dict):
        raise _error(path, where, "must be a table")
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise _error(path, f"{where} name", f"must be a non-empty string, got {name!r}")
    where = f"[[case]] {name}"
    scope = table.get("scope")
    if scope not in SCOPES:
        raise _error(path, f"{where} scope", f"unknown scope {scope!r}; accepted: "
                     f"{', '.join(SCOPES)}")
    nnodes = table.get("nnodes", 1)
    try:
        nnodes = numbers.check(nnodes, "nnodes", numbers.COUNT)
    except ConfigError as e:
        raise _error(path, f"{where} nnodes", e.message) from None
    if (scope == "nodes") != (nnodes > 1):
        raise _error(path, f"{where} nnodes", "a case of scope nodes needs nnodes > 1, and "
                     f"only it; got scope {scope}, nnodes {nnodes}")
    batch = table.get("batch")
    batches = batch if isinstance(batch, list) else [batch]
    try:
        batches = [numbers.check(b, "batch", numbers.COUNT) for b in batches]
    except ConfigError as e:
        raise _error(path, f"{where} batch", f"a number or a list of numbers: {e.message}"
                     ) from None
    if not batches or batches != sorted(set(batches)):
        raise _error(path, f"{where} batch", f"a search takes batches in ascending order, "
                     f"got {batch!r}")
    return Case(name, scope, nnodes, batches, _fields(path, where, table, CASE_KEYS))


def load(path: str | os.PathLike) -> Suite:
    """Parse and check a suite file; a ConfigError names the file, the table and the field."""
    p = Path(path)
    data = config.read_toml(p, "FILE")
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise _error(p, unknown[0], f"unknown table; accepted: {', '.join(TABLES)}")
    head = _table(p, data, "suite")
    bad = sorted(set(head) - set(SUITE_KEYS))
    if bad:
        raise _error(p, f"[suite] {bad[0]}", f"unknown key; accepted: {', '.join(SUITE_KEYS)}")
    name = head.get("name", p.stem)
    if not isinstance(name, str) or not name:
        raise _error(p, "[suite] name", f"must be a non-empty string, got {name!r}")
    try:
        repeats = numbers.check(head.get("repeats", MIN_REPEATS), "repeats",
                                numbers.Limits(low=MIN_REPEATS, high=1000, integer=True))
        timeout_s = head.get("timeout_s")
        if timeout_s is not None:
            timeout_s = numbers.check(timeout_s, "timeout_s",
                                      numbers.Limits(low=0, low_open=True, high=1e9))
    except ConfigError as e:
        raise _error(p, f"[suite] {e.field}", e.message) from None
    backends = _table(p, data, "backend")
    for key, table in backends.items():
        if key not in config.BACKEND_NAMES[1:] or not isinstance(table, dict):
            raise _error(p, f"[backend.{key}]", "a table per backend; accepted: "
                         f"{', '.join(config.BACKEND_NAMES[1:])}")
    cases = data.get("case", [])
    if not isinstance(cases, list) or not cases:
        raise _error(p, "[[case]]", "at least one case")
    parsed = [_case(p, i, c) for i, c in enumerate(cases)]
    names = [c.name for c in parsed]
    if len(set(names)) != len(names):
        raise _error(p, "[[case]] name", f"names must differ, got {names}")
    return Suite(p, name, repeats, timeout_s, _fields(p, "[defaults]", _table(p, data, "defaults")),
                 {k: _fields(p, f"[backend.{k}]", t) for k, t in backends.items()}, parsed)


def machine(hardware: str, backend: str | None, nproc_per_node: int | None) -> Machine:
    if hardware not in memory_plan.NODES:
        raise ConfigError("--hardware", f"unknown hardware {hardware!r}; accepted: "
                          f"{', '.join(memory_plan.NODES)}")
    per_node, per_chip, _ = memory_plan.NODES[hardware]
    return Machine(hardware, memory_plan.backend_for(hardware, backend),
                   nproc_per_node or per_node, per_chip)


def rank_memory(m: Machine, per_node: int) -> Figure:
    """Memory per rank as `trnbench run` checks it, else the hardware's datasheet figure."""
    from bench.backends.hardware import MemoryUnknown
    from bench.backends.selection import BACKENDS

    try:
        return memory_plan.rank_memory(BACKENDS[m.backend], per_node)
    except MemoryUnknown as e:
        figure, _ = memory_plan.hardware_memory_per_rank(m.hardware)
        return dataclasses.replace(figure, source=f"{figure.source} ({e})")


def plan_case(suite: Suite, case: Case, m: Machine, memory: Figure) -> Plan:
    """The case's configuration at its first batch in the layout the plan chooses (resolved
    as `trnbench run` resolves it, without probing the device: a dry run plans anywhere)."""
    from bench.backends.selection import BACKENDS

    nproc, nnodes = m.ranks(case)
    try:
        cfg = config.resolve(m.backend, {**suite.fields(case, m.backend),
                                         "batch": case.batches[0]})
        if cfg.compile and not BACKENDS[m.backend].supports_compile:
            raise ConfigError("compile", f"does not apply to {m.backend}")
        pred = memory_plan.predict(cfg, for_world(cfg, nproc, nnodes), memory.value)
    except ConfigError as e:
        raise _error(suite.path, f"[[case]] {case.name} {config.field_of(e.field) or e.field}",
                     e.message) from None
    if pred.fits:
        return Plan(case, nproc, nnodes, cfg, None, "", None)
    fits = memory_plan.alternatives(cfg, nproc, nnodes, memory.value)
    if fits:
        chosen = fits[0][0]
        return Plan(case, nproc, nnodes, chosen, None, memory_plan.flags(chosen, cfg), None)
    reason = memory_plan.refusal(cfg, pred, nproc, nnodes, memory)
    return Plan(case, nproc, nnodes, None, None, "", reason)


def _refused(cfg: RunConfig, p: Plan, memory: Figure) -> str | None:
    """The plan's refusal of ``cfg`` on the case's ranks, or None when it fits."""
    pred = memory_plan.predict(cfg, for_world(cfg, p.nproc, p.nnodes), memory.value)
    return None if pred.fits else memory_plan.refusal(cfg, pred, p.nproc, p.nnodes, memory)


def _tags(suite: Suite, suite_id: str, case: Case, phase: str, repeat: int | None = None
          ) -> dict[str, str]:
    tags = {"suite": suite.name, "suite_file": str(suite.path), "suite_id": suite_id,
            "case": case.name, "phase": phase}
    return tags if repeat is None else {**tags, "repeat": str(repeat)}


def slurm_command(suite: Suite, p: Plan, m: Machine, results: Path, suite_id: str) -> str:
    """How to run a case of scope nodes: its `trnbench run` flags through the Slurm batch
    script of the node kind, once per repeat."""
    assert p.config is not None
    flags = [*config.to_argv(p.config), "--results", str(results)]
    for key, value in _tags(suite, suite_id, p.case, "repeat").items():
        flags += ["--tag", f"{key}={value}"]
    script = SLURM.get(m.hardware, SLURM_GPU)
    return (f"NPROC_PER_NODE={p.nproc} TRNBENCH_ARGS={shlex.quote(' '.join(flags))} sbatch "
            f"--nodes={p.nnodes} {script}  # x{suite.repeats}")


def _describe(record: Record) -> dict[str, Any]:
    cache = record.compile_cache
    return {"run_id": record.run_id, "status": record.status, "error": record.error,
            "tokens_per_s": record.tokens_per_s,
            "first_step_s": record.warmup.first_step_s if record.warmup else None,
            "first_step": cache.first_step if cache else None}


def _stored(results: Path, tags: dict[str, str], cfg: RunConfig) -> list[Record]:
    """Ok records of ``results`` of this host with ``tags``' suite, case and phase and
    ``cfg``'s configuration (``--resume``)."""
    if not results.exists():
        return []
    keys = ("suite", "case", "phase")
    host = socket.gethostname()
    return [r for r in store.read(results) if r.status == "ok"
            and all((r.tags or {}).get(k) == tags[k] for k in keys)
            and r.config == cfg.as_dict() and (r.environment or {}).get("host") == host]


def _launch(suite: Suite, p: Plan, cfg: RunConfig, results: Path, tags: dict[str, str],
            reuse: list[Record]) -> Record:
    if reuse:
        return reuse.pop(0)
    assert p.selection is not None
    record = launcher.run(cfg, p.selection, results, tags, torchrun=p.torchrun(),
                          timeout_s=suite.timeout_s).record
    assert record is not None  # a results file: always stored
    return record


def _say(text: str) -> None:
    console.stderr.print(text, highlight=False)


def run_case(suite: Suite, p: Plan, memory: Figure, results: Path, suite_id: str,
             resume: bool) -> None:
    """The batch search and the repeats of a planned case (``p.config`` not None)."""
    assert p.config is not None
    case, name = p.case, escape(p.case.name)
    tps: dict[int, float] = {}
    for batch in case.batches:
        cfg = config.validate(dataclasses.replace(p.config, batch=batch))
        refused = _refused(cfg, p, memory)
        if refused:
            p.search.append({"batch": batch, "status": "refused", "reason": refused})
            _say(f"{name}: batch {batch} refused by the memory plan (nothing stored): "
                 f"{escape(refused)}; the search ends")
            break
        tags = _tags(suite, suite_id, case, "search")
        record = _launch(suite, p, cfg, results, tags,
                         _stored(results, tags, cfg)[:1] if resume else [])
        p.search.append({"batch": batch, **_describe(record)})
        if record.status != "ok":
            _say(f"{name}: batch {batch} [red]{record.status}[/red] (stored): "
                 f"{escape(str(record.error))}; the search ends")
            break
        tps[batch] = record.tokens_per_s
        _say(f"{name}: batch {batch}: {record.tokens_per_s:,.1f} tokens/s")
    if not tps:
        p.reason = "no batch of the search ran"
        return
    p.best = max(tps, key=tps.__getitem__)
    cfg = config.validate(dataclasses.replace(p.config, batch=p.best))
    reuse = _stored(results, _tags(suite, suite_id, case, "repeat"), cfg) if resume else []
    for i in range(suite.repeats):
        record = _launch(suite, p, cfg, results, _tags(suite, suite_id, case, "repeat", i),
                         reuse)
        p.repeats.append(_describe(record))
        status = ("[green]ok[/green] " + f"{record.tokens_per_s:,.1f} tokens/s"
                  if record.status == "ok" else f"[red]{record.status}[/red] "
                  + escape(str(record.error)))
        _say(f"{name}: repeat {i + 1}/{suite.repeats} at batch {p.best}: {status}")


def summary_table(suite: Suite, m: Machine, plans: list[Plan]) -> Table:
    """Per case: ranks, the plan's layout, the batches searched, the best one, the repeats
    that are ok, their median tokens/s and CV, and the cold and warm first steps."""
    t = Table(title=f"suite {suite.name} on {m.hardware} ({m.backend})")
    for col in ("case", "ranks", "layout", "batches", "best", "repeats ok",
                "tokens/s (median)", "CV", "first step cold / warm (s)", "note"):
        t.add_column(col, justify="left" if col in ("case", "layout", "note") else "right")
    for p in plans:
        ok = [r for r in p.repeats if r["status"] == "ok"]
        stats = metrics.repeat_stats([r["tokens_per_s"] for r in ok]) if ok else None
        cold = [r["first_step_s"] for r in p.search if r.get("first_step") == "cold"]
        warm = [r["first_step_s"] for r in p.repeats if r.get("first_step") == "warm"]
        first = " / ".join(f"{min(x):,.1f}" if x else "n/a" for x in (cold, warm))
        layout = "n/a" if p.config is None else (
            f"TP {p.config.tp}, {p.config.parallel}, ac {p.config.ac}, params "
            f"{p.config.param_dtype}" + (f" (plan: {p.change})" if p.change else ""))
        tried = ", ".join(f"{s['batch']}" + ("" if s["status"] == "ok" else f" {s['status']}")
                          for s in p.search)
        t.add_row(escape(p.case.name), str(p.nproc * p.nnodes), escape(layout), escape(tried),
                  str(p.best or "n/a"), f"{len(ok)}/{len(p.repeats)}",
                  f"{stats.median:,.1f}" if stats else "n/a",
                  f"{stats.cv:.1%}" if stats and stats.n > 1 else "n/a", first,
                  escape(p.reason or ""))
    return t


def summary(suite: Suite, m: Machine, plans: list[Plan], results: Path,
            suite_id: str) -> dict[str, Any]:
    return {"suite": suite.name, "file": str(suite.path), "suite_id": suite_id,
            "hardware": m.hardware, "backend": m.backend, "results": str(results),
            "repeats": suite.repeats, "cases": [
                {"name": p.case.name, "scope": p.case.scope, "nproc": p.nproc,
                 "nnodes": p.nnodes, "layout_change": p.change or None,
                 "config": p.config.as_dict() if p.config else None, "reason": p.reason,
                 "search": p.search, "best_batch": p.best, "repeats": p.repeats}
                for p in plans]}


def plans(suite: Suite, m: Machine) -> tuple[list[Plan], Figure]:
    """Every case planned on ``m``, and the memory per rank they were planned with."""
    memory = rank_memory(m, m.per_node)
    return [plan_case(suite, c, m, memory) for c in suite.cases], memory


def execute(suite: Suite, m: Machine, results: Path, resume: bool,
            summary_path: Path | None) -> int:
    """Run the suite's cases of this machine: 0 when every case that runs here has its
    repeats, all ok (a case the plan refuses here is skipped with the reason), else 1."""
    from bench.backends.selection import BackendUnavailable, select

    planned, memory = plans(suite, m)
    try:
        selection = select(m.backend)
    except BackendUnavailable as e:
        raise ConfigError("--backend", str(e)) from None
    for p in planned:
        p.selection = selection
    _say(f"suite {escape(suite.name)} on {m.hardware} ({m.backend}, {m.per_node} ranks per "
         f"node): memory per rank {memory.value / 2**30:,.1f} GiB ({escape(memory.source)})")
    suite_id = uuid.uuid4().hex[:12]
    complete = True
    for p in planned:
        if p.config is None:  # this machine cannot run it: not a failure
            _say(f"{escape(p.case.name)}: refused by the memory plan: {escape(str(p.reason))}")
        elif p.case.scope == "nodes":
            p.reason = f"{p.nnodes} nodes: run on the cluster"
            _say(f"{escape(p.case.name)}: {p.nnodes} nodes, not this machine; on a Slurm "
                 f"cluster: {escape(slurm_command(suite, p, m, results, suite_id))}")
        else:
            run_case(suite, p, memory, results, suite_id, resume)
            complete &= sum(r["status"] == "ok" for r in p.repeats) == suite.repeats
    console.stdout.print(summary_table(suite, m, planned))
    if summary_path is not None:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary(suite, m, planned, results, suite_id),
                                           indent=1) + "\n")
    _say(f"records in {results} (tag suite_id={suite_id})")
    return 0 if complete else 1


def dry_run(suite: Suite, m: Machine, results: Path) -> int:
    """Print each case's plan and the runs it would start, one line each; run nothing."""
    planned, memory = plans(suite, m)
    print(f"# suite {suite.name} on {m.hardware} ({m.backend}), memory per rank "
          f"{memory.value / 2**30:,.1f} GiB ({memory.source})")
    for p in planned:
        ranks = p.nproc * p.nnodes
        head = f"# {p.case.name} ({p.case.scope}, {ranks} rank{'s' if ranks > 1 else ''})"
        if p.config is None:
            print(f"{head}: refused by the memory plan: {p.reason}")
            continue
        print(head + (f": the plan changes {p.change}" if p.change else ""))
        if p.case.scope == "nodes":
            print(slurm_command(suite, p, m, results, "ID"))
            continue
        for batch in p.case.batches:
            cfg = config.validate(dataclasses.replace(p.config, batch=batch))
            refused = _refused(cfg, p, memory)
            if refused:
                print(f"# batch {batch} refused by the memory plan: {refused}; the search ends")
                break
            cmd = launcher.command(cfg, results, _tags(suite, "ID", p.case, "search"),
                                   p.torchrun())
            print("+ " + shlex.join(cmd))
        cfg = dataclasses.replace(p.config, batch=0)
        cmd = launcher.command(cfg, results, _tags(suite, "ID", p.case, "repeat", 0),
                               p.torchrun())
        print("+ " + shlex.join(cmd).replace("--batch 0", "--batch BEST")
              + f"  # x{suite.repeats}, repeat=0..{suite.repeats - 1}, at the batch with the "
                "most tokens/s")
    return 0
