"""`trnbench project`: parsed arguments -> scenario -> projection -> table, JSON, sweep, plot."""

from __future__ import annotations

import argparse
import json

from bench.backends.hardware import Figure
from bench.inputs.config import ConfigError
from bench.inputs.numbers import FRACTION, POSITIVE, Limits, flag
from bench.inputs.paths import output_file
from bench.projection import cluster, measured, model, presets, render, workload
from bench.records import labels
from bench.records.record import Record
from bench.report import console

_COUNT = Limits(low=1, high=1e9, integer=True)  # chips, sequence length, parallelism


def add_project_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench project`."""
    w = p.add_argument_group("workload (one of)").add_mutually_exclusive_group()
    w.add_argument("--model", help="registry model or gpt3-175b (exact N, L, H, Q); with --tokens")
    w.add_argument("--params", type=flag(POSITIVE), metavar="N",
                   help="parameters; C = 6ND, with --tokens")
    w.add_argument("--flops", type=flag(POSITIVE), metavar="C", help="total training FLOPs")
    w.add_argument("--workload", metavar="NAME",
                   help=f"preset: {', '.join(presets.WORKLOADS)}")
    p.add_argument("--tokens", type=flag(POSITIVE), metavar="D", help="training tokens")
    p.add_argument("--seq", type=flag(_COUNT), metavar="T",
                   help="sequence length (default: shape's)")
    p.add_argument("--shape", help="model shape assumed for --flops/--params/--workload")
    h = p.add_argument_group("hardware")
    h.add_argument("--hardware", help="trn2, trn1, trn3, h100, h200, a100, v100")
    h.add_argument("--precision", help="peak to use (default bf16, else fp16)")
    h.add_argument("--peak-tflops", type=flag(POSITIVE),
                   help="dense peak per chip (another chip)")
    h.add_argument("--chip-power-w", type=flag(POSITIVE),
                   help="watts per chip while training; "
                   f"default {presets.chip_power_help()}")
    h.add_argument("--chip-memory-gb", type=flag(POSITIVE),
                   help="memory per chip, GB")
    c = p.add_argument_group("cluster")
    c.add_argument("--cluster", help=f"preset: {presets.cluster_help()}")
    c.add_argument("--chips", type=flag(_COUNT),
                   help="chip count")
    c.add_argument("--power-cap-mw", type=flag(POSITIVE),
                   help="facility power cap, MW")
    c.add_argument("--pue", type=flag(POSITIVE),
                   help="facility power / IT power; "
                   + presets.default_help("pue"))
    c.add_argument("--server-overhead", type=flag(POSITIVE),
                   help="IT power / chip power; "
                   + presets.default_help("server_overhead"))
    c.add_argument("--chips-per-node", type=flag(_COUNT),
                   help="chips in the TP domain")
    c.add_argument("--intra-node-gbs", type=flag(POSITIVE),
                   help="NeuronLink/NVLink GB/s per chip, one way")
    c.add_argument("--inter-node-gbps", type=flag(POSITIVE),
                   help="EFA Gbit/s per node, one way")
    c.add_argument("--comm-from", metavar="PATH", help="results file whose collectives "
                   "records (trnbench comm, ingested nccl-tests/nccom-test) give the measured "
                   "large-message busbw inside a node (all-reduce first) and across nodes "
                   "(reduce-scatter first), in place of the datasheet links (default: none)")
    e = p.add_argument_group("efficiency (one of)").add_mutually_exclusive_group()
    e.add_argument("--mfu", type=flag(FRACTION),
                   help="MFU at scale (as papers report it): only plans "
                   "whose modelled step efficiency at node MFU 1 reaches it are searched, the "
                   "node MFU it implies is shown")
    e.add_argument("--node-mfu", type=flag(FRACTION),
                   help="single-node MFU, reduced by communication")
    e.add_argument("--from-results", metavar="PATH", help="a stored run's MFU (and J/token)")
    p.add_argument("--run-id", help="the run in --from-results (default: the last ok one)")
    d = p.add_argument_group("data-parallel efficiency (one of; replaces the modelled DP "
                             "traffic)").add_mutually_exclusive_group()
    d.add_argument("--scaling-from", metavar="PATH",
                   help="a `trnbench scaling` series' efficiency at its largest process count")
    d.add_argument("--scaling-efficiency", type=flag(FRACTION), metavar="E",
                   help="data-parallel scaling efficiency, (0, 1]")
    p.add_argument("--allow-other-device", action="store_true",
                   help="use a --scaling-from series of another device, labelled assumption, "
                        "or --comm-from records of another device, labelled measured with a "
                        "note")
    p.add_argument("--series", help="the series in --scaling-from (default: the last one)")
    for name, limits, help_ in (
            ("goodput", FRACTION, "share of wall time that trains"),
            ("global_batch_tokens", POSITIVE, "tokens per step"),
            ("micro_batch", _COUNT, "sequences per micro-batch"),
            ("vpp", _COUNT, "interleaved pipeline chunks per stage"),
            ("tp_overlap", FRACTION, "share of TP traffic hidden"),
            ("dp_overlap", FRACTION, "share of DP traffic hidden"),
            ("ep_overlap", FRACTION, "share of the MoE all-to-all traffic hidden"),
            ("memory_usable", FRACTION, "usable memory share")):
        p.add_argument(f"--{name.replace('_', '-')}", type=flag(limits),
                       help=f"{help_}; {presets.default_help(name)}")
    for name, what in (("tp", "tensor parallelism"), ("pp", "pipeline parallelism"),
                       ("dp", "data parallelism"),
                       ("ep", "expert parallelism (MoE: divides experts, DP)")):
        p.add_argument(f"--{name}", type=flag(_COUNT), help=f"pin {what}")
    p.add_argument("--sharding", choices=("auto", "zero1", "fsdp"))
    p.add_argument("--recompute", choices=("auto", "none", "full"))
    p.add_argument("--sweep-chips", nargs="?", const="auto", metavar="N,N,...",
                   help="time and power against chip count (default series without a list)")
    p.add_argument("--plot", metavar="PNG", help="plot the sweep (needs the plots extra)")
    p.add_argument("--json", action="store_true", help="the projection as JSON on stdout")


def _figure(value: float | None, default: str, flag: str, unit: str = "") -> Figure:
    d = presets.DEFAULTS[default]
    return Figure(value, unit or d.unit, "user", flag) if value is not None else d


def scenario(args: argparse.Namespace, record: Record | None = None) -> model.Scenario:
    """Every input of the projection from the parsed flags (ConfigError on bad input);
    ``record``: the run of ``--from-results`` when the caller holds it (not read again)."""
    w = workload.resolve(model=args.model, workload=args.workload, params=args.params,
                         flops=args.flops, tokens=args.tokens, seq=args.seq, shape=args.shape)
    given = dict(
        cluster=args.cluster, hardware_key=args.hardware, chips=args.chips,
        power_cap_mw=args.power_cap_mw, pue=args.pue, server_overhead=args.server_overhead,
        precision=args.precision, peak_tflops=args.peak_tflops, chip_power_w=args.chip_power_w,
        chip_memory_gb=args.chip_memory_gb, chips_per_node=args.chips_per_node,
        intra_gbs=args.intra_node_gbs, inter_gbps=args.inter_node_gbps)
    c = cluster.resolve(**given)
    notes: list[str] = []
    if args.comm_from is not None:  # the chip and its node first: the records are checked
        links = measured.comm_links(args.comm_from, chip=c.chip.key, chip_name=c.chip.name,
                                    chips_per_node=int(c.node.chips.value),
                                    allow_other_device=args.allow_other_device)
        c = cluster.resolve(**given, measured=links)
        notes += links.notes
    j_per_flop = None
    if args.mfu is not None:
        mode, mfu = "at-scale", Figure(args.mfu, "", "user", "--mfu (MFU at scale)")
    elif args.node_mfu is not None:
        mode, mfu = "node", Figure(args.node_mfu, "", "user", "--node-mfu")
    elif args.from_results is not None:
        record = record or measured.load_record(args.from_results, args.run_id)
        mode, mfu = "node", measured.node_mfu(record, args.from_results)
        if measured.device_key(record) != c.chip.key:
            notes.append(f"assumes the {c.chip.name} reaches the MFU that "
                         f"{record.device.name} reached of its own "
                         f"{record.peak.precision} peak")
        j_per_flop, why_not = measured.j_per_flop(record, c.chip.key)
        if why_not:
            notes.append(why_not)
        elif j_per_flop is not None and record.energy.method == "neuron-power-utilization":
            notes.append(labels.NEURON_IDLE_NOTE)
    else:
        raise ConfigError("--mfu", "give the efficiency: --mfu X (at scale, as papers report "
                          "it), --node-mfu X, or --from-results PATH [--run-id ID]")
    if args.run_id is not None and args.from_results is None:
        raise ConfigError("--run-id", "applies to --from-results")
    dp_efficiency = None
    if args.scaling_from is not None:
        dp_efficiency = measured.scaling_efficiency(
            args.scaling_from, args.series, chip=c.chip.key, chip_name=c.chip.name,
            allow_other_device=args.allow_other_device)
        if dp_efficiency.label == "assumption":
            notes.append(f"the scaling efficiency was measured on another device than the "
                         f"{c.chip.name} (--allow-other-device): assumed to hold on it, "
                         "over its network")
    elif args.allow_other_device and args.comm_from is None:
        raise ConfigError("--allow-other-device", "applies to --scaling-from and --comm-from")
    elif args.scaling_efficiency is not None:
        dp_efficiency = Figure(args.scaling_efficiency, "", "user", "--scaling-efficiency")
    if args.series is not None and args.scaling_from is None:
        raise ConfigError("--series", "applies to --scaling-from")
    if dp_efficiency is not None and args.dp_overlap is not None:
        raise ConfigError("--dp-overlap", "does not apply with a scaling efficiency (the "
                          "measured DP time includes whatever overlap the run had)")
    pins = {k: v for k, v in (("tp", args.tp), ("pp", args.pp), ("dp", args.dp),
                              ("ep", args.ep), ("sharding", args.sharding),
                              ("recompute", args.recompute))
            if v is not None and v != "auto"}
    return model.Scenario(
        workload=w, cluster=c, mode=mode, mfu=mfu,
        goodput=_figure(args.goodput, "goodput", "--goodput"),
        global_batch_tokens=_figure(args.global_batch_tokens, "global_batch_tokens",
                                    "--global-batch-tokens"),
        micro_batch=_figure(args.micro_batch, "micro_batch", "--micro-batch"),
        vpp=_figure(args.vpp, "vpp", "--vpp"),
        tp_overlap=_figure(args.tp_overlap, "tp_overlap", "--tp-overlap"),
        dp_overlap=_figure(args.dp_overlap, "dp_overlap", "--dp-overlap"),
        ep_overlap=_figure(args.ep_overlap, "ep_overlap", "--ep-overlap"),
        memory_usable=_figure(args.memory_usable, "memory_usable", "--memory-usable"),
        j_per_flop=j_per_flop, dp_efficiency=dp_efficiency, pins=pins, notes=tuple(notes))


def _sweep_counts(spec: str, s: model.Scenario) -> list[int]:
    if spec == "auto":
        return model.default_sweep(int(s.cluster.chips.value), int(s.cluster.node.chips.value))
    try:
        counts = [int(float(x)) for x in spec.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or any(n < 1 for n in counts):
        raise ConfigError("--sweep-chips", f"expected chip counts like 8192,16384 or nothing "
                          f"(a default series), got {spec!r}")
    return counts


def cmd_project(args: argparse.Namespace) -> int:
    if args.plot is not None:
        output_file(args.plot, "--plot", ".png")
    s = scenario(args)
    p = model.project(s)
    sweep_spec = args.sweep_chips or ("auto" if args.plot else None)
    rows = model.sweep(s, _sweep_counts(sweep_spec, s)) if sweep_spec else None
    if args.plot:
        cap = s.cluster.power_cap
        render.plot(rows, args.plot, f"{s.workload.title} on {s.cluster.chip.name}",
                    None if cap is None else cap.value / 1e6)
    if args.json:
        out = p.as_dict()
        out["bandwidths"] = render.bandwidths(s.cluster.node)
        if rows is not None:
            out["sweep"] = rows
        if args.plot:
            out["plot"] = args.plot
        print(json.dumps(out))
        return 0
    console.stdout.print(render.inputs_table(p))
    console.stdout.print(render.results_table(p))
    if rows is not None:
        console.stdout.print(render.sweep_table(rows))
    if args.plot:
        console.stdout.print(f"plot: {args.plot}")
    return 0
