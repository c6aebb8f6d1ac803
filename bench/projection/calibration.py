"""The step model against published runs: its free constants fitted on every other run,
checked on the rest (docs/projection.md, "Calibration")."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache

from bench.backends.hardware import Figure
from bench.projection import comm, published
from bench.projection.published import Run

# The fitted constants (``fit()`` on the fit half of published_runs.toml, rounded; a test
# refits and compares). NODE_MFU is the one common node MFU every run is predicted at; TP
# overlap is held at 0 (TP collectives between matmuls, Megatron-LM), the achieved link share
# standing for both.
NODE_MFU = 0.5935
CONSTANTS = comm.Constants(tp_overlap=0.0, dp_overlap=0.4616, link_efficiency=0.8320,
                           elementwise_bytes=124.4)
FREE = ("node_mfu", "link_efficiency", "dp_overlap", "elementwise_bytes")
BOUNDS = {"node_mfu": (0.2, 1.0), "link_efficiency": (0.2, 1.0), "dp_overlap": (0.0, 1.0),
          "tp_overlap": (0.0, 1.0), "elementwise_bytes": (0.0, 2000.0)}


def step(run: Run, constants: comm.Constants, node_mfu: float) -> comm.StepBreakdown:
    """The modelled step of ``run`` at its published plan."""
    return comm.step_time(
        run.shape, seq_len=run.seq, micro_batch=run.micro_batch,
        micro_batches=run.micro_batches, tp=run.tp, pp=run.pp, dp=run.dp, cp=run.cp,
        vpp=run.vpp, peak=run.peak, hbm=run.system.hbm, node_mfu=node_mfu,
        sharding=run.sharding, recompute=run.recompute, links=run.links(),
        constants=constants, grad_bytes=run.grad_bytes,
        sequence_parallel=run.sequence_parallel)


def predicted(run: Run, constants: comm.Constants, node_mfu: float) -> float:
    """The published figure (as a fraction of the peak, counted as the source counted it)
    that the model predicts at ``node_mfu``."""
    return run.counted_flops() / (step(run, constants, node_mfu).total_s * run.chips * run.peak)


def implied_node_mfu(run: Run, constants: comm.Constants) -> float | None:
    """The node MFU at which the model meets the published figure; None above 1. The step
    is A / x + B (compute scales with 1 / x, the rest does not)."""
    one, half = step(run, constants, 1.0).total_s, step(run, constants, 0.5).total_s
    a = half - one
    b = one - a
    target = run.counted_flops() / (run.value * run.chips * run.peak)
    x = a / (target - b) if target > b else math.inf
    return x if x <= 1 else None


def split(runs: Sequence[Run]) -> tuple[list[Run], list[Run]]:
    """(fit, held out): every other run of the file, the first one fitted."""
    return list(runs[::2]), list(runs[1::2])


def _loss(runs: Sequence[Run], node_mfu: float, constants: comm.Constants) -> float:
    return sum(math.log(predicted(r, constants, node_mfu) / r.value) ** 2 for r in runs)


def _unpack(z: Sequence[float]) -> tuple[float, comm.Constants]:
    """Unbounded coordinates -> the free constants within BOUNDS (a logistic map)."""
    values = {}
    for name, u in zip(FREE, z, strict=True):
        low, high = BOUNDS[name]
        values[name] = low + (high - low) / (1 + math.exp(-u))
    x = values.pop("node_mfu")
    return x, replace(CONSTANTS, **values)


def _pack(x: float, constants: comm.Constants) -> list[float]:
    out = []
    for name in FREE:
        low, high = BOUNDS[name]
        v = x if name == "node_mfu" else getattr(constants, name)
        share = min(max((v - low) / (high - low), 1e-6), 1 - 1e-6)
        out.append(math.log(share / (1 - share)))
    return out


def _toward(centre: list[float], point: list[float], t: float) -> list[float]:
    return [c + t * (w - c) for c, w in zip(centre, point, strict=True)]


def nelder_mead(f: Callable[[list[float]], float], start: list[float], step_size: float = 1.0,
                iterations: int = 2000, tolerance: float = 1e-12) -> list[float]:
    """The minimum of ``f`` near ``start`` (Nelder and Mead 1965, standard coefficients)."""
    n = len(start)
    simplex = [list(start)] + [[v + (step_size if i == j else 0.0) for j, v in enumerate(start)]
                               for i in range(n)]
    scores = [f(p) for p in simplex]
    for _ in range(iterations):
        order = sorted(range(n + 1), key=scores.__getitem__)
        simplex, scores = [simplex[i] for i in order], [scores[i] for i in order]
        if scores[-1] - scores[0] < tolerance:
            break
        centre = [sum(p[j] for p in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]
        reflected = _toward(centre, worst, -1.0)
        r = f(reflected)
        if r < scores[0]:
            expanded = _toward(centre, worst, -2.0)
            e = f(expanded)
            simplex[-1], scores[-1] = (expanded, e) if e < r else (reflected, r)
        elif r < scores[-2]:
            simplex[-1], scores[-1] = reflected, r
        else:
            contracted = _toward(centre, worst, 0.5 if r >= scores[-1] else -0.5)
            c = f(contracted)
            if c < min(r, scores[-1]):
                simplex[-1], scores[-1] = contracted, c
            else:
                best = simplex[0]
                simplex = [best] + [[b + 0.5 * (v - b) for b, v in zip(best, p, strict=True)]
                                    for p in simplex[1:]]
                scores = [scores[0]] + [f(p) for p in simplex[1:]]
    return simplex[min(range(n + 1), key=scores.__getitem__)]


def fit(runs: Sequence[Run]) -> tuple[float, comm.Constants]:
    """The common node MFU and the constants of FREE that minimise the squared log error of
    the predicted published figures of ``runs``."""
    best = nelder_mead(lambda z: _loss(runs, *_unpack(z)), _pack(0.5, replace(
        CONSTANTS, link_efficiency=0.7, dp_overlap=0.5, elementwise_bytes=100.0)))
    return _unpack(best)


@dataclass(frozen=True)
class Row:
    run: Run
    fitted: bool  # in the fit half
    implied: float | None  # node MFU that meets the published figure at its plan
    predicted: float  # the published figure predicted at NODE_MFU
    step: comm.StepBreakdown

    @property
    def error(self) -> float:
        return self.predicted / self.run.value - 1

    def as_dict(self) -> dict:
        r = self.run
        return {"name": r.name, "source": r.title, "set": "fit" if self.fitted else "held-out",
                "system": r.system.name, "chips": r.chips, "plan": r.plan(),
                "published": r.published, "count": r.count, "published_value": r.value,
                "implied_node_mfu": self.implied, "predicted_value": self.predicted,
                "error": self.error, "assumed": sorted(r.assumed),
                "step": self.step.as_dict()}


@dataclass(frozen=True)
class Validation:
    rows: tuple[Row, ...]
    excluded: tuple[published.Excluded, ...]
    node_mfu: float
    constants: comm.Constants

    def errors(self, fitted: bool | None = None) -> list[float]:
        return [abs(r.error) for r in self.rows if fitted is None or r.fitted == fitted]

    @property
    def held_out_median(self) -> float:
        return statistics.median(self.errors(False))

    @property
    def held_out_worst(self) -> float:
        return max(self.errors(False))

    @property
    def sources(self) -> int:
        return len({r.run.title for r in self.rows})

    @property
    def max_implied(self) -> tuple[float, Run]:
        """The highest implied node MFU of any run, and that run."""
        row = max((r for r in self.rows if r.implied is not None), key=lambda r: r.implied)
        assert row.implied is not None
        return row.implied, row.run

    def summary(self) -> str:
        """One line: the held-out error, for the headline of a projection."""
        return (f"step model held-out |error| median {self.held_out_median:.0%}, worst "
                f"{self.held_out_worst:.0%} on {len(self.errors(False))} published runs")

    def as_dict(self) -> dict:
        held, fitted = self.errors(False), self.errors(True)
        return {
            "node_mfu": self.node_mfu, "constants": self.constants.__dict__,
            "fit_rule": "every other modelled run of published_runs.toml, the first fitted",
            "held_out": {"runs": len(held), "median_abs_error": statistics.median(held),
                         "worst_abs_error": max(held)},
            "fit": {"runs": len(fitted), "median_abs_error": statistics.median(fitted),
                    "worst_abs_error": max(fitted)},
            "sources": self.sources,
            "runs": [r.as_dict() for r in self.rows],
            "excluded": [{"name": e.name, "source": e.title, "reason": e.reason}
                         for e in self.excluded]}


def validate(node_mfu: float = NODE_MFU, constants: comm.Constants = CONSTANTS) -> Validation:
    """Every modelled run at its published plan: implied node MFU, prediction, error."""
    runs, excluded = published.load()
    fitted = {r.name for r in split(runs)[0]}
    rows = tuple(Row(r, r.name in fitted, implied_node_mfu(r, constants),
                     predicted(r, constants, node_mfu), step(r, constants, node_mfu))
                 for r in runs)
    return Validation(rows, excluded, node_mfu, constants)


@cache
def stored() -> Validation:
    """The validation of the stored constants (computed once per process)."""
    return validate()


_FITTED = ("fitted on the fit half of the published runs "
           "(bench/projection/published_runs.toml; `trnbench project --validate`)")


@cache
def defaults() -> dict[str, Figure]:
    """The step model's inputs that the calibration sets, as labelled figures: the fitted
    constants and the node-MFU cap of --mfu (the highest node MFU any published run needs at
    its own plan)."""
    v = stored()
    top, run = v.max_implied
    return {
        "dp_overlap": Figure(CONSTANTS.dp_overlap, "", "derived", _FITTED),
        "link_efficiency": Figure(CONSTANTS.link_efficiency, "", "derived", _FITTED),
        "elementwise_bytes": Figure(CONSTANTS.elementwise_bytes, "x d bytes", "derived",
                                    _FITTED),
        "max_node_mfu": Figure(round(top, 4), "", "derived",
                               f"the highest node MFU a published run needs at its own plan: "
                               f"{run.name} ({run.title}), calibration"),
    }
