"""Inputs taken from stored runs (``bench.records.store.read``): a run's MFU and, if present,
its J/token; a scaling series' efficiency at its largest process count
(``bench.launch.scaling``); the bus bandwidths of collectives records (``comm_links``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.backends import hardware
from bench.backends.hardware import Figure
from bench.inputs.config import ConfigError
from bench.launch import scaling
from bench.projection import cluster, comm, model
from bench.projection.workload import get_shape
from bench.records import bandwidth, labels, store
from bench.records.record import Energy, Peak, Record


def load_record(path: str | os.PathLike, run_id: str | None = None) -> Record:
    """The run ``run_id`` of ``path``, else its last ok run with an MFU."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--from-results", f"no such file: {p}")
    records = list(store.read(p))
    if run_id is not None:
        for r in records:
            if r.run_id == run_id:
                if r.status != "ok" or r.mfu is None:
                    raise ConfigError("--run-id", f"run {run_id} has no MFU (status "
                                      f"{r.status}, mfu {r.mfu})")
                return r
        ids = ", ".join(r.run_id for r in records[-5:]) or "none"
        raise ConfigError("--run-id", f"no run {run_id!r} in {p}; last runs: {ids}")
    usable = [r for r in records if r.status == "ok" and r.mfu is not None]
    if not usable:
        raise ConfigError("--from-results", f"{p} holds no ok run with an MFU")
    return usable[-1]


def describe(record: Record) -> str:
    peak = record.peak or Peak()
    return (f"run {record.run_id}: {record.config.get('model')} on "
            f"{record.device.name}, MFU of its {peak.precision} peak "
            f"[{peak.label}: {peak.source}]")


def node_mfu(record: Record, path: str | os.PathLike, *, peak: float, hbm: float | None,
             node: cluster.Node, constants: comm.Constants) -> tuple[Figure, str]:
    """The node MFU of a stored run: its measured MFU with what the step model puts into
    its own layout taken out (recompute, TP and DP collectives, elementwise work), so that a
    projection does not count them twice; and a note saying so, or why not.

    x solves x E(x) = the run's MFU, E the modelled efficiency of the run's own layout
    (TP x DP on one node of the projected chip, its micro-batch and sequence, its
    activation checkpointing) with ``constants``."""
    measured_mfu = float(record.mfu)
    raw = Figure(measured_mfu, "", "measured", f"{describe(record)}, {path}")
    cfg = record.config
    par = record.parallelism
    tp = (par.tp if par and par.tp else None) or int(cfg.get("tp") or 1)
    ranks = record.world_size or 1
    try:
        shape = get_shape(str(cfg.get("model")), "--from-results")
        seq, batch = int(cfg["seq"]), int(cfg["batch"])
    except (ConfigError, KeyError, TypeError, ValueError):
        return raw, ("the run's MFU is taken as the node MFU: its model or shape is not known "
                     "here, so its own recompute and communication cannot be taken out")
    ac = record.ac
    mode = (ac.mode if ac and ac.mode else str(cfg.get("ac") or "none"))
    share = (ac.blocks / ac.of_blocks if ac and ac.blocks and ac.of_blocks
             else 1.0 if mode != "none" else 0.0)
    dp = max(ranks // tp, 1)
    links = comm.place(per_node=max(int(node.chips.value), tp * dp),
                       intra=node.intra.value if node.intra else None, inter=None, tp=tp,
                       pp=1, dp=dp)
    sharding = "fsdp" if (par and par.parallel == "fsdp") else "ddp"

    def step_at(x: float) -> comm.StepBreakdown:
        return comm.step_time(
            shape, seq_len=seq, micro_batch=max(batch // dp, 1), micro_batches=1, tp=tp, pp=1,
            dp=dp, peak=peak, hbm=hbm, node_mfu=x, sharding=sharding,
            recompute="full" if share else "none", checkpointed=share or 1.0, vpp=1,
            links=links, constants=constants,
            sequence_parallel=bool(par.sequence_parallel) if par else False)

    x, step = model.implied_node_mfu(measured_mfu, step_at)
    if x is None:
        return raw, (f"the run's MFU {measured_mfu:.1%} is taken as the node MFU: the step "
                     "model cannot place it at its own layout below node MFU 100%")
    layout = (f"TP {tp} x DP {dp}, micro-batch {max(batch // dp, 1)} x {seq} tokens, "
              + (f"{share:.0%} of the layers recomputed" if share else "no recompute"))
    fig = Figure(x, "", "derived",
                 f"{describe(record)}, {path}: its MFU {measured_mfu:.1%} at its own layout "
                 f"({layout}) / the modelled efficiency {step.efficiency:.1%} of that layout")
    return fig, (f"node MFU {x:.1%} = the run's MFU {measured_mfu:.1%} / the modelled "
                 f"efficiency {step.efficiency:.1%} of its own layout ({layout}): its "
                 "recompute, collectives and elementwise time are taken out before the "
                 "plan's own are added")


def device_key(record: Record) -> str | None:
    """The hardware-table key of the record's device, if it is in the table."""
    dev = record.device
    for name in (dev.kind, dev.name) if dev else ():
        spec = hardware.lookup(str(name)) if name else None
        if spec is not None:
            return spec.key
    return None


def j_per_flop(record: Record, chip_key: str) -> tuple[Figure | None, str | None]:
    """Measured J per model FLOP on the projected chip type, or None and why not."""
    energy = record.energy or Energy()
    jpt = energy.j_per_token
    if jpt is None or energy.method == "modelled":
        return None, None
    if device_key(record) != chip_key:
        return None, (f"the run's measured {jpt:.4g} J/token is not used: it was measured on "
                      f"{record.device.name}, not on {chip_key}")
    if not str(energy.scope).startswith("accelerators"):
        return None, (f"the run's measured J/token is not used: its scope is "
                      f"{energy.scope!r}, not the accelerators")
    fpt = record.model.flops_per_token
    return Figure(jpt / fpt, "J/FLOP", labels.energy(energy.method) or "estimate",
                  f"run {record.run_id}: energy.j_per_token {jpt:.4g} "
                  f"({energy.method}; {energy.scope}) / {fpt:.4g} FLOPs per "
                  "token"), None


def scaling_efficiency(path: str | os.PathLike, series: str | None = None, *,
                       chip: str = "", chip_name: str = "",
                       allow_other_device: bool = False) -> Figure:
    """The efficiency of ``series`` (default: the file's last) at its largest ok process
    count against its baseline (``bench.launch.scaling.summarize``), with its runs as the
    source.
    A series of another device than ``chip`` is refused, or with ``allow_other_device``
    labelled ``assumption``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--scaling-from", f"no such file: {p}")
    records = list(store.read(p))
    ids = list(dict.fromkeys((r.tags or {}).get(scaling.TAG) for r in records))
    ids = [i for i in ids if i is not None]
    if not ids:
        raise ConfigError("--scaling-from", f"{p} holds no scaling series (records tagged "
                          f"{scaling.TAG}=ID by trnbench scaling)")
    sid = ids[-1] if series is None else series
    if sid not in ids:
        raise ConfigError("--series", f"no series {sid!r} in {p}; series: {', '.join(ids)}")
    runs = scaling.series_records(records, sid)
    base, points = scaling.summarize(runs)
    ok = [pt for pt in points if pt["efficiency"] is not None]
    if len(ok) < 2:
        raise ConfigError("--scaling-from", f"series {sid} in {p} has {len(ok)} ok run(s); "
                          "the efficiency needs its baseline and a larger process count")
    first = next(pt for pt in ok if pt["nproc"] == base)
    top = max(ok, key=lambda pt: pt["nproc"])
    r = next(r for r in runs if r.run_id == top["run_id"])
    cfg = r.config
    label = "measured"
    if device_key(r) != chip:
        device = r.device.name
        if not allow_other_device:
            raise ConfigError("--scaling-from", f"series {sid} was measured on {device}, not on "
                              f"the projected {chip_name}; --allow-other-device uses it as an "
                              "assumption")
        label = "assumption"
    return Figure(top["efficiency"], "", label,
                  f"series {sid}: {top['nproc']} vs {base} rank(s), "
                  f"{top['tokens_per_s']:,.4g} vs {first['tokens_per_s']:,.4g} tokens/s "
                  f"(runs {top['run_id']}, {first['run_id']}; {cfg.get('model')}, "
                  f"{cfg.get('parallel')}, batch {cfg.get('batch')} per rank x seq "
                  f"{cfg.get('seq')} on {r.device.name}), {p}")


# the op whose plateau prices each link's traffic, first measured first: the step model
# prices TP (inside a node) as all-reduces and DP (across nodes) as reduce-scatters and
# all-gathers (bench/projection/comm.py); one bandwidth per link
LINK_OPS = {"intra": ("all_reduce", "reduce_scatter", "all_gather", "all_to_all", "send_recv"),
            "inter": ("reduce_scatter", "all_gather", "all_reduce", "all_to_all", "send_recv")}


@dataclass(frozen=True)
class CommLinks:
    """Bandwidths measured by collectives records (B/s; None: no record of that link): a
    chip's inside the node, one direction; a node's across nodes, one direction."""

    intra: Figure | None
    inter: Figure | None
    runs: dict[str, tuple[str, ...]]  # link -> the record ids it comes from
    notes: tuple[str, ...]


def _link(records: list[Record], link: str, path: Path) -> tuple[Figure, Record, str] | None:
    """The measured bandwidth of ``link``: the plateau of its first op of ``LINK_OPS`` that
    a record has, from the record of that op with the most ranks (the last on a tie)."""
    one_node = link == "intra"
    found = [(r, r.comm.plateaus()) for r in records if bool(r.comm.one_node) == one_node]
    op = next((o for o in LINK_OPS[link] if any(o in ps for _, ps in found)), None)
    if op is None:
        return None
    r, ps = max(((r, ps) for r, ps in found if op in ps),
                key=lambda x: (x[0].comm.ranks, records.index(x[0])))
    gbs, sizes = ps[op]
    c = r.comm
    others = ", ".join(f"{o} {g:,.4g}" for o, (g, _) in ps.items() if o != op)
    span = f"{bandwidth.size_text(sizes[0])}..{bandwidth.size_text(sizes[-1])}"
    source = (f"run {r.run_id}: {c.tool} {op} busbw plateau {gbs:,.4g} GB/s (median of S = "
              f"{span}) on {c.ranks} ranks in {c.nodes} node{'' if c.nodes == 1 else 's'} of "
              f"{r.device.name}"
              + (f"; its other ops: {others} GB/s" if others else "") + f", {path}")
    per = "per chip" if one_node else "per node"
    return Figure(gbs * bandwidth.GB, "B/s", "measured", f"{source} ({per}, one way)"), r, op


def comm_links(path: str | os.PathLike, *, chip: str, chip_name: str, chips_per_node: int,
               allow_other_device: bool = False) -> CommLinks:
    """The intra- and inter-node bandwidths of the collectives records of ``path``
    (``trnbench comm``, ingested nccl-tests or nccom-test), labelled measured: for each link
    the records of ``chip`` first; a record of another device is refused, or with
    ``allow_other_device`` used with a note."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--comm-from", f"no such file: {p}")
    records = [r for r in store.read(p) if r.status == "ok" and r.is_comm]
    if not records:
        raise ConfigError("--comm-from", f"{p} holds no ok collectives record (trnbench comm, "
                          "or nccl-tests / nccom-test output through trnbench ingest)")
    same = [r for r in records if device_key(r) == chip]  # the projected chip's first
    found = {link: _link(same, link, p) or _link(records, link, p) for link in LINK_OPS}
    notes = []
    for link, hit in found.items():
        if hit is None:
            continue
        _, r, op = hit
        if device_key(r) != chip:
            if not allow_other_device:
                raise ConfigError("--comm-from", f"run {r.run_id} was measured on "
                                  f"{r.device.name}, not on the projected {chip_name}; "
                                  "--allow-other-device uses it (labelled measured, with a "
                                  "note)")
            notes.append(f"the {link}-node bandwidth was measured on {r.device.name}, not on "
                         f"the {chip_name} (--allow-other-device): its fabric is assumed to "
                         "be the projected chip's")
        if link == "inter" and r.comm.ranks // r.comm.nodes < chips_per_node:
            notes.append(f"the inter-node bandwidth ran {r.comm.ranks // r.comm.nodes} ranks "
                         f"per node of the node's {chips_per_node} chips: a node's whole "
                         "network may carry more than that busbw")
        if op != LINK_OPS[link][0]:
            notes.append(f"the {link}-node bandwidth is {op}'s: no {LINK_OPS[link][0]} was "
                         "measured on that link")
    return CommLinks(*(hit[0] if hit else None for hit in found.values()),
                     {link: (hit[1].run_id,) for link, hit in found.items() if hit},
                     tuple(notes))
