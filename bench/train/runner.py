"""One benchmark run: model, optimizer and data on the device; warm-up; the timed window.

Timeline (docs/methodology.md, "Figures of a run"):

    build -> warm-up steps (the first one timed on its own: it holds compilation)
          -> sync -> [timed window: steps issued back to back, a timer mark after each]
          -> sync -> losses checked -> metrics

Nothing inside the window reads a device value: losses (and a routed model's
``routing_stats()``) are kept as device tensors and read after the closing synchronisation,
per-step times come from the backend's timer (host clock on the CPU, CUDA events on a GPU).
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench.backends import environment, gemm_peak
from bench.backends.base import Backend, CacheState, CompileCount, Fallbacks, sdpa_limit
from bench.backends.hardware import Figure
from bench.backends.selection import Selection
from bench.energy import meters
from bench.inputs.config import RunConfig
from bench.inputs.errors import signal_of
from bench.launch import launcher
from bench.parallel import apply as parallel
from bench.records import metrics, store
from bench.records import record as rec
from bench.train import distributed
from bench.train.data import SyntheticBatches
from models import flops, registry
from models.moe import MoEConfig

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total), phase in {COMPILING, "warmup", "timed"}."""
COMPILING = "compiling (first step)"  # the first warm-up step: compilation happens there

ADAMW = {"betas": (0.9, 0.95), "weight_decay": 0.1, "eps": 1e-8}


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


def make_train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    backend: Backend, precision: str, core: torch.nn.Module | None = None,
                    compile: bool = False, loss_parallel: bool = False) -> Callable:
    """forward (under the backend's autocast and SDPA kernels), cross-entropy in fp32, backward,
    AdamW step.

    ``loss_parallel``: the model returns vocabulary-sharded DTensor logits (TP,
    ``bench.parallel.apply.tensor_parallel``); the fp32 upcast and the flatten are DTensor ops
    on each rank's shard, and the cross-entropy and its backward run under
    ``torch.distributed.tensor.parallel.loss_parallel()``. The step returns the loss as a
    plain tensor (the TP group's loss, replicated).

    A model with ``aux_loss()`` (models/moe.py) adds ``cfg.aux_loss_coef * aux_loss()`` to the
    loss it differentiates; the step returns the cross-entropy alone. ``core`` is the model
    inside a data-parallel wrapper (default: ``model`` itself).

    ``compile``: torch.compile of the forward and the loss as one graph (AOTAutograd compiles
    its backward; Inductor fuses the fp32 cast of the logits into the loss), and of the
    optimizer step where the backend says so (``Backend.compiles_optimizer_step``).
    ``backward()`` stays outside, where a whole-step compile graph-breaks anyway. Compiled code
    of an earlier run in this process is dropped first, so that the warm-up holds this run's
    own compilation and no recompile limit carries over.
    """
    core = model if core is None else core
    aux_loss = getattr(core, "aux_loss", None)
    kernels = backend.sdpa_backends(precision)

    def loss_fn(inputs: torch.Tensor, targets: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        with backend.autocast(precision), sdpa_limit(kernels):
            logits = model(inputs)
        # a vocabulary-sharded DTensor under loss parallelism: flatten and upcast its shard
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        total = loss if aux_loss is None else loss + core.cfg.aux_loss_coef * aux_loss()
        return loss, total

    def optimizer_step() -> None:
        backend.optimizer_step(optimizer)
        optimizer.zero_grad(set_to_none=True)

    if compile:
        torch.compiler.reset()
        loss_fn = backend.compile(loss_fn)
        if backend.compiles_optimizer_step(optimizer):
            optimizer_step = backend.compile(optimizer_step)

    loss_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    if loss_parallel:  # bound once here: the step does no lookup or import
        from torch.distributed.tensor.parallel import loss_parallel as loss_context

    def train_step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with loss_context():
            loss, total = loss_fn(inputs, targets)
            total.backward()
        optimizer_step()
        return loss.detach().to_local() if loss_parallel else loss.detach()

    return train_step


def _check_finite(losses: list[torch.Tensor], first_step: int) -> list[float]:
    values = torch.stack(losses).float().cpu().tolist()
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise NonFiniteLoss(f"loss became {v} at step {first_step + i}")
    return values


def _moe(model_cfg: Any, seq: int, routing: list[dict[str, torch.Tensor]]) -> rec.Moe | None:
    """A routed model's routing configuration, slots per expert and sequence, and the means
    over the timed steps of the fraction of top-k assignments dropped over capacity and of
    the load-balancing loss (read after the window); None for a dense model."""
    if not isinstance(model_cfg, MoEConfig):
        return None
    means = {k: torch.stack([r[k] for r in routing]).float().mean().item() for k in routing[0]}
    return rec.Moe(n_experts=model_cfg.n_experts, top_k=model_cfg.top_k,
                   capacity_factor=model_cfg.capacity_factor, capacity=model_cfg.capacity(seq),
                   aux_loss_coef=model_cfg.aux_loss_coef, **means)


@dataclass
class Training:
    """A model, its optimizer, its step and its data on a backend, ready to train; each
    ``step(i)`` keeps its loss (and a routed model's routing statistics) as device tensors."""

    cfg: RunConfig
    backend: Backend
    spec: registry.ModelSpec
    device: rec.Device
    peak: Figure | None
    core: torch.nn.Module  # the model inside any data-parallel wrapper
    optimizer: torch.optim.Optimizer
    train_step: Callable
    data: SyntheticBatches
    placement: parallel.Placement
    losses: list[torch.Tensor] = field(default_factory=list)
    routing: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # a routed model's statistics (models/moe.py), looked up once, not in every step
        self.routing_stats: Callable | None = getattr(self.core, "routing_stats", None)

    def step(self, index: int) -> None:
        """Issue training step ``index`` (no host sync) and cut the graph where the device
        needs it."""
        self.losses.append(self.train_step(*self.data[index]))
        if self.routing_stats:
            self.routing.append(self.routing_stats())  # device tensors, part of the graph
        self.backend.step_end()

    def read_losses(self, first_step: int) -> list[float]:
        """The kept losses as floats (a device read), then forgotten; NonFiniteLoss if any is
        NaN or infinite."""
        values = _check_finite(self.losses, first_step) if self.losses else []
        self.losses.clear()
        return values


@dataclass(frozen=True)
class WarmupResult:
    losses: list[float]
    first_step_s: float | None
    total_s: float
    compiles_start: CompileCount | None
    compiles_end: CompileCount | None
    # a persistent compile cache at the start, after the first step and at the end
    caches: tuple[CacheState | None, ...] = (None, None, None)
    fallbacks: Fallbacks | None = None  # host fallbacks of the warm-up


def prepare(cfg: RunConfig, backend: Backend, ctx: distributed.DistContext | None = None
            ) -> Training:
    """Model (seeded weights), AdamW, the step and synthetic data on ``backend``: the
    data-parallel index's share of one seeded global batch (so that D ranks of batch b see
    what one rank of batch D x b sees). Activation checkpointing, and under torchrun tensor
    and data parallelism, are applied by ``bench.parallel.apply``."""
    spec = registry.get(cfg.model)
    torch.manual_seed(cfg.seed)
    if backend.build_on_host:
        model = registry.build(spec, device="cpu").to(backend.device)
    else:
        model = registry.build(spec, device=backend.device)
    model.train()
    core = model
    model, placement = parallel.prepare_model(model, cfg, ctx, backend.device,
                                              backend.reduces_in_optimizer)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, **ADAMW, **backend.optimizer_options()
    )
    step = make_train_step(model, optimizer, backend, cfg.precision, core, cfg.compile,
                           placement.loss_parallel)
    data = SyntheticBatches(cfg.batch, cfg.seq, spec.config.vocab_size, cfg.seed,
                            backend.device, shard=placement.data_shard(ctx.rank if ctx else 0))
    return Training(cfg, backend, spec, backend.describe(), backend.peak_flops(cfg.precision),
                    core, optimizer, step, data, placement)


def warm_up(t: Training, progress: Progress | None = None) -> WarmupResult:
    """The warm-up steps, outside the window: compilation and allocator growth happen here.
    The first step is timed on its own (it holds compilation; a persistent compile cache is
    read after it, off its clock); peak memory and the backend's counters start here."""
    backend = t.backend
    backend.synchronize()
    backend.reset_peak_memory()
    backend.reset_counters()
    compiles_start = backend.compilations()
    cache_start = cache_first = backend.cache_state()
    first_step_s = None
    t0 = time.perf_counter()
    for i in range(t.cfg.warmup):
        if i == 0 and progress:
            progress(COMPILING, 0, 1)
        t.step(i)
        if i == 0:
            backend.synchronize()
            first_step_s = time.perf_counter() - t0
            cache_first = backend.cache_state()
            if progress:
                progress(COMPILING, 1, 1)
        if progress:
            progress("warmup", i + 1, t.cfg.warmup)
    backend.synchronize()
    total_s = time.perf_counter() - t0
    losses = t.read_losses(0)  # its graph, if any, counts with the warm-up's
    t.routing.clear()  # kept in warm-up too (one graph on XLA), reported for the window
    return WarmupResult(losses, first_step_s, total_s, compiles_start, backend.compilations(),
                        (cache_start, cache_first, backend.cache_state()), backend.fallbacks())


def _execution(t: Training) -> dict[str, Any]:
    """The backend's execution parts; the precision part with ``--param-dtype``'s fields and
    its mode in words."""
    cfg = t.cfg
    out = t.backend.execution(cfg.precision, t.core, t.optimizer, cfg.compile)
    mode = parallel.precision_mode(cfg) or t.backend.precision_mode(cfg.precision)
    out["precision"] = replace(out["precision"], mode=mode, **parallel.precision_fields(cfg))
    return out


def metric_fields(t: Training, warm: WarmupResult, record: rec.Record, *, window_s: float,
                  step_times: list[float], step_method: str, reading: rec.Energy,
                  notes: list[str] | None = None, spread_reason: str | None = None
                  ) -> rec.Record:
    """``record`` with the figures of a timed window of ``cfg.steps`` steps that ``t`` ran
    after ``warm``: throughput, MFU, step times, compilations, memory, energy, losses."""
    cfg, backend, spec, device, peak = t.cfg, t.backend, t.spec, t.device, t.peak
    notes = list(notes or [])
    if peak is None:
        notes.append(f"no peak FLOP/s known for {device.name!r} in {cfg.precision}; MFU is null")
    if device.chips is None:
        notes.append("chips per device unknown (Neuron topology not detected); per-chip "
                     "throughput and MFU are null")
    compiles_end = backend.compilations()  # before the losses are read: that is a graph too
    cache_end, fallbacks_end = backend.cache_state(), backend.fallbacks()
    values = t.read_losses(cfg.warmup)
    tokens = cfg.tokens_per_step * cfg.steps
    model = rec.Model(
        name=spec.name, params=flops.param_count(spec.config),
        active_params=flops.active_param_count(spec.config),
        matmul_params=flops.matmul_param_count(spec.config),
        flops_per_token=flops.flops_per_token(spec.config, cfg.seq),
        hardware_flops_per_token=(  # with recomputation
            flops.hardware_flops_per_token(spec.config, cfg.seq)
            + flops.recompute_flops_per_token(spec.config, cfg.seq, t.placement.ac["blocks"])),
        flops_formula=flops.FORMULA)
    compilation = None
    if warm.compiles_start is not None:
        warmup = warm.compiles_end - warm.compiles_start
        timed = compiles_end - warm.compiles_end
        compilation = rec.Compilation(method=warmup.method, warmup_graphs=warmup.graphs,
                                      warmup_compile_s=warmup.seconds, timed_graphs=timed.graphs,
                                      timed_compile_s=timed.seconds)
        if timed.graphs:
            notes.append(f"the timed window compiled {timed.graphs} graph(s) "
                         f"({timed.seconds:.2f} s): the graph changed between steps, and the "
                         "throughput includes compilation")
    compile_cache = cpu_fallbacks = None
    if cache_end is not None:
        compile_cache = rec.CompileCache.of(*warm.caches, cache_end)
        if compile_cache.timed_graphs:
            notes.append(f"the timed window added {compile_cache.timed_graphs} graph(s) to the "
                         "compile cache: the throughput includes compilation")
    if fallbacks_end is not None and warm.fallbacks is not None:
        cpu_fallbacks = rec.CpuFallbacks.of(warm.fallbacks, fallbacks_end)
        if cpu_fallbacks.reason:
            notes.append(f"CPU fallbacks not counted: {cpu_fallbacks.reason}")
    memory = backend.peak_memory()
    peak_part = rec.Peak(**peak.as_dict(), precision=cfg.precision) if peak else None
    placement = t.placement
    parallelism = placement.parallelism
    step_time = rec.StepTime.of(step_times, step_method, spread_reason)
    if step_time.cv is not None and step_time.cv > metrics.CV_FLAG:
        notes.append(f"step times vary: CV {step_time.cv:.1%} over the timed window is above "
                     f"{metrics.CV_FLAG:.0%} (noisy host or device; more --steps or a quieter "
                     "machine)")
    return replace(
        record,
        device=device,
        world_size=1,
        model=model,
        moe=_moe(spec.config, cfg.seq, t.routing),
        **_execution(t),
        parallelism=rec.Parallelism(**parallelism) if parallelism else None,
        ac=rec.Ac(**placement.ac),
        **rec.Throughput.of(tokens, window_s, device.chips, model, peak_part).fields(),
        peak=peak_part,
        step_time=step_time,
        step_times_s=step_times,
        warmup=rec.Warmup(steps=cfg.warmup, first_step_s=warm.first_step_s, total_s=warm.total_s),
        compilation=compilation,
        compile_cache=compile_cache,
        cpu_fallbacks=cpu_fallbacks,
        # measured, with the predicted peak per rank (bench.parallel.memory_plan)
        memory=replace(memory, **placement.memory_predicted),
        energy=reading.with_tokens(tokens),
        loss_first=(warm.losses or values)[0],
        loss_last=values[-1],
        losses=warm.losses + values,
        data=rec.Data(kind="synthetic-bigram", padding=False),
        warnings=notes,
    )


def _host_peak(precision: str, ctx: distributed.DistContext) -> float | None:
    """The host's GEMM rate with all its CPUs, measured by its local rank 0 while the other
    ranks wait (every window has closed): the peak that a CPU run of several ranks on one
    host divides by once (``Record.aggregate``); None on the other ranks."""
    distributed.barrier()  # every rank has left its window
    rate = gemm_peak.host_peak(precision) if ctx.local_rank == 0 else None
    distributed.barrier()
    return rate


def measure(cfg: RunConfig, backend: Backend, progress: Progress | None = None,
            ctx: distributed.DistContext | None = None, profile_steps: int = 0,
            profile_path: Path | None = None, record: rec.Record | None = None) -> rec.Record:
    """Run ``cfg`` on ``backend`` and return ``record`` (default: a new one of ``cfg``) with
    the figures of this rank (under torchrun: each data-parallel index trains on its own
    share of the data). ``profile_steps`` > 0: that many more steps after the window,
    profiled (bench.train.profile)."""
    if record is None:
        record = rec.Record.new(cfg.as_dict(), {})
    t = prepare(cfg, backend, ctx)
    warm = warm_up(t, progress)
    # outside the window, right before it: a measured peak (the CPU's) measured again
    probe = backend.window_peak(cfg.precision) if t.peak is not None else None
    # the timed window; the energy meter reads at exactly its two synchronised edges
    timer = backend.step_timer(cfg.steps)
    meter = meters.make_meter(cfg.energy, backend, t.device)
    backend.synchronize()
    if ctx:
        distributed.barrier()  # every rank opens its window together
    meter.open()
    t_start = time.perf_counter()
    timer.start()
    try:
        for i in range(cfg.steps):
            t.step(cfg.warmup + i)
            timer.mark()
            if progress:
                progress("timed", i + 1, cfg.steps)
        backend.synchronize()
        window_s = time.perf_counter() - t_start
        timer.stop()
        step_times = timer.step_times()  # before the meter's shutdown can add to them
    finally:
        reading = meter.close()  # also stops a sampler thread when a step fails
    flags: list[str] = []
    window_peak = None
    if probe is not None:
        t.peak, window_peak, flag = probe.finish()
        flags += [flag] if flag else []
        if ctx and ctx.world_size > 1 and backend.device_type == "cpu":
            window_peak = {**window_peak, "host": _host_peak(cfg.precision, ctx)}
    out = metric_fields(t, warm, record, window_s=window_s, step_times=step_times,
                        step_method=timer.method, reading=reading,
                        spread_reason=timer.spread_reason)
    if window_peak is not None:
        out = replace(out, peak=replace(out.peak, window=window_peak))
    if out.cpu_fallbacks is not None and out.cpu_fallbacks.count:
        fb = out.cpu_fallbacks
        flags.append(f"{fb.count} operator call(s) ran on the host CPU, not the device "
                     f"({', '.join(fb.ops[:5])}{', ...' if len(fb.ops) > 5 else ''}; "
                     f"{fb.timed} in the timed window): not a device-only figure")
    out = replace(out, flags=flags)  # an MFU above 1 is flagged by its rule (Record.checked)
    if profile_steps:  # after the window and its figures: nothing of it is timed
        from bench.train import profile

        out = replace(out, profile=profile.trace(
            t, cfg.warmup + cfg.steps, profile_steps,
            profile_path if ctx is None or ctx.is_main else None))
    return out


def execute(cfg: RunConfig, selection: Selection, results_path: Path | None,
            progress: Progress | None = None, ctx: distributed.DistContext | None = None,
            run_id: str | None = None, tags: dict[str, str] | None = None,
            profile_steps: int = 0) -> rec.Record:
    """Measure ``cfg`` and append its record (ok, failed or interrupted) to ``results_path``
    (None: keep it unstored); ``profile_steps``: a trace of that many steps after the window,
    stored beside ``results_path`` (bench.train.profile).

    A failure midway is stored with its error rather than raised; an interrupt is stored
    and re-raised. Under torchrun (``ctx``) rank 0 gathers every rank's figures and writes
    the one record. A failing rank prints one line naming itself and raises, so that
    torchrun stops the others; rank 0 stores the failure itself only when no launcher
    (bench.launch.launcher, which passes ``run_id``) will: a rank that dies can't say it failed,
    and the launcher sees every rank's exit.
    """
    record = rec.Record.start(cfg.as_dict(), selection, environment.capture(), tags,
                              run_id=run_id, world_size=ctx.world_size if ctx else 1)
    writes = results_path is not None and (ctx is None or ctx.is_main)
    try:
        backend = selection.backend(ctx.local_rank if ctx else 0)
        if ctx:
            distributed.init_process_group(backend.dist_backend, cfg.dist_timeout_s,
                                           ctx.world_size)
        trace = None
        if profile_steps and results_path is not None:
            from bench.train.profile import trace_path

            trace = trace_path(results_path, record.run_id)
        measured = measure(cfg, backend, progress, ctx, profile_steps, trace, record)
        record = rec.Record.aggregate(distributed.gather(measured)) if ctx else measured
    except KeyboardInterrupt as e:  # SIGINT, or SIGTERM (bench.inputs.errors.Interrupted)
        record = record.failed(f"interrupted by {signal_of(e).name}", "interrupted")
        if writes:
            store.append(results_path, record)
        raise
    except Exception as e:  # noqa: BLE001 - any failure midway is a failed run, stored
        error = f"{type(e).__name__}: {e}"
        if ctx:
            launcher.say_rank_failed(ctx.rank, error)
            # the failed run's model (and the process group DDP holds) must not live on in
            # the traceback's frames past distributed.destroy()
            traceback.clear_frames(e.__traceback__)
            if not ctx.is_main or run_id is not None:
                raise  # under bench.launch.launcher (run_id given) the launcher stores the failure
            error = f"rank {ctx.rank} failed: {error}"
        record = record.failed(error)
    finally:
        if ctx:
            distributed.destroy()
    # as stored: checked by the readers' rules (an impossible figure fails the run, an
    # implausible one is flagged); unstored runs are checked alike
    return store.append(results_path, record) if writes else record.checked()
