"""Time, chip-hours, energy and power of a training run on a cluster: a model, not a simulator.

Derivation: docs/projection.md, "Time, energy and power"."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.backends.hardware import Figure
from bench.inputs.config import ConfigError
from bench.projection import calibration, comm, search
from bench.projection.cluster import Cluster
from bench.projection.workload import Workload

J_PER_MWH = 3.6e9
SECONDS_PER_DAY = 86400.0
MODES = ("at-scale", "node")


@dataclass(frozen=True)
class Scenario:
    """Every input of one projection."""

    workload: Workload
    cluster: Cluster
    mode: str  # at-scale: mfu used as given; node: reduced by the communication model
    mfu: Figure
    goodput: Figure
    global_batch_tokens: Figure
    micro_batch: Figure
    tp_overlap: Figure
    dp_overlap: Figure
    ep_overlap: Figure
    memory_usable: Figure
    link_efficiency: Figure
    elementwise_bytes: Figure
    grad_reduce: Figure  # bytes per gradient in the DP reduction
    max_node_mfu: Figure  # --mfu mode: the highest node MFU a plan may need
    cp_min_tokens: Figure
    j_per_flop: Figure | None = None  # measured on the same chip type (node mode only)
    dp_efficiency: Figure | None = None  # scaling efficiency: DP time (node mode only)
    pins: dict[str, Any] = field(default_factory=dict)  # tp, cp, pp, dp, ep, vpp, sharding,
    # recompute
    notes: tuple[str, ...] = ()

    @property
    def constants(self) -> comm.Constants:
        return comm.Constants(
            tp_overlap=self.tp_overlap.value, dp_overlap=self.dp_overlap.value,
            link_efficiency=self.link_efficiency.value,
            elementwise_bytes=self.elementwise_bytes.value, ep_overlap=self.ep_overlap.value)


@dataclass(frozen=True)
class Projection:
    scenario: Scenario
    plan: search.Plan  # the fastest plan: the headline figures
    mfu_at_scale: float
    seconds: float
    chip_power: Figure | None
    energy_j_chips: float | None
    notes: tuple[str, ...]
    efficient: Projection | None = None  # the fewest chip-hours within search.SLOWDOWN

    @property
    def chips(self) -> int:
        return self.plan.chips

    @property
    def days(self) -> float:
        return self.seconds / SECONDS_PER_DAY

    @property
    def chip_hours(self) -> float:
        return self.chips * self.seconds / 3600

    def _scaled(self, factor: float) -> float | None:
        return None if self.energy_j_chips is None else self.energy_j_chips * factor

    @property
    def energy_j_it(self) -> float | None:
        return self._scaled(self.scenario.cluster.server_overhead.value)

    @property
    def energy_j_facility(self) -> float | None:
        c = self.scenario.cluster
        return self._scaled(c.server_overhead.value * c.pue.value)

    @property
    def avg_power_w_facility(self) -> float | None:
        e = self.energy_j_facility
        return None if e is None else e / self.seconds

    @property
    def power_cap_share(self) -> float | None:
        cap, p = self.scenario.cluster.power_cap, self.avg_power_w_facility
        return None if cap is None or p is None else p / cap.value

    @property
    def max_chips_under_cap(self) -> int | None:
        c = self.scenario.cluster
        if c.power_cap is None or self.chip_power is None:
            return None
        per_chip = self.chip_power.value * c.server_overhead.value * c.pue.value
        return math.floor(c.power_cap.value / per_chip)

    @property
    def fits_power(self) -> bool | None:
        share = self.power_cap_share
        return None if share is None else share <= 1

    @property
    def fits(self) -> bool | None:
        """Memory always fits (else no projection); power fits unless over a given cap;
        None when a cap is given but the power is unknown."""
        return True if self.scenario.cluster.power_cap is None else self.fits_power

    def as_dict(self) -> dict[str, Any]:
        s, c = self.scenario, self.scenario.cluster

        def mwh(j: float | None) -> float | None:
            return None if j is None else j / J_PER_MWH

        def mw(j: float | None) -> float | None:
            return None if j is None else j / self.seconds / 1e6

        return {
            "workload": s.workload.title,
            "flops": s.workload.flops.value,
            "tokens": s.workload.tokens.value,
            "flops_per_token": s.workload.flops_per_token,
            "hardware": c.chip.key,
            "precision": c.chip.precision,
            "peak_flops_per_chip": c.chip.peak.value,
            "cluster": c.title,
            "cluster_chips": int(c.chips.value),
            "chips": self.chips,
            "mode": s.mode,
            "node_mfu": self.plan.node_mfu,
            "node_mfu_implied": s.mode == "at-scale",
            "efficiency": self.plan.step.efficiency,
            "mfu_at_scale": self.mfu_at_scale,
            "goodput": s.goodput.value,
            "seconds": self.seconds,
            "days": self.days,
            "chip_hours": self.chip_hours,
            "chip_power_w": None if self.chip_power is None else self.chip_power.value,
            "energy_mwh_chips": mwh(self.energy_j_chips),
            "energy_mwh_it": mwh(self.energy_j_it),
            "energy_mwh_facility": mwh(self.energy_j_facility),
            "avg_power_mw_it": mw(self.energy_j_it),
            "avg_power_mw_facility": mw(self.energy_j_facility),
            "power_cap_mw": None if c.power_cap is None else c.power_cap.value / 1e6,
            "power_cap_share": self.power_cap_share,
            "max_chips_under_cap": self.max_chips_under_cap,
            "fits": self.fits,
            "fits_memory": True,
            "fits_power": self.fits_power,
            "plan": self.plan.as_dict(int(s.workload.seq_len.value)),
            "plans": {"headline": "fastest", "fastest": self.summary(),
                      "efficient": (self.efficient or self).summary()},
            "inputs": inputs(s),
            "notes": list(self.notes),
            "calibration": calibration_summary(),
        }

    def summary(self) -> dict[str, Any]:
        """The plan and the figures that differ between the fastest and the efficient plan."""
        e = self.energy_j_facility
        return {"plan": self.plan.short(), "chips": self.chips, "node_mfu": self.plan.node_mfu,
                "efficiency": self.plan.step.efficiency, "mfu_at_scale": self.mfu_at_scale,
                "days": self.days, "chip_hours": self.chip_hours,
                "energy_mwh_facility": None if e is None else e / J_PER_MWH}


def calibration_summary() -> dict[str, Any]:
    """The held-out error of the step model's stored constants (``calibration``): what every
    projection's answer is stated with."""
    v = calibration.stored()
    return {"held_out_runs": len(v.errors(False)), "median_abs_error": v.held_out_median,
            "worst_abs_error": v.held_out_worst, "sources": v.sources, "text": v.summary()}


def training_seconds(flops: float, chips: int, peak: float, mfu: float, goodput: float) -> float:
    """t = C / (chips x peak x MFU at scale x goodput)."""
    return flops / (chips * peak * mfu * goodput)


def _links(s: Scenario, tp: int, cp: int, pp: int, dp: int, ep: int) -> comm.Links:
    """Per-rank bandwidths of a plan on the cluster's nodes (``comm.place``): TP inside the
    node; CP, PP, DP and EP inside it, or inside its UltraServer, while their span fits;
    else EFA shared by the node's chips."""
    node = s.cluster.node

    def datasheet_equivalent(link: str, fig: Figure | None) -> float | None:
        # a measured busbw (--comm-from) is already what collectives achieve: the step model's
        # achieved share of a datasheet link (``link_efficiency``) is taken back out of it
        if fig is None:
            return None
        return fig.value / s.link_efficiency.value if link in node.runs else fig.value

    return comm.place(
        per_node=int(node.chips.value), intra=datasheet_equivalent("intra", node.intra),
        inter=datasheet_equivalent("inter", node.inter), tp=tp, cp=cp, pp=pp, dp=dp, ep=ep,
        group=int(node.group.value) if node.group else None,
        group_link=node.group_link.value if node.group_link else None)


def _check(s: Scenario) -> None:
    efficiency_flag = {"user": "--mfu" if s.mode == "at-scale" else "--node-mfu"}.get(
        s.mfu.label, "--from-results")
    for fig, name in ((s.mfu, efficiency_flag), (s.goodput, "--goodput"),
                      (s.memory_usable, "--memory-usable"), (s.link_efficiency,
                                                              "--link-efficiency"),
                      (s.max_node_mfu, "--max-node-mfu")):
        if not 0 < fig.value <= 1:
            raise ConfigError(name, f"must be in (0, 1], got {fig.value:g}")
    if s.dp_efficiency is not None:
        flag = "--scaling-efficiency" if s.dp_efficiency.label == "user" else "--scaling-from"
        if s.mode != "node":
            raise ConfigError(flag, "applies with --node-mfu or --from-results (the DP part "
                              "of the modelled communication); --mfu is already at scale")
        if flag == "--scaling-efficiency" and not 0 < s.dp_efficiency.value <= 1:
            raise ConfigError(flag, f"must be in (0, 1], got {s.dp_efficiency.value:g}")
    for fig, name in ((s.tp_overlap, "--tp-overlap"), (s.dp_overlap, "--dp-overlap"),
                      (s.ep_overlap, "--ep-overlap")):
        if not 0 <= fig.value <= 1:
            raise ConfigError(name, f"must be in [0, 1], got {fig.value:g}")
    if s.micro_batch.value != int(s.micro_batch.value) or s.micro_batch.value < 1:
        raise ConfigError("--micro-batch", f"must be an integer >= 1, got "
                          f"{s.micro_batch.value:g}")
    if s.elementwise_bytes.value < 0:
        raise ConfigError("--elementwise-bytes", f"must be >= 0, got "
                          f"{s.elementwise_bytes.value:g}")
    if not s.global_batch_tokens.value > 0:
        raise ConfigError("--global-batch-tokens", "must be > 0")
    node = s.cluster.node
    if (s.mode == "node" and node.inter is None and s.cluster.chips.value > node.chips.value):
        raise ConfigError("--inter-node-gbps", f"needed to model DP traffic between nodes: no "
                          f"EFA bandwidth is known for {node.name}")


def implied_node_mfu(mfu_at_scale: float, step_at: Callable[[float], comm.StepBreakdown],
                     cap: float = 1.0) -> tuple[float | None, comm.StepBreakdown]:
    """The node MFU x with x E(x) = u and the step at it; None and the step at node MFU
    ``cap`` when x > cap. The step is A / x + B: two evaluations give A, B (module
    docstring)."""
    one, half = step_at(1.0), step_at(0.5)
    a = half.total_s - one.total_s
    b = one.total_s - a
    denominator = one.compute_s - mfu_at_scale * b
    x = mfu_at_scale * a / denominator if denominator > 0 else math.inf
    if x > cap + 1e-12:
        return None, comm.StepBreakdown.at(cap, one, half)
    x = min(x, cap)
    return x, comm.StepBreakdown.at(x, one, half)


def project(s: Scenario) -> Projection:
    """The projection of one scenario (formulas in the module docstring), on the fastest
    plan, with the efficient plan beside it (``plan``)."""
    _check(s)
    w, c = s.workload, s.cluster
    seq = int(w.seq_len.value)
    dp_eff = None if s.dp_efficiency is None else min(s.dp_efficiency.value, 1.0)
    constants = s.constants

    def step_fn(**dims: Any) -> tuple[float | None, comm.StepBreakdown]:
        links = _links(s, dims["tp"], dims["cp"], dims["pp"], dims["dp"], dims["ep"])

        def step_at(node_mfu: float) -> comm.StepBreakdown:
            return comm.step_time(
                w.shape, seq_len=seq, micro_batch=int(s.micro_batch.value),
                peak=c.chip.peak.value, hbm=None if c.chip.hbm is None else c.chip.hbm.value,
                node_mfu=node_mfu, links=links, constants=constants,
                grad_bytes=int(s.grad_reduce.value), dp_efficiency=dp_eff, **dims)

        if s.mode == "node":
            return s.mfu.value, step_at(s.mfu.value)
        return implied_node_mfu(s.mfu.value, step_at, s.max_node_mfu.value)

    plans = search.search(
        w.shape, seq, chips=int(c.chips.value), chips_per_node=int(c.node.chips.value),
        intra_modelled=c.node.intra is not None or s.mode == "at-scale",
        memory_bytes=c.chip.memory.value, usable_share=s.memory_usable.value,
        global_batch_tokens=s.global_batch_tokens.value, micro_batch=int(s.micro_batch.value),
        cp_min_tokens=int(s.cp_min_tokens.value), step_fn=step_fn,
        max_node_mfu=s.max_node_mfu if s.mode == "at-scale" else None, **s.pins)
    fast, eff = search.fastest(plans), search.efficient(plans)
    headline = _on_plan(s, fast)
    return replace(headline, efficient=headline if eff is fast else _on_plan(s, eff))


def _on_plan(s: Scenario, chosen: search.Plan) -> Projection:
    w, c = s.workload, s.cluster
    mfu = s.mfu.value if s.mode == "at-scale" else chosen.mfu_at_scale
    seconds = training_seconds(w.flops.value, chosen.chips, c.chip.peak.value, mfu,
                               s.goodput.value)
    if s.j_per_flop is not None:
        energy = s.j_per_flop.value * w.flops.value * s.mfu.value / (mfu * s.goodput.value)
        power = Figure(energy / (chosen.chips * seconds), "W", s.j_per_flop.label,
                       f"the run's J/token ({s.j_per_flop.label}) / FLOPs per token, x node "
                       "MFU / (MFU at scale x goodput): " + s.j_per_flop.source)
    elif c.chip.power is not None:
        power = c.chip.power
        energy = power.value * chosen.chips * seconds
    else:
        power, energy = None, None
    return Projection(s, chosen, mfu, seconds, power, energy, _notes(s, chosen, power))


def _notes(s: Scenario, p: search.Plan, power: Figure | None) -> tuple[str, ...]:
    c, w = s.cluster, s.workload
    notes = list(s.notes)
    cluster_chips = int(c.chips.value)
    batch_seqs = int(s.global_batch_tokens.value // w.seq_len.value)
    if p.batch_seqs < batch_seqs:
        notes.append(
            f"the global batch is {p.batch_seqs:,} sequences ({p.batch_seqs * w.seq_len.value:,.0f}"
            f" tokens), {batch_seqs - p.batch_seqs:,} fewer than the {batch_seqs:,} asked: DP "
            f"{p.dp:,} x {p.micro_batches:,} micro-batches of {p.micro_batch}"
            + (f", a multiple of the {p.pp} stages as the interleaved schedule needs"
               if p.vpp > 1 else "") + f" (at most {search.BATCH_SHORTFALL:.0%} fewer)")
    if p.chips < cluster_chips:
        replicas = batch_seqs // p.micro_batch
        why = (f"the global batch of {batch_seqs:,} sequences allows at most {replicas:,} "
               "data-parallel replicas (raise --global-batch-tokens to use more)"
               if p.dp * 2 > replicas else
               f"no plan on more chips can hold the MFU at scale {s.mfu.value:.1%} at a node "
               f"MFU of at most {s.max_node_mfu.value:.1%}" if s.mode == "at-scale" else
               "no plan on more chips is faster by more than the plan tolerance (TP x PP x DP "
               f"need not divide {cluster_chips:,})")
        notes.append(f"the plan uses {p.chips:,} of {cluster_chips:,} chips: {why}; the idle "
                     "chips are left out of time, energy and power")
    if s.mode == "at-scale":
        cap = s.max_node_mfu
        notes.append(
            f"MFU at scale {s.mfu.value:.1%} given: only plans that hold it at a node MFU of "
            f"at most {cap.value:.1%} ({cap.label}: {cap.source}) are searched; this plan "
            f"needs a node MFU of {p.node_mfu:.1%} (= {s.mfu.value:.1%} / step efficiency "
            f"{p.step.efficiency:.1%})")
    e = s.dp_efficiency
    if e is not None:
        used = min(e.value, 1.0)
        capped = f" ({e.value:.1%} taken as 100%: no DP overhead measured)" if e.value > 1 else ""
        notes.append(
            f"DP communication from the {e.label} scaling efficiency {used:.1%}{capped} in place "
            f"of the modelled DP traffic (DP = rest of the step x (1 - E) / E), assumed to hold "
            f"at DP {p.dp:,}; TP, PP and the bubble stay modelled; --dp-overlap does not apply"
            if p.dp > 1 else "the scaling efficiency is not used: the plan has no data "
            "parallelism (DP 1)")
    sh = w.shape
    if sh.n_experts > 1:
        notes.append(
            f"mixture of {sh.n_experts} experts, top-{sh.top_k}: FLOPs count the "
            f"{sh.matmul_params:,.0f} parameters active per token (k experts and the router), "
            f"memory all {sh.params:,.0f}: the experts' {sh.expert_params:,.0f} "
            + (f"split over EP {p.ep}" if p.ep > 1 else "on every DP rank (EP 1)")
            + f", the rest replicated over DP {p.dp:,}; the dispatch and combine "
            "all-to-alls are modelled as dropless and balanced: capacity-factor padding, load "
            "imbalance across experts and the MoE layers' own activation memory (counted as "
            "a dense layer's) are not modelled")
    if c.node.intra is None and p.tp == 1 and s.mode == "node":
        notes.append(f"TP{' and EP' if sh.n_experts > 1 else ''} limited to 1: no intra-node "
                     f"bandwidth known for {c.node.name} (pass --intra-node-gbs)")
    if power is None:
        notes.append(f"no power figure for {c.chip.name} (not published): energy and power "
                     "need --chip-power-w")
    return tuple(notes)


def inputs(s: Scenario) -> list[dict[str, Any]]:
    """Every input with value, unit, label and source, in display order."""
    w, c = s.workload, s.cluster
    sh = w.shape

    def row(name: str, fig: Figure | None, missing: str = "not published") -> dict[str, Any]:
        if fig is None:
            return {"name": name, "value": None, "unit": "", "label": "none", "source": missing}
        return {"name": name, **fig.as_dict()}

    rows = [
        {"name": "workload", "value": w.title, "unit": "", "label": w.flops.label,
         "source": w.flops.source},
        row("training FLOPs C", w.flops),
        row("tokens D", w.tokens),
        {"name": "model shape", "value": f"{sh.name}: {sh.params:,.0f} params "
         f"({sh.matmul_params:,.0f} in matmuls), {sh.n_layers} layers, d {sh.dim}, "
         f"{sh.n_heads} heads x {sh.head_dim}" + (
             f", {sh.n_experts} experts top-{sh.top_k} ({sh.expert_params:,.0f} params)"
             if sh.n_experts > 1 else ""), "unit": "", "label": w.shape_label,
         "source": w.shape_source},
        row("sequence length T", w.seq_len),
        {"name": "FLOPs per token", "value": w.flops_per_token, "unit": "FLOP",
         "label": "derived", "source": "6N + 12LHQT" if w.attention_counted else "6N"},
        {"name": "chip", "value": f"{c.chip.name} ({c.chip.precision})", "unit": "",
         "label": c.chip.peak.label, "source": "bench/backends/hardware.py"},
        row("peak per chip", c.chip.peak),
        row("memory per chip", c.chip.memory),
        row("chip power", c.chip.power, "not published: pass --chip-power-w"),
        {"name": "cluster", "value": c.title, "unit": "", "label": c.chips.label,
         "source": c.chips.source},
        row("chips", c.chips),
        row("chips per node", c.node.chips),
        row("intra-node bandwidth per chip", c.node.intra, "unknown: pass --intra-node-gbs"),
        row("inter-node (EFA) bandwidth per node", c.node.inter,
            "unknown: pass --inter-node-gbps"),
        *([row("UltraServer", c.node.group), row("NeuronLink between its instances, per chip",
                                                 c.node.group_link)] if c.node.group else []),
        row("server overhead (IT / chip power)", c.server_overhead),
        row("PUE (facility / IT)", c.pue),
        row("facility power cap", c.power_cap, "none given (--power-cap-mw)"),
        row("MFU at scale" if s.mode == "at-scale" else "node MFU", s.mfu),
        row("goodput", s.goodput),
        row("global batch", s.global_batch_tokens),
        row("micro-batch", s.micro_batch),
        {"name": "plan space", "value": "TP, CP, PP, interleaved chunks, DP, EP, ZeRO-1 or "
         "FSDP, recompute (a pinned one below)", "unit": "", "label": "assumption",
         "source": "chunks divide the layers per stage, with micro-batches a multiple of the "
         "stages (Megatron-LM's interleaved schedule); CP while each rank keeps "
         f"{s.cp_min_tokens.value:,.0f} tokens ({s.cp_min_tokens.source})"},
        row("gradient bytes in the DP reduction", s.grad_reduce),
        row("TP overlap", s.tp_overlap),
        row("DP overlap", s.dp_overlap),
        row("achieved share of link bandwidth", s.link_efficiency),
        row("elementwise HBM bytes per token and layer", s.elementwise_bytes),
        *([row("highest node MFU a plan may need", s.max_node_mfu)]
          if s.mode == "at-scale" else []),
        row("memory bandwidth per chip", s.cluster.chip.hbm,
            "unknown: the elementwise time is left out (--chip-hbm-tbs)"),
        *([row("EP overlap", s.ep_overlap)] if sh.n_experts > 1 else []),
        row("usable memory share", s.memory_usable),
        {"name": "plan tolerance", "value": search.TOLERANCE, "unit": "", "label": "assumption",
         "source": "plans this close to the fastest count as equal; the fewest chips wins"},
        {"name": "efficient plan's slowdown", "value": search.SLOWDOWN, "unit": "",
         "label": "assumption", "source": "the efficient plan (fewest chip-hours) may be "
         "this much slower than the fastest"},
    ]
    if s.j_per_flop is not None:
        rows.append(row("energy per FLOP of the run", s.j_per_flop))
    if s.dp_efficiency is not None:
        rows.append(row("data-parallel scaling efficiency", s.dp_efficiency))
    for name, value in s.pins.items():
        rows.append({"name": f"pinned {name}", "value": value, "unit": "", "label": "user",
                     "source": f"--{name}"})
    return rows


def sweep(s: Scenario, chip_counts: list[int]) -> list[dict[str, Any]]:
    """Time and power against chip count; a count with no plan gets its reason."""
    rows = []
    for n in chip_counts:
        c = replace(s.cluster, chips=Figure(n, "chips", "user", "--sweep-chips"))
        try:
            p = project(replace(s, cluster=c))
        except ConfigError as e:
            rows.append({"chips_requested": n, "error": str(e)})
            continue
        d = p.as_dict()
        rows.append({"chips_requested": n, "chips": p.chips, "plan": p.plan.short(),
                     **{k: d[k] for k in ("mfu_at_scale", "days", "chip_hours",
                                          "energy_mwh_facility", "avg_power_mw_facility",
                                          "power_cap_share", "fits")}})
    return rows


def default_sweep(chips: int, per_node: int) -> list[int]:
    """chips x 2^k for k = -6..2, rounded to whole nodes, duplicates dropped."""
    counts = {max(per_node, round(chips * 2.0**k / per_node) * per_node) for k in range(-6, 3)}
    return sorted(counts)


FitMap = list[tuple[Figure, "Projection | ConfigError"]]


def fit_map(s: Scenario, batches: list[Figure]) -> FitMap:
    """The projection at each global batch (or why none fits), on the same cluster."""
    out: FitMap = []
    for b in batches:
        try:
            out.append((b, project(replace(s, global_batch_tokens=b))))
        except ConfigError as e:
            out.append((b, e))
    return out


def fastest_of(projections: FitMap) -> Projection:
    """The fastest projection of a fit map: the most chips x MFU at scale, within the plan
    tolerance the fewest chips; the first refusal when no batch has a plan."""
    ok = [p for _, p in projections if isinstance(p, Projection)]
    if not ok:
        raise next(e for _, e in projections if isinstance(e, ConfigError))
    best = max(p.chips * p.mfu_at_scale for p in ok)
    return min((p for p in ok if p.chips * p.mfu_at_scale >= (1 - search.TOLERANCE) * best),
               key=lambda p: p.chips)


def fit_map_rows(projections: FitMap) -> list[dict[str, Any]]:
    """One row per global batch: chips, days, MWh, node MFU, plan (or the refusal)."""
    rows: list[dict[str, Any]] = []
    for batch, p in projections:
        if isinstance(p, ConfigError):
            rows.append({"global_batch_tokens": batch.value, "error": str(p)})
            continue
        d, s = p.as_dict(), p.scenario
        rows.append({
            "global_batch_tokens": batch.value,
            "batch_tokens_used": d["plan"]["global_batch_tokens"], "chips": p.chips,
            "plan": p.plan.short(), "node_mfu": p.plan.node_mfu,
            "node_mfu_implied": s.mode == "at-scale", "mfu_at_scale": p.mfu_at_scale,
            **{k: d[k] for k in ("days", "chip_hours", "energy_mwh_facility",
                                 "avg_power_mw_facility", "power_cap_share", "fits")}})
    return rows
