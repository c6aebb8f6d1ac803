"""Harness against a bare hand-tuned PyTorch loop: tokens/s and MFU of each, and harness/bare.

In one process, alternated over ``--rounds`` rounds (the order flips every round), the same
registry model, batch, sequence, precision, compile setting, synthetic data, seed and AdamW
settings run through

- the bare loop: what a careful engineer writes by hand, torch calls only: autocast in bf16,
  FlashAttention forced in bf16 on cuda (``sdpa_kernel``), fused AdamW on cuda (torch's default
  implementation elsewhere), with ``--compile`` torch.compile of forward + loss (and of the
  optimizer step unless it is fused), ``--warmup`` steps, then ``--steps`` steps between two
  device synchronisations on the host clock; no timer, progress or loss bookkeeping;
- the harness: ``bench.train.runner.measure`` on the cuda (or cpu) backend, with the CLI's progress
  bar, exactly as ``trnbench run`` measures.

tokens/s = batch x seq x steps / window seconds; MFU = ``bench.records.metrics.mfu`` with
FLOPs/token by 6N+12LHQT and the backend's peak (H100 bf16: 989.4 TFLOP/s dense, datasheet; CPU:
the measured GEMM rate). harness/bare = median harness tokens/s / median bare tokens/s over the
rounds (issue 9's target: >= 0.98). Both sides describe their settings in the record's terms
(``precision``, ``optimizer``, ``attention``, ``compile``); a difference is reported, since the
ratio would then compare two different programs. After the same steps on the same data both
reach the same loss (equal in eager fp32 on the CPU); the JSON output holds both.

    python scripts/gpu/bare_loop.py --model 1b --seq 2048 --batch 8 --compile --rounds 5
    python scripts/gpu/bare_loop.py --model 1b --seq 2048 --batch 8 --compile --sync-debug
    python scripts/gpu/bare_loop.py --device cpu --model tiny --rounds 3 --json   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from rich.table import Table
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.backends import selection
from bench.backends.base import Backend, optimizer_implementation
from bench.inputs import config
from bench.inputs.config import ConfigError
from bench.records import metrics
from bench.report import console
from bench.train import runner
from bench.train.data import SyntheticBatches
from models import flops, registry

SETTINGS = ("precision", "optimizer", "attention", "compile")


def bare_loop(cfg: config.RunConfig, device: torch.device, mode: str) -> dict[str, Any]:
    """Run the hand-written loop; its tokens/s, last loss and settings (record blocks);
    ``mode``: the precision policy in the record's words (``Backend.precision_mode``)."""
    cuda, bf16 = device.type == "cuda", cfg.precision == "bf16"
    spec = registry.get(cfg.model)
    torch.manual_seed(cfg.seed)
    model = registry.build(spec, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, **runner.ADAMW,
                            fused=True if cuda else None)
    data = SyntheticBatches(cfg.batch, cfg.seq, spec.config.vocab_size, cfg.seed, device)
    flash = [SDPBackend.FLASH_ATTENTION] if cuda and bf16 else None

    def forward_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16), \
                sdpa_kernel(flash) if flash else contextlib.nullcontext():
            logits = model(inputs)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())

    def opt_step() -> None:
        opt.step()
        opt.zero_grad(set_to_none=True)

    compiled_opt = cfg.compile and not cuda  # fused AdamW stays eager
    if cfg.compile:
        torch.compiler.reset()
        forward_loss = torch.compile(forward_loss, dynamic=False)
        if compiled_opt:
            opt_step = torch.compile(opt_step, dynamic=False)

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = forward_loss(inputs, targets)
        loss.backward()
        opt_step()
        return loss

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for i in range(cfg.warmup):
        step(*data[i])
    sync()
    t0 = time.perf_counter()
    for i in range(cfg.steps):
        loss = step(*data[cfg.warmup + i])
    sync()
    window_s = time.perf_counter() - t0
    states = [t for s in opt.state.values() for t in s.values()
              if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim()]
    settings = {
        "precision": {
            "mode": mode,
            "param_dtypes": sorted({_name(p.dtype) for p in model.parameters()}),
            "compute_dtype": "bfloat16" if bf16 else "float32",
            "optimizer_state_dtypes": sorted({_name(t.dtype) for t in states}),
            "master_copy": False,
        },
        "optimizer": {"name": "AdamW", "implementation": optimizer_implementation(opt),
                      **{k: list(v) if isinstance(v, tuple) else v  # as JSON holds it
                         for k, v in opt.defaults.items()
                         if k in ("lr", "betas", "weight_decay", "eps")}},
        "attention": {"sdpa_backends": [k.name for k in flash] if flash else None,
                      "enforced": flash is not None},
        "compile": {"scope": "forward+loss", "optimizer_step": "compiled" if compiled_opt
                    else "eager", "backend": "inductor", "dynamic": False}
        if cfg.compile else None,
    }
    return {"tokens_per_s": metrics.tokens_per_second(cfg.tokens_per_step * cfg.steps,
                                                      window_s),
            "window_s": window_s, "loss_last": loss.item(), "settings": settings}


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def sync_guard(progress: Callable[[str, int, int], None]) -> Callable[[str, int, int], None]:
    """A progress callback that sets CUDA's sync debug mode to "error" once the first timed step
    is issued and back to "default" after the last: any host synchronisation inside the window
    (``.item()``, ``.cpu()``, a blocking copy) then raises."""

    def update(phase: str, done: int, total: int) -> None:
        if phase == "timed" and done == 1:
            torch.cuda.set_sync_debug_mode("error")
        if phase == "timed" and done == total:
            torch.cuda.set_sync_debug_mode("default")
        progress(phase, done, total)

    return update


def harness(cfg: config.RunConfig, backend: Backend, sync_debug: bool) -> dict[str, Any]:
    """``runner.measure`` as ``trnbench run`` calls it (with its progress bar)."""
    with console.run_progress() as progress:
        try:
            fields = runner.measure(cfg, backend, sync_guard(progress) if sync_debug
                                    else progress).to_json()
        finally:
            if sync_debug:
                torch.cuda.set_sync_debug_mode("default")
    return {"tokens_per_s": fields["tokens_per_s"], "window_s": fields["window_s"],
            "loss_last": fields["loss_last"], "settings": {k: fields[k] for k in SETTINGS},
            "step_time_method": fields["step_time"]["method"]}


def release(device: torch.device) -> None:
    """Free the last run's model, optimizer and compiled code before the next one."""
    torch.compiler.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def compare(cfg: config.RunConfig, backend: Backend, rounds: int, sync_debug: bool
            ) -> dict[str, Any]:
    """Alternate bare and harness for ``rounds`` rounds; figures of each side and the ratio."""
    peak = backend.peak_flops(cfg.precision)  # the CPU's GEMM peak is measured (cached) here
    fpt = flops.flops_per_token(registry.get(cfg.model).config, cfg.seq)
    chips = backend.describe().chips or 0
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "harness": []}
    mode = backend.precision_mode(cfg.precision)  # the record's words for the policy
    sides = {"bare": lambda: bare_loop(cfg, backend.device, mode),
             "harness": lambda: harness(cfg, backend, sync_debug)}
    for r in range(rounds):
        for side in ("bare", "harness") if r % 2 == 0 else ("harness", "bare"):
            run = sides[side]()
            run["mfu"] = metrics.mfu(fpt, run["tokens_per_s"], peak.value if peak else None,
                                     chips)
            runs[side].append(run)
            release(backend.device)
        bare, harn = runs["bare"][-1], runs["harness"][-1]
        console.stderr.print(f"round {r + 1}/{rounds}: bare {bare['tokens_per_s']:,.1f} tok/s, "
                             f"harness {harn['tokens_per_s']:,.1f} tok/s, ratio "
                             f"{harn['tokens_per_s'] / bare['tokens_per_s']:.4f}")
    out: dict[str, Any] = {"config": cfg.as_dict(), "rounds": rounds,
                           "device": backend.describe().name,
                           "peak": {**peak.as_dict(), "precision": cfg.precision} if peak
                           else None,
                           "flops_per_token": fpt, "flops_formula": flops.FORMULA}
    for side, side_runs in runs.items():
        rates = [run["tokens_per_s"] for run in side_runs]
        mfus = [run["mfu"] for run in side_runs]
        out[side] = {"tokens_per_s": metrics.repeat_stats(rates).as_dict(), "per_round": rates,
                     "mfu": metrics.repeat_stats(mfus).median if None not in mfus else None,
                     "loss_last": side_runs[-1]["loss_last"],
                     "settings": side_runs[-1]["settings"]}
    ratios = [h["tokens_per_s"] / b["tokens_per_s"]
              for b, h in zip(runs["bare"], runs["harness"], strict=True)]
    out["ratio"] = out["harness"]["tokens_per_s"]["median"] / out["bare"]["tokens_per_s"]["median"]
    out["ratio_per_round"] = metrics.repeat_stats(ratios).as_dict()
    out["harness"]["step_time_method"] = runs["harness"][-1]["step_time_method"]
    out["settings_differ"] = [k for k in SETTINGS
                              if out["bare"]["settings"][k] != out["harness"]["settings"][k]]
    out["sync_debug"] = sync_debug
    return out


def summary(out: dict[str, Any]) -> Table:
    cfg = out["config"]
    t = Table(title=f"harness vs bare loop: {cfg['model']} on {out['device']}, batch "
              f"{cfg['batch']} x seq {cfg['seq']}, {cfg['precision']}"
              f"{', compile' if cfg['compile'] else ''}, {out['rounds']} rounds of "
              f"{cfg['steps']} steps")
    for col in ("", "tokens/s (median)", "CV", "MFU (median)", "loss at the last step"):
        t.add_column(col)
    for side in ("bare", "harness"):
        s = out[side]
        mfu = "n/a (no peak)" if s["mfu"] is None else f"{s['mfu']:.1%}"
        t.add_row(side, f"{s['tokens_per_s']['median']:,.1f}", f"{s['tokens_per_s']['cv']:.1%}",
                  mfu, f"{s['loss_last']:.4f}")
    rr = out["ratio_per_round"]
    t.add_row("harness/bare", f"{out['ratio']:.4f}", "", "",
              f"per round: median {rr['median']:.4f}, min {rr['min']:.4f}, max {rr['max']:.4f}")
    return t


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="backend of both sides (cpu: a smoke run)")
    p.add_argument("--model", default="1b", help="registry model (default 1b)")
    p.add_argument("--batch", type=int)
    p.add_argument("--seq", type=int)
    p.add_argument("--steps", type=int, default=30, help="timed steps per run (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up steps per run (default 5)")
    p.add_argument("--precision", choices=config.PRECISIONS,
                   help="default: the backend's (cuda bf16, cpu fp32)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile forward + loss on both sides")
    p.add_argument("--rounds", type=int, default=5, help="alternations (default 5)")
    p.add_argument("--sync-debug", action="store_true",
                   help="cuda: make any host synchronisation in the harness's window raise")
    p.add_argument("--json", action="store_true", help="the result as JSON on stdout")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.rounds < 1:
            raise ConfigError("--rounds", f"must be >= 1, got {args.rounds}")
        if args.sync_debug and args.device != "cuda":
            raise ConfigError("--sync-debug", "applies to --device cuda only")
        try:
            chosen = selection.select(args.device)
        except selection.BackendUnavailable as e:
            raise ConfigError("--device", str(e)) from None
        layer = {k: getattr(args, k) for k in ("model", "batch", "seq", "steps", "warmup",
                                               "precision", "compile")}
        cfg = config.resolve(chosen.backend.name, layer)
    except ConfigError as e:
        print(f"bare_loop: error: {e}", file=sys.stderr)
        return 2
    out = compare(cfg, chosen.backend(), args.rounds, args.sync_debug)
    if args.json:
        print(json.dumps(out))
    else:
        console.stdout.print(summary(out))
    for block in out["settings_differ"]:
        console.stderr.print(f"[yellow]warning[/yellow]: the two sides differ in {block}: bare "
                             f"{out['bare']['settings'][block]} vs harness "
                             f"{out['harness']['settings'][block]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
