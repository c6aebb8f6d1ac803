"""One benchmark run: model, optimizer and data on the device; warm-up; the timed window.

Timeline (DESIGN.md, "Data flow"):

    build -> warm-up steps (the first one timed on its own: it holds compilation)
          -> sync -> [timed window: steps issued back to back, a timer mark after each]
          -> sync -> losses checked -> metrics

Nothing inside the window reads a device value: losses are kept as device tensors and
read after the closing synchronisation, per-step times come from the backend's timer
(host clock on the CPU, CUDA events on a GPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bench import environment, metrics, store
from bench.backends import Selection
from bench.backends.base import Backend
from bench.config import RunConfig
from bench.data import SyntheticBatches
from models import flops, registry

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total), phase in {"warmup", "timed"}."""

ADAMW = {"betas": (0.9, 0.95), "weight_decay": 0.1, "eps": 1e-8}


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


def make_train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    backend: Backend, precision: str) -> Callable:
    """forward (under the backend's autocast), cross-entropy in fp32, backward, AdamW step."""

    def train_step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with backend.autocast(precision):
            logits = model(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return train_step


def _check_finite(losses: list[torch.Tensor], first_step: int) -> list[float]:
    values = torch.stack(losses).float().cpu().tolist()
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise NonFiniteLoss(f"loss became {v} at step {first_step + i}")
    return values


def measure(cfg: RunConfig, backend: Backend, progress: Progress | None = None) -> dict[str, Any]:
    """Run ``cfg`` on ``backend`` and return the metric fields of the record."""
    notes: list[str] = []
    spec = registry.get(cfg.model)
    device = backend.describe()
    peak = backend.peak_flops(cfg.precision)
    if peak is None:
        notes.append(
            f"no peak FLOP/s known for {device.name!r} in {cfg.precision}; MFU is null"
        )

    torch.manual_seed(cfg.seed)
    model = registry.build(spec, device=backend.device)
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, **ADAMW, **backend.optimizer_options()
    )
    step = make_train_step(model, optimizer, backend, cfg.precision)
    if cfg.compile:
        step = backend.compile(step)
    data = SyntheticBatches(cfg.batch, cfg.seq, spec.config.vocab_size, cfg.seed, backend.device)
    backend.synchronize()
    backend.reset_peak_memory()

    # warm-up: compilation and allocator growth happen here, outside the window
    warm_losses: list[torch.Tensor] = []
    first_step_s = None
    t0 = time.perf_counter()
    for i in range(cfg.warmup):
        warm_losses.append(step(*data[i]))
        backend.step_end()
        if i == 0:
            backend.synchronize()
            first_step_s = time.perf_counter() - t0
        if progress:
            progress("warmup", i + 1, cfg.warmup)
    backend.synchronize()
    warmup_s = time.perf_counter() - t0
    warm_values = _check_finite(warm_losses, 0) if warm_losses else []

    # the timed window
    losses: list[torch.Tensor] = []
    timer = backend.step_timer(cfg.steps)
    backend.synchronize()
    t_start = time.perf_counter()
    timer.start()
    for i in range(cfg.steps):
        losses.append(step(*data[cfg.warmup + i]))
        backend.step_end()
        timer.mark()
        if progress:
            progress("timed", i + 1, cfg.steps)
    backend.synchronize()
    window_s = time.perf_counter() - t_start

    values = _check_finite(losses, cfg.warmup)
    step_times = timer.step_times()
    tokens = cfg.tokens_per_step * cfg.steps
    tokens_per_s = metrics.tokens_per_second(tokens, window_s)
    fpt = flops.flops_per_token(spec.config, cfg.seq)
    mfu = metrics.mfu(fpt, tokens_per_s, peak.value if peak else None, device.chips)
    memory = backend.peak_memory()
    return {
        "device": {
            "name": device.name,
            "kind": device.kind,
            "device_count": device.device_count,
            "devices_used": device.devices_used,
            "chips": device.chips,
            "versions": device.versions,
        },
        "world_size": 1,
        "model": {
            "name": spec.name,
            "params": flops.param_count(spec.config),
            "matmul_params": flops.matmul_param_count(spec.config),
            "flops_per_token": fpt,
            "flops_formula": flops.FORMULA,
        },
        "precision_mode": backend.precision_mode(cfg.precision),
        "tokens": tokens,
        "window_s": window_s,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_chip": tokens_per_s / device.chips,
        "mfu": mfu,
        "peak": {**peak.as_dict(), "precision": cfg.precision} if peak else None,
        "step_time": {**metrics.step_stats(step_times).as_dict(), "method": timer.method},
        "step_times_s": step_times,
        "warmup": {"steps": cfg.warmup, "first_step_s": first_step_s, "total_s": warmup_s},
        "memory": {"peak_bytes": memory.peak_bytes, "method": memory.method},
        "loss_first": (warm_values or values)[0],
        "loss_last": values[-1],
        "data": {"kind": "synthetic-bigram", "padding": False},
        "warnings": notes,
    }


def execute(cfg: RunConfig, selection: Selection, results_path, progress: Progress | None = None
            ) -> dict[str, Any]:
    """Measure ``cfg`` and append its record (ok, failed or interrupted) to ``results_path``.

    A failure midway is stored with its error rather than raised; an interrupt is stored
    and re-raised.
    """
    record = store.new_record(cfg.as_dict(), environment.capture())
    record["backend"] = {"name": selection.backend.name, "reason": selection.reason,
                         "dist_backend": selection.backend.dist_backend}
    record["world_size"] = 1
    try:
        record.update(measure(cfg, selection.backend(), progress))
    except KeyboardInterrupt:
        record.update(status="interrupted", error="KeyboardInterrupt")
        store.append(results_path, record)
        raise
    except Exception as e:  # noqa: BLE001 - any failure midway is a failed run, stored
        record.update(status="failed", error=f"{type(e).__name__}: {e}")
    store.append(results_path, record)
    return record
