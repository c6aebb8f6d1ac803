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
    J/token   = joules from energy.make_meter over the span of all rounds / their tokens
                (the span also holds pytest-benchmark's bookkeeping between rounds)

and, under ``extra_info["trnbench"]``, the run configuration, environment, backend and the
record's metric fields, from which ``trnbench ingest`` (bench/ingest.py) makes records.
Options: ``--trnbench-backend`` (default auto) and ``--trnbench-energy`` (default auto).
The module imports only pytest at load time: the plugin is loaded by every pytest session.
"""

from __future__ import annotations

import itertools
import time
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
    import torch

    from bench import backends, config, energy, environment, metrics
    from bench.data import SyntheticBatches
    from bench.runner import ADAMW, _check_finite, _moe_fields, make_train_step
    from models import flops, registry

    for name, value in (("rounds", rounds), ("steps_per_round", steps_per_round)):
        if not isinstance(value, int) or value < 1:
            raise config.ConfigError(name, f"must be an integer >= 1, got {value!r}")
    if backend not in backends.names():
        raise config.ConfigError("--trnbench-backend", f"unknown backend {backend!r}; "
                                 f"accepted: {', '.join(backends.names())}")
    selection = backends.select(backend)
    cfg = config.resolve(selection.backend.name,
                         {**run_fields, "steps": rounds * steps_per_round})
    be = selection.backend(0)
    device = be.describe()
    peak = be.peak_flops(cfg.precision)
    spec = registry.get(cfg.model)
    torch.manual_seed(cfg.seed)
    net = registry.build(spec, device="cpu" if be.build_on_host else be.device).to(be.device)
    net.train()
    routing_stats = getattr(net, "routing_stats", None)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, **ADAMW,
                                  **be.optimizer_options())
    step = make_train_step(net, optimizer, be, cfg.precision, compile=cfg.compile)
    data = SyntheticBatches(cfg.batch, cfg.seq, spec.config.vocab_size, cfg.seed, be.device)
    losses: list[torch.Tensor] = []
    routing: list[dict[str, torch.Tensor]] = []
    index = itertools.count()

    def one_step() -> None:
        losses.append(step(*data[next(index)]))
        if routing_stats:
            routing.append(routing_stats())
        be.step_end()

    def timed_round() -> None:
        for _ in range(steps_per_round):
            one_step()
        be.synchronize()

    be.synchronize()
    be.reset_peak_memory()
    compiles_start = be.compilations()
    first_step_s = None
    t0 = time.perf_counter()
    for i in range(cfg.warmup):
        one_step()
        if i == 0:
            be.synchronize()
            first_step_s = time.perf_counter() - t0
    be.synchronize()
    warmup_s = time.perf_counter() - t0
    warm_values = _check_finite(losses, 0) if losses else []
    compiles_warm = be.compilations()
    losses.clear()
    routing.clear()

    meter = energy.make_meter(cfg.energy, be, device)
    meter.open()
    try:
        benchmark.pedantic(timed_round, rounds=rounds, iterations=1, warmup_rounds=0)
    finally:
        reading = meter.close()
    if benchmark.stats is None:  # --benchmark-disable: one untimed call, nothing to report
        return None
    round_times = list(benchmark.stats.stats.data)
    values = _check_finite(losses, cfg.warmup)
    tokens = cfg.tokens_per_step * cfg.steps
    tokens_per_s = metrics.tokens_per_second(tokens, sum(round_times))
    fpt = flops.flops_per_token(spec.config, cfg.seq)
    mfu = metrics.mfu(fpt, tokens_per_s, peak.value if peak else None, device.chips or 0)
    notes = [ENERGY_NOTE] if reading.joules is not None else []
    if peak is None:
        notes.append(f"no peak FLOP/s known for {device.name!r} in {cfg.precision}; MFU is null")
    compilation = None
    if compiles_start is not None:
        warm, timed = compiles_warm - compiles_start, be.compilations() - compiles_warm
        compilation = {"method": warm.method, "warmup_graphs": warm.graphs,
                       "warmup_compile_s": warm.seconds, "timed_graphs": timed.graphs,
                       "timed_compile_s": timed.seconds}
        if timed.graphs:
            notes.append(f"the timed rounds compiled {timed.graphs} graph(s): the throughput "
                         "includes compilation")
    step_times = [t / steps_per_round for t in round_times]
    memory = be.peak_memory()
    energy_block = reading.as_record(tokens)
    fields = {
        "device": {"name": device.name, "kind": device.kind, "device_count": device.device_count,
                   "devices_used": device.devices_used, "chips": device.chips,
                   "versions": device.versions},
        "world_size": 1,
        "model": {"name": spec.name, "params": flops.param_count(spec.config),
                  "active_params": flops.active_param_count(spec.config),
                  "matmul_params": flops.matmul_param_count(spec.config),
                  "flops_per_token": fpt,
                  "hardware_flops_per_token": flops.hardware_flops_per_token(spec.config,
                                                                             cfg.seq),
                  "flops_formula": flops.FORMULA},
        **_moe_fields(spec.config, cfg.seq, routing),
        "precision_mode": be.precision_mode(cfg.precision),
        **be.execution(cfg.precision, net, optimizer, cfg.compile),
        "tokens": tokens,
        "window_s": sum(round_times),
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_chip": tokens_per_s / device.chips if device.chips else None,
        "mfu": mfu,
        "peak": {**peak.as_dict(), "precision": cfg.precision} if peak else None,
        "step_time": {**metrics.step_stats(step_times).as_dict(), "method": STEP_METHOD},
        "step_times_s": step_times,
        "warmup": {"steps": cfg.warmup, "first_step_s": first_step_s, "total_s": warmup_s},
        "compilation": compilation,
        "compiles_warmup": compilation["warmup_graphs"] if compilation else None,
        "compiles_timed": compilation["timed_graphs"] if compilation else None,
        "memory": {"peak_bytes": memory.peak_bytes, "method": memory.method},
        "energy": energy_block,
        "loss_first": (warm_values or values)[0],
        "loss_last": values[-1],
        "losses": warm_values + values,
        "data": {"kind": "synthetic-bigram", "padding": False},
        "warnings": notes,
    }
    benchmark.extra_info.update({
        "tokens_per_s": tokens_per_s, "tokens_per_s_method": TOKENS_METHOD,
        "mfu": mfu,
        "mfu_peak": fields["peak"],
        "j_per_token": energy_block["j_per_token"], "energy_method": energy_block["method"],
        "energy_scope": energy_block["scope"], "energy_reason": energy_block["reason"],
        "trnbench": {
            "config": cfg.as_dict(),
            "environment": environment.capture(),
            "backend": {"name": be.name, "reason": selection.reason,
                        "dist_backend": be.dist_backend},
            "fields": fields,
            "benchmark": {"rounds": rounds, "steps_per_round": steps_per_round,
                          "round_times_s": round_times, "method": TOKENS_METHOD},
        },
    })
    return benchmark.extra_info
