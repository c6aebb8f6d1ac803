"""pytest-benchmark integration: training steps timed by pytest-benchmark, trnbench figures kept.

The pytest plugin ``trnbench`` (entry point group ``pytest11``) gives the fixture
``train_step_benchmark``::

    def test_tiny(train_step_benchmark):
        train_step_benchmark("tiny", batch=2, seq=16, warmup=2, rounds=5, steps_per_round=2)

    pytest --benchmark-json=out.json tests/benchmarks     # then: trnbench ingest out.json

It builds the model, optimizer and synthetic data as ``trnbench run`` does and reuses its
step (``runner.make_train_step``), then times in pedantic mode: ``warmup`` steps outside any
timing (the first one apart: it holds compilation), then ``rounds`` rounds of
``steps_per_round`` steps, each round ending with a device synchronisation inside
pytest-benchmark's host timer. Into the benchmark's ``extra_info`` go, each with its method:

    tokens/s  = tokens of all rounds / sum of round times
    MFU       = metrics.mfu(FLOPs/token (6N+12LHQT), tokens/s, backend.peak_flops, chips)
    J/token   = joules from meters.make_meter over the span of all rounds / their tokens
                (the span also holds pytest-benchmark's bookkeeping between rounds)

and, under ``extra_info["trnbench"]``, the run configuration, environment, backend and the
record's metric fields, from which ``trnbench ingest`` (bench/records/ingest.py) makes records.
Options: ``--trnbench-backend`` (default auto) and ``--trnbench-energy`` (default auto).
The module imports only pytest at load time: the plugin is loaded by every pytest session.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

TOKENS_METHOD = ("pytest-benchmark pedantic rounds: tokens of all rounds / sum of round times "
                 "(host timer around each round, device synchronised at each round end)")
STEP_METHOD = "round average (pytest-benchmark round time / steps per round)"
ENERGY_NOTE = ("energy covers the span of all timed rounds, including pytest-benchmark's "
               "bookkeeping between rounds")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trnbench", "trnbench training-step benchmarks")
    group.addoption("--trnbench-backend", default="auto", metavar="NAME",
                    help="backend of train_step_benchmark (default auto: neuron, neuron-xla, "
                         "cuda, cpu)")
    group.addoption("--trnbench-energy", default="auto", metavar="METER",
                    help="energy meter of the timed rounds (default auto: the backend's sensor)")


@pytest.fixture
def train_step_benchmark(benchmark: Any, request: pytest.FixtureRequest):
    """``run(model, *, batch, seq, warmup, rounds, steps_per_round, precision, compile, lr,
    seed)`` times training steps with ``benchmark.pedantic`` and returns the extra_info it
    set (None when pytest-benchmark is disabled and nothing was timed)."""
    opts = request.config.option

    def run(model: str, *, rounds: int = 5, steps_per_round: int = 2, **run_fields: Any
            ) -> dict[str, Any] | None:
        return measure(benchmark, opts.trnbench_backend, rounds, steps_per_round,
                       {"model": model, "energy": opts.trnbench_energy, **run_fields})

    return run


def measure(benchmark: Any, backend: str, rounds: int, steps_per_round: int,
            run_fields: dict[str, Any]) -> dict[str, Any] | None:
    """Warm up, time ``rounds`` rounds under ``benchmark.pedantic``, fill its extra_info.
    ``run_fields`` are fields of config.RunConfig (model, batch, seq, warmup, precision, ...)."""
    from bench.backends import environment, selection
    from bench.energy import meters
    from bench.inputs import config
    from bench.records.record import Record
    from bench.train import runner

    for name, value in (("rounds", rounds), ("steps_per_round", steps_per_round)):
        if not isinstance(value, int) or value < 1:
            raise config.ConfigError(name, f"must be an integer >= 1, got {value!r}")
    if backend not in selection.names():
        raise config.ConfigError("--trnbench-backend", f"unknown backend {backend!r}; "
                                 f"accepted: {', '.join(selection.names())}")
    selection = selection.select(backend)
    cfg = config.resolve(selection.backend.name,
                         {**run_fields, "steps": rounds * steps_per_round})
    be = selection.backend(0)
    t = runner.prepare(cfg, be)
    warm = runner.warm_up(t)
    index = itertools.count(cfg.warmup)

    def timed_round() -> None:
        for _ in range(steps_per_round):
            t.step(next(index))
        be.synchronize()

    meter = meters.make_meter(cfg.energy, be, t.device)
    meter.open()
    try:
        benchmark.pedantic(timed_round, rounds=rounds, iterations=1, warmup_rounds=0)
    finally:
        reading = meter.close()
    if benchmark.stats is None:  # --benchmark-disable: one untimed call, nothing to report
        return None
    round_times = list(benchmark.stats.stats.data)
    start = Record.start(cfg.as_dict(), selection, environment.capture())
    record = runner.metric_fields(
        t, warm, start, window_s=sum(round_times),
        step_times=[r / steps_per_round for r in round_times], step_method=STEP_METHOD,
        reading=reading, notes=[ENERGY_NOTE] if reading.joules is not None else [])
    benchmark.extra_info.update({
        "tokens_per_s": record.tokens_per_s, "tokens_per_s_method": TOKENS_METHOD,
        "mfu": record.mfu,
        "mfu_peak": record.peak.to_json() if record.peak else None,
        "j_per_token": record.energy.j_per_token, "energy_method": record.energy.method,
        "energy_scope": record.energy.scope, "energy_reason": record.energy.reason,
        "trnbench": {
            "config": record.config,
            "environment": record.environment,
            "backend": record.backend.to_json(),
            "fields": record.figures_json(),
            "benchmark": {"rounds": rounds, "steps_per_round": steps_per_round,
                          "round_times_s": round_times, "method": TOKENS_METHOD},
        },
    })
    return benchmark.extra_info
