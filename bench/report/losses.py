"""Did the two sides of `trnbench compare` train the same thing? Their loss curves, side by side.

Runs are paired by what decides a loss curve (``CURVE``): model, sequence length, global batch
(batch per rank x data-parallel ranks), learning rate, seed and data. For each pairing present
on both sides, a side's curve is the mean over its runs of each step's loss (the record's
``losses``, warm-up steps included), over the steps both sides ran, and

    largest relative difference = max over steps k of |L_target(k) - L_baseline(k)| / L_baseline(k)

is stated with its step, and flagged above the tolerance. The tolerance (``TOLERANCE``) is
derived in docs/methodology.md, "Loss curves across devices": it lies above what runs that
differ by design give (bf16 against fp32, and a different draw of the initial weights, which is
what two devices with their own random number generators make of one seed) and below what a
run that does not train gives.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.rows import key_text, present

TOLERANCE = 0.05
CURVE = {"config.model": "model", "config.seq": "seq", "global_batch": "global batch",
         "config.lr": "lr", "config.seed": "seed", "config.data": "data"}
METHOD = ("mean loss per step over each side's runs of one pairing, over the steps both ran; "
          "largest |target - baseline| / baseline over those steps")


def _global_batch(runs: pd.DataFrame) -> pd.Series:
    """Sequences per step over all ranks: batch x data-parallel ranks (world size / TP)."""
    ranks = runs.get("world_size", pd.Series(1, index=runs.index)).fillna(1)
    tp = runs.get("config.tp", pd.Series(1, index=runs.index)).fillna(1)
    dp = runs.get("parallelism.dp", pd.Series(float("nan"), index=runs.index))
    dp = dp.where(dp.map(present), ranks // tp)
    return runs["config.batch"] * dp


def curves(runs: pd.DataFrame) -> dict[tuple[str, ...], tuple[dict[str, Any], list[list[float]]]]:
    """Pairing key -> (its configuration, the loss curves of its runs that recorded one)."""
    runs = runs.assign(global_batch=_global_batch(runs))
    out: dict[tuple[str, ...], tuple[dict[str, Any], list[list[float]]]] = {}
    for _, r in runs.iterrows():
        losses = r.get("losses")
        if not isinstance(losses, list) or not losses:
            continue
        key = tuple(key_text(r.get(c)) for c in CURVE)
        configuration = {name: key_text(r.get(c)) for c, name in CURVE.items()}
        out.setdefault(key, (configuration, []))[1].append([float(v) for v in losses])
    return out


def _mean(curves_: list[list[float]], steps: int) -> list[float]:
    return [sum(c[k] for c in curves_) / len(curves_) for k in range(steps)]


def largest_difference(base: list[float], target: list[float]) -> tuple[float, int]:
    """max over steps k of |target(k) - base(k)| / base(k) over the steps both have, and its
    step (from 1)."""
    diffs = [abs(t - b) / abs(b) if b else float("inf") for b, t in zip(base, target,
                                                                          strict=False)]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    return diffs[worst], worst + 1


def check(base: pd.DataFrame, target: pd.DataFrame, tolerance: float = TOLERANCE
          ) -> dict[str, Any]:
    """The loss curves of each pairing on both sides, the largest relative difference and
    whether it is above ``tolerance``; ``reason`` says why there is no pair."""
    b, t = curves(base), curves(target)
    pairs = []
    for key in [k for k in b if k in t]:
        configuration, base_curves = b[key]
        target_curves = t[key][1]
        steps = min(len(c) for c in (*base_curves, *target_curves))
        lb, lt = _mean(base_curves, steps), _mean(target_curves, steps)
        largest, at = largest_difference(lb, lt)
        pairs.append({"configuration": configuration, "steps": steps,
                      "baseline": {"runs": len(base_curves), "losses": lb},
                      "target": {"runs": len(target_curves), "losses": lt},
                      "max_relative_difference": largest, "at_step": at,
                      "flagged": largest > tolerance})
    reason = None
    if not pairs:
        reason = (_why_none(b, t) if b and t else
                  f"{'baseline' if not b else 'target'} runs recorded no per-step losses")
    return {"tolerance": tolerance, "method": METHOD, "pairs": pairs, "reason": reason}


def _why_none(b: dict, t: dict) -> str:
    """Which fields keep the two sides' runs from pairing."""
    base, target = next(iter(b.values()))[0], next(iter(t.values()))[0]
    differ = [f"{name} {base[name]} against {target[name]}" for name in CURVE.values()
              if base[name] != target[name]]
    return "no runs of the two sides share " + ", ".join(CURVE.values()) + " (" + \
        "; ".join(differ) + "): their loss curves are not comparable"


def warnings(result: dict[str, Any]) -> list[str]:
    """A warning per flagged pairing, or the reason no curves were compared."""
    if result["reason"]:
        return [f"loss curves not compared: {result['reason']}"]
    return [f"loss curves differ: largest relative difference "
            f"{p['max_relative_difference']:.1%} at step {p['at_step']} of {p['steps']} is "
            f"above the tolerance {result['tolerance']:.0%} ({describe(p['configuration'])}): "
            "the two sides may not have trained the same thing"
            for p in result["pairs"] if p["flagged"]]


def describe(configuration: dict[str, str]) -> str:
    """'model tiny, seq 16, global batch 2, lr 0.0003, seed 0, data synthetic'."""
    return ", ".join(f"{k} {v}" for k, v in configuration.items())
