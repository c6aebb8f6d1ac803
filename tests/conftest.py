"""Fixtures and helpers of tests/unit and tests/integration (and tests/docs, tests/xla): the
suite on pytest-xdist workers; the CLI in-process (``invoke``, the ``cli_main`` fixture) or as
a real subprocess (``cli``), with results and caches in tmp dirs; fake RAPL trees; the report's
tables as a Markdown reader sees them; a valid `trnbench ingest` input; `trnbench compare`'s
records."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent

# tests/xla is the XLA:CPU lane: it runs in .venv-xla (torch 2.9 + torch-xla 2.9), which
# `make test` runs as a second pytest session; the main environment has no torch_xla.
collect_ignore_glob = [] if importlib.util.find_spec("torch_xla") else ["xla/*"]

# --- the suite on pytest-xdist workers ------------------------------------------------------
# pyproject's addopts run the suite on pytest-xdist workers, `-n auto --dist loadfile`: one
# worker per CPU, at most MAX_WORKERS (`-n 0` runs in this process, `-n N` on N workers). A
# module runs whole on one worker, so that what its tests share is made once: the report's
# records, a scaling series, the Slurm cluster (a fixture of tests/conftest.py, such as
# compare_runs, is made once per worker that uses it). A run that times
# benchmarks (--benchmark-json, --benchmark-only, ..., or tests/benchmarks alone) stays in this
# process: pytest-benchmark times nothing on a worker.
MAX_WORKERS = 4
BENCHMARK_TIMING = ("benchmark_json", "benchmark_only", "benchmark_save", "benchmark_autosave",
                    "benchmark_enable", "benchmark_compare")


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# a worker's share of the CPUs, as torchrun gives its ranks one thread each: two workers of
# two torch threads each on two cores run several times slower than one thread each (the
# threads of one wait on those of the other); an OMP_NUM_THREADS of the caller is kept
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(
        max(1, _usable_cpus() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


def _times_benchmarks(config: pytest.Config) -> bool:
    """Whether the run asks for benchmark timings, or runs tests/benchmarks alone."""
    if any(config.getoption(name, None) for name in BENCHMARK_TIMING):
        return True
    paths = [config.invocation_params.dir / a.split("::")[0] for a in config.args]
    return bool(paths) and all(p.resolve().is_relative_to(ROOT / "tests" / "benchmarks")
                               for p in paths)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """The number of workers of ``-n auto``."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist reads it
    if _times_benchmarks(config):
        return 0
    cpus = _usable_cpus()
    return min(cpus, MAX_WORKERS) if cpus > 1 else 0


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One GEMM-peak cache for the whole session (the CPU peak is measured once)."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["TRNBENCH_CACHE_DIR"] = str(path)
    return path


@pytest.fixture
def cli(cache_dir, tmp_path):
    """Run `python -m bench ARGS` in a temporary cwd; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir), "COLUMNS": "200"}
        return subprocess.run(
            [sys.executable, "-m", "bench", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
        )

    return run


def invoke(*args: str, cwd: Path, env: dict[str, str | None] | None = None
           ) -> subprocess.CompletedProcess:
    """``trnbench ARGS`` in this process (``bench.cli.main``) in ``cwd`` with ``env`` set in the
    environment (None: unset): its exit code, stdout and stderr as a subprocess's. What a verb
    starts (torchrun, a sweep's runs) is still a real process and inherits that environment."""
    from bench.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse and bad input exit 2
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["trnbench", *args], code, out.getvalue(), err.getvalue())


def refused(capsys, *argv: str) -> str:
    """``trnbench ARGV`` in this process must exit 2 with one line on stderr; the line."""
    from bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("trnbench: error: "), err
    return err


def project(capsys, *args: str) -> dict:
    """``trnbench project ARGS --json`` in this process; the parsed JSON."""
    from bench.cli import main

    assert main(["project", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def write_sweep(tmp_path: Path, body: str, name: str = "grid.toml") -> Path:
    """A sweep file ``name`` in ``tmp_path``: ``[sweep]``, results in runs.jsonl, ``body``."""
    path = tmp_path / name
    path.write_text('[sweep]\nresults = "runs.jsonl"\n' + body)
    return path


@pytest.fixture
def run_sweep(cache_dir, tmp_path, monkeypatch, capsys):
    """``trnbench sweep ARGS`` in-process in tmp_path: (exit code, stdout, stderr)."""
    from bench.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["sweep", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def cli_main(cache_dir, tmp_path):
    """``invoke`` in a temporary cwd: the in-process stand-in of ``cli`` (no torch import per
    call), for tests that check what a verb does rather than how the process starts."""

    def run(*args: str) -> subprocess.CompletedProcess:
        return invoke(*args, cwd=tmp_path, env={"TRNBENCH_CACHE_DIR": str(cache_dir)})

    return run


@pytest.fixture
def launches(monkeypatch) -> list:
    """The run configurations ``trnbench run --nproc N`` in this process hands to torchrun
    (every check before the launch passed), instead of launching them."""
    from bench.train import command

    launched: list = []
    monkeypatch.setattr(command, "launch_torchrun",
                        lambda args, cfg, *rest: launched.append(cfg) or 0)
    return launched


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- fake RAPL powercap trees (the Linux sysfs format; this machine exposes none) ---------

def write_atomic(path: Path, text: str) -> None:
    """Replace a file atomically, as sysfs shows one value at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def rapl_zone(root: Path, zone: str, name: str, uj: int, max_uj: int = 262_143_328_850) -> Path:
    """A powercap zone directory (name, max_energy_range_uj, energy_uj); returns its counter."""
    write_atomic(root / zone / "name", name + "\n")
    write_atomic(root / zone / "max_energy_range_uj", f"{max_uj}\n")
    write_atomic(root / zone / "energy_uj", f"{uj}\n")
    return root / zone / "energy_uj"


@contextlib.contextmanager
def ticking_counter(path: Path, uj_per_tick: int, period_s: float = 0.01) -> Iterator[None]:
    """Advance a fake energy_uj file in the background, as a busy CPU package would."""
    stop = threading.Event()

    def run():
        uj = int(path.read_text())
        while not stop.wait(period_s):
            uj += uj_per_tick
            write_atomic(path, f"{uj}\n")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- Markdown tables ------------------------------------------------------------------------

def parse_tables(md: str) -> list[tuple[list[str], list[str], list[list[str]]]]:
    """Every table of ``md`` as markdown-it-py (GFM table rule) reads it: (headers,
    alignments, rows of cell texts)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    tables, current, row, cell_align = [], None, None, None
    for t in tokens:
        if t.type == "table_open":
            current = ([], [], [])
        elif t.type in ("th_open", "td_open"):
            cell_align = (t.attrGet("style") or "").removeprefix("text-align:") or "left"
        elif t.type == "tr_open":
            row = []
        elif t.type == "inline" and current is not None and row is not None:
            row.append(t.content)
            if len(current[0]) < len(row) and not current[2]:
                current[1].append(cell_align)
        elif t.type == "tr_close":
            (current[0].extend(row) if not current[0] else current[2].append(row))
            row = None
        elif t.type == "table_close":
            tables.append(current)
            current = None
    return tables


# a valid ingest input: pytest-benchmark JSON with the trnbench plugin's extra_info
OK_CONFIG = {"model": "tiny", "backend": "cpu", "batch": 2, "seq": 32, "steps": 1, "warmup": 0,
             "precision": "fp32"}
OK_FIELDS = {"device": {"name": "cpu", "kind": "cpu"}, "model": {"name": "tiny"},
             "tokens": 64, "window_s": 0.5, "tokens_per_s": 128.0,
             "tokens_per_s_per_chip": 128.0, "mfu": None, "peak": None, "step_time": {},
             "energy": {"method": "null", "j_per_token": None}, "loss_first": 5.0,
             "loss_last": 4.0}


def bench_json(**fields) -> str:
    """A pytest-benchmark JSON file of one benchmark whose trnbench fields are ``OK_FIELDS``
    updated with ``fields`` (what `trnbench ingest` reads)."""
    tb = {"config": OK_CONFIG, "environment": {"host": "h"}, "backend": {"name": "cpu"},
          "fields": {**OK_FIELDS, **fields}, "benchmark": {"rounds": 1}}
    return json.dumps({"datetime": "2026-01-01T00:00:00+00:00", "benchmarks": [
        {"name": "t", "fullname": "t.py::t", "extra_info": {"trnbench": tb}, "stats": {}}]})


# --- `trnbench compare`'s records (tests/unit/test_compare.py, integration/test_compare_cli.py)

COMPARE_RUN = ("run", "--model", "tiny", "--batch", "2", "--seq", "16", "--steps", "3",
               "--warmup", "1", "--backend", "cpu", "--json")


@pytest.fixture(scope="session")
def compare_runs(cache_dir, tmp_path_factory) -> Path:
    """Three real CPU runs (``trnbench run`` in-process): side=a and side=b at seq 16, side=c
    at seq 32."""
    path = tmp_path_factory.mktemp("compare") / "cpu.jsonl"
    for side, seq in (("a", "16"), ("b", "16"), ("c", "32")):
        args = [*COMPARE_RUN, "--tag", f"side={side}", "--results", str(path)]
        args[args.index("--seq") + 1] = seq
        proc = invoke(*args, cwd=path.parent)
        assert proc.returncode == 0, proc.stderr
    return path


def device_record(template: dict, kind: str, name: str, per_chip: float, chips: float = 1,
                  energy: tuple[str, float | None] = ("none", None)):
    """A record of a device that cannot run here: a real record with its device,
    throughput and energy blocks replaced."""
    from bench.records.record import Record

    r = copy.deepcopy(template)
    r["run_id"] = uuid.uuid4().hex[:12]
    r["tags"] = {}
    r["device"].update(name=name, kind=kind, chips=chips)
    r["tokens_per_s_per_chip"] = per_chip
    r["tokens_per_s"] = per_chip * chips
    method, j_per_token = energy
    scope = "modelled: table power" if method == "modelled" else "accelerators: test"
    r["energy"].update(method=method, j_per_token=j_per_token, scope=scope,
                       joules=None if j_per_token is None else j_per_token * r["tokens"],
                       reason=None if j_per_token is not None else "not measured")
    return Record.from_json(r)


@pytest.fixture(scope="session")
def compare_devices(compare_runs, tmp_path_factory) -> Path:
    """Hand-made H100, H200 and Trainium2 records of the tiny model: copies of a real record
    with the device, throughput and energy blocks replaced (devices that cannot run here)."""
    from bench.records import store

    template = read_jsonl(compare_runs)[0]
    path = tmp_path_factory.mktemp("compare") / "devices.jsonl"
    for per_chip, j in ((1000.0, 0.5), (1200.0, 0.4), (1100.0, 0.45)):
        store.append(path, device_record(template, "h100", "NVIDIA H100 80GB HBM3", per_chip,
                                         energy=("nvml-energy-counter", j)))
    for per_chip in (800.0, 900.0):
        store.append(path, device_record(template, "trn2", "Trainium2 (NC_v3d)", per_chip, 0.25,
                                         energy=("neuron-power-utilization", 0.3)))
    store.append(path, device_record(template, "h200", "NVIDIA H200", 1500.0,
                                     energy=("modelled", 0.6)))
    return path
