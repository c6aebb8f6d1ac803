"""Benchmark of the harness's own overhead: harness throughput / bare PyTorch loop throughput.

The same model, batch, sequence, optimizer and number of steps run through
``bench.runner.measure`` (with the CLI's rich progress bar) and through a bare
hand-written loop, alternated in one process for ``--rounds`` rounds. Both time only
their steady-state window between two device synchronisations. The ratio of medians
is printed; 1.0 means no overhead (target: >= 0.98).

    python scripts/bench_overhead.py --model tiny --rounds 5
    python scripts/bench_overhead.py --model 125m --batch 2 --seq 256 --steps 8 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bench import backends, config, console, runner
from bench.data import SyntheticBatches
from models import registry


def bare_loop(cfg: config.RunConfig, backend) -> float:
    """Tokens/s of a plain loop: no timer, no progress, no loss bookkeeping."""
    spec = registry.get(cfg.model)
    torch.manual_seed(cfg.seed)
    model = registry.build(spec, device=backend.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, **runner.ADAMW,
                            **backend.optimizer_options())
    data = SyntheticBatches(cfg.batch, cfg.seq, spec.config.vocab_size, cfg.seed, backend.device)
    autocast = backend.autocast(cfg.precision)

    def step(inputs, targets):
        with autocast:
            logits = model(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(cfg.warmup):
        step(*data[i])
    backend.synchronize()
    t0 = time.perf_counter()
    for i in range(cfg.steps):
        step(*data[cfg.warmup + i])
    backend.synchronize()
    return cfg.tokens_per_step * cfg.steps / (time.perf_counter() - t0)


def harness(cfg: config.RunConfig, backend) -> float:
    with console.run_progress() as progress:
        return runner.measure(cfg, backend, progress)["tokens_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--backend", default="auto")
    p.add_argument("--batch", type=int)
    p.add_argument("--seq", type=int)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", default=None)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()

    selection = backends.select(args.backend)
    layer = {k: getattr(args, k) for k in ("model", "batch", "seq", "steps", "warmup",
                                           "precision")}
    cfg = config.resolve(selection.backend.name, layer)
    backend = selection.backend()
    backend.peak_flops(cfg.precision)  # the CPU's GEMM peak is measured (and cached) first
    ratios, bare_rates, harness_rates = [], [], []
    for r in range(args.rounds):
        first, second = (bare_loop, harness) if r % 2 == 0 else (harness, bare_loop)
        rates = {first: first(cfg, backend), second: second(cfg, backend)}
        bare_rates.append(rates[bare_loop])
        harness_rates.append(rates[harness])
        ratios.append(rates[harness] / rates[bare_loop])
        print(f"round {r + 1}: bare {rates[bare_loop]:,.1f} tok/s, "
              f"harness {rates[harness]:,.1f} tok/s, ratio {ratios[-1]:.4f}")
    print(f"{cfg.model} on {selection.backend.name} ({cfg.precision}, batch {cfg.batch} x seq "
          f"{cfg.seq}, {cfg.steps} steps, {args.rounds} rounds): median bare "
          f"{statistics.median(bare_rates):,.1f} tok/s, harness "
          f"{statistics.median(harness_rates):,.1f} tok/s, harness/bare "
          f"{statistics.median(harness_rates) / statistics.median(bare_rates):.4f} "
          f"(per-round ratio median {statistics.median(ratios):.4f}, "
          f"min {min(ratios):.4f}, max {max(ratios):.4f})")


if __name__ == "__main__":
    main()
