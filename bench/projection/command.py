"""`trnbench project`: parsed arguments -> scenario -> projection -> table, JSON, sweep, plot."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from bench.backends import hardware
from bench.backends.hardware import Figure
from bench.inputs.config import ConfigError
from bench.inputs.numbers import FRACTION, POSITIVE, Limits, check, count_list, flag
from bench.inputs.paths import output_file
from bench.projection import calibration, cluster, comm, measured, model, presets, render, workload
from bench.records import labels
from bench.records.record import Record
from bench.report import console

T = TypeVar("T")
_COUNT = Limits(low=1, high=1e9, integer=True)  # chips, sequence length, parallelism
ONE_OF = " (no default: give one of the four)"
EFFICIENCY = " (no default: give one of the three)"


def add_project_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench project`."""
    w = p.add_argument_group("workload (one of)").add_mutually_exclusive_group()
    w.add_argument("--model", help="registry model or gpt3-175b (exact N, L, H, Q); with "
                   "--tokens" + ONE_OF)
    w.add_argument("--params", type=flag(POSITIVE), metavar="N",
                   help="parameters; C = 6ND, with --tokens" + ONE_OF)
    w.add_argument("--flops", type=flag(POSITIVE), metavar="C",
                   help="total training FLOPs" + ONE_OF)
    w.add_argument("--workload", metavar="NAME",
                   help=f"preset: {', '.join(presets.WORKLOADS)}" + ONE_OF)
    p.add_argument("--tokens", type=flag(POSITIVE), metavar="D",
                   help="training tokens, with --model or --params (no default)")
    p.add_argument("--seq", type=flag(_COUNT), metavar="T",
                   help="sequence length (default: shape's)")
    p.add_argument("--shape", help="model shape assumed for --flops/--params/--workload: a "
                   "registry name, gpt3-175b, or layers=L,dim=D,heads=H[,kv_heads=K,ffn=F,"
                   "vocab=V,mlp=gelu|swiglu,seq=T] (kv_heads: heads; ffn: 4D for gelu, Llama's "
                   "8D/3 rounded up to 256 for swiglu; mlp: swiglu; vocab: 0, no head); "
                   f"default: the preset's, the registry shape nearest --params, else "
                   f"{presets.DEFAULT_SHAPE}")
    h = p.add_argument_group("hardware")
    h.add_argument("--hardware", help=f"{', '.join(hardware.DEVICES)} (default: the "
                   "--cluster preset's chip)")
    h.add_argument("--precision", help="peak to use (default bf16, else fp16)")
    h.add_argument("--peak-tflops", type=flag(POSITIVE),
                   help="dense peak per chip, TFLOP/s: a chip not in the table (default: "
                   "--hardware's datasheet peak)")
    h.add_argument("--chip-power-w", type=flag(POSITIVE),
                   help="watts per chip while training; "
                   f"default {presets.chip_power_help()}")
    h.add_argument("--chip-memory-gb", type=flag(POSITIVE),
                   help="memory per chip, GB (default: --hardware's datasheet; required with "
                   "--peak-tflops)")
    h.add_argument("--chip-hbm-tbs", type=flag(POSITIVE),
                   help="memory bandwidth per chip, TB/s (default: the chip's datasheet; a "
                   "custom chip without it leaves the elementwise time out)")
    c = p.add_argument_group("cluster")
    c.add_argument("--cluster", help=f"preset: {presets.cluster_help()}")
    c.add_argument("--chips", type=flag(_COUNT),
                   help="chip count (default: the --cluster preset's)")
    c.add_argument("--power-cap-mw", type=flag(POSITIVE),
                   help="facility power cap, MW (default: the --cluster preset's, where it "
                   "has one)")
    c.add_argument("--pue", type=flag(POSITIVE),
                   help="facility power / IT power; "
                   + presets.default_help("pue"))
    c.add_argument("--server-overhead", type=flag(POSITIVE),
                   help="IT power / chip power; "
                   + presets.default_help("server_overhead"))
    c.add_argument("--chips-per-node", type=flag(_COUNT),
                   help="chips in the TP domain (default: the chip's node, from the preset or "
                   "the datasheet; 1 where none is known)")
    c.add_argument("--intra-node-gbs", type=flag(POSITIVE),
                   help="NeuronLink/NVLink GB/s per chip, one way (default: the node's "
                   "datasheet)")
    c.add_argument("--inter-node-gbps", type=flag(POSITIVE),
                   help="EFA Gbit/s per node, one way (default: the node's datasheet)")
    c.add_argument("--comm-from", metavar="PATH", help="results file whose collectives "
                   "records (trnbench comm, ingested nccl-tests/nccom-test) give the measured "
                   "large-message busbw inside a node (all-reduce first) and across nodes "
                   "(reduce-scatter first), in place of the datasheet links (default: none)")
    e = p.add_argument_group("efficiency (one of)").add_mutually_exclusive_group()
    e.add_argument("--mfu", type=flag(FRACTION),
                   help="MFU at scale (as papers report it): only plans that hold it at a node "
                   "MFU of at most --max-node-mfu are searched, the node MFU it implies is "
                   "shown" + EFFICIENCY)
    e.add_argument("--node-mfu", type=flag(FRACTION),
                   help="single-node MFU, reduced by communication" + EFFICIENCY)
    e.add_argument("--from-results", metavar="PATH",
                   help="a stored run's MFU (and J/token)" + EFFICIENCY)
    p.add_argument("--run-id", help="the run in --from-results (default: the last ok one)")
    p.add_argument("--max-node-mfu", type=flag(FRACTION), metavar="X",
                   help="with --mfu, the highest node MFU a plan may need; default "
                   + _calibrated_help("max_node_mfu"))
    p.add_argument("--validate", action="store_true",
                   help="the step model against the published runs (published_runs.toml): "
                   "per run the published MFU, the node MFU it implies at its plan, the MFU "
                   "predicted at one common node MFU and the error; then the held-out median "
                   "and worst error (with --json: a list `runs`)")
    d = p.add_argument_group("data-parallel efficiency (one of; replaces the modelled DP "
                             "traffic)").add_mutually_exclusive_group()
    d.add_argument("--scaling-from", metavar="PATH",
                   help="a `trnbench scaling` series' efficiency at its largest process count "
                   "(default: none, the modelled DP traffic)")
    d.add_argument("--scaling-efficiency", type=flag(FRACTION), metavar="E",
                   help="data-parallel scaling efficiency, (0, 1] (default: none, the modelled "
                   "DP traffic)")
    p.add_argument("--allow-other-device", action="store_true",
                   help="use a --scaling-from series of another device, labelled assumption, "
                        "or --comm-from records of another device, labelled measured with a "
                        "note")
    p.add_argument("--series", help="the series in --scaling-from (default: the last one)")
    p.add_argument("--global-batch-tokens", metavar="B[,B,...]",
                   help="tokens per step; a list is searched, with one row per batch (the fit "
                   "map); K, M, G are 2^10, 2^20, 2^30 (16M = 2,048 x 8,192); "
                   + presets.default_help("global_batch_tokens"))
    for name, limits, help_ in (
            ("goodput", FRACTION, "share of wall time that trains"),
            ("micro_batch", _COUNT, "sequences per micro-batch"),
            ("tp_overlap", FRACTION, "share of TP and CP traffic hidden"),
            ("ep_overlap", FRACTION, "share of the MoE all-to-all traffic hidden"),
            ("memory_usable", FRACTION, "usable memory share")):
        p.add_argument(f"--{name.replace('_', '-')}", type=flag(limits),
                       help=f"{help_}; {presets.default_help(name)}")
    for name, limits, help_ in (
            ("dp_overlap", FRACTION, "share of DP traffic hidden"),
            ("link_efficiency", FRACTION, "share of a link's bandwidth a collective achieves"),
            ("elementwise_bytes", Limits(low=0), "HBM bytes per token and layer, x d, of the "
             "non-matmul work (forward and backward)")):
        p.add_argument(f"--{name.replace('_', '-')}", type=flag(limits),
                       help=f"{help_}; default {_calibrated_help(name)}")
    p.add_argument("--grad-reduce", choices=("fp32", "bf16"),
                   help="gradients in the DP reduction; " + presets.default_help("grad_reduce"))
    for name, what in (("tp", "tensor parallelism"), ("pp", "pipeline parallelism"),
                       ("dp", "data parallelism"),
                       ("ep", "expert parallelism (MoE: divides experts, DP)"),
                       ("cp", "context parallelism (default: searched while each rank keeps "
                        f"{presets.DEFAULTS['cp_min_tokens'].value:,.0f} tokens)"),
                       ("vpp", "interleaved pipeline chunks per stage (default: searched over "
                        "the divisors of the layers per stage)")):
        p.add_argument(f"--{name}", type=flag(_COUNT),
                       help=f"pin {what}" + ("" if "default" in what else " (default: searched)"))
    p.add_argument("--sharding", choices=("auto", "zero1", "fsdp"),
                   help="pin the sharding over data parallelism: zero1 (ZeRO-1: optimizer "
                   "states) or fsdp (ZeRO-3: weights, gradients and states); default auto: "
                   "searched")
    p.add_argument("--recompute", choices=("auto", "none", "full"),
                   help="pin activation recompute: none or full (every layer); default auto: "
                   "searched")
    p.add_argument("--sweep-chips", nargs="?", const="auto", metavar="N,N,...",
                   help="time and power against chip count (default series without a list)")
    p.add_argument("--plot", metavar="PNG", help="plot the sweep, or the fit map of a "
                   "--global-batch-tokens list, into PNG (needs the plots extra; default: none)")
    p.add_argument("--json", action="store_true", help="the projection as JSON on stdout")


def _calibrated_help(key: str) -> str:
    """'VALUE [label: source]' of a calibrated default, for --help (argparse-escaped)."""
    fig = calibration.defaults()[key]
    return f"{fig.value:g} [{fig.label}: {fig.source}]".replace("%", "%%")


def _figure(value: float | None, default: str, flag: str, unit: str = "") -> Figure:
    d = {**presets.DEFAULTS, **calibration.defaults()}[default]
    return Figure(value, unit or d.unit, "user", flag) if value is not None else d


def _constants(args: argparse.Namespace) -> comm.Constants:
    """The step model's constants from the flags and their defaults."""
    return comm.Constants(**{k: _figure(getattr(args, k), k, "--" + k.replace("_", "-")).value
                             for k in ("tp_overlap", "dp_overlap", "link_efficiency",
                                       "elementwise_bytes", "ep_overlap")})


_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30}


def batch_list(spec: str | None) -> list[Figure]:
    """--global-batch-tokens: one or more token counts, K/M/G binary; the default."""
    if spec is None:
        return [presets.DEFAULTS["global_batch_tokens"]]
    out = []
    for item in spec.split(","):
        text = item.strip()
        scale = _BINARY.get(text[-1:].upper(), 1)
        number = text[:-1] if scale > 1 else text
        try:
            value = check(number, "--global-batch-tokens", POSITIVE, text=True) * scale
        except ConfigError:
            raise ConfigError("--global-batch-tokens", f"expected token counts like 16M or "
                              f"16M,32M,64M (K, M, G: 2^10, 2^20, 2^30), got {spec!r}") from None
        out.append(Figure(value, "tokens", "user", "--global-batch-tokens"))
    return out


def scenario(args: argparse.Namespace, record: Record | None = None) -> model.Scenario:
    """Every input of the projection from the parsed flags (ConfigError on bad input);
    ``record``: the run of ``--from-results`` when the caller holds it (not read again)."""
    w = workload.resolve(model=args.model, workload=args.workload, params=args.params,
                         flops=args.flops, tokens=args.tokens, seq=args.seq, shape=args.shape)
    given = dict(
        cluster=args.cluster, hardware_key=args.hardware, chips=args.chips,
        power_cap_mw=args.power_cap_mw, pue=args.pue, server_overhead=args.server_overhead,
        precision=args.precision, peak_tflops=args.peak_tflops, chip_power_w=args.chip_power_w,
        chip_memory_gb=args.chip_memory_gb, chip_hbm_tbs=args.chip_hbm_tbs,
        chips_per_node=args.chips_per_node, intra_gbs=args.intra_node_gbs,
        inter_gbps=args.inter_node_gbps)
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
        mode = "node"
        mfu, why = measured.node_mfu(
            record, args.from_results, peak=c.chip.peak.value,
            hbm=None if c.chip.hbm is None else c.chip.hbm.value, node=c.node,
            constants=_constants(args))
        notes.append(why)
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
    if args.max_node_mfu is not None and mode != "at-scale":
        raise ConfigError("--max-node-mfu", "applies with --mfu (the node MFU of --node-mfu "
                          "and --from-results is given)")
    pins = {k: v for k, v in (("tp", args.tp), ("cp", args.cp), ("pp", args.pp),
                              ("dp", args.dp), ("ep", args.ep), ("vpp", args.vpp),
                              ("sharding", args.sharding), ("recompute", args.recompute))
            if v is not None and v != "auto"}
    grad = (Figure(comm.GRAD_BYTES[args.grad_reduce], "bytes", "user", "--grad-reduce")
            if args.grad_reduce else presets.DEFAULTS["grad_reduce"])
    return model.Scenario(
        workload=w, cluster=c, mode=mode, mfu=mfu,
        goodput=_figure(args.goodput, "goodput", "--goodput"),
        global_batch_tokens=batch_list(args.global_batch_tokens)[0],
        micro_batch=_figure(args.micro_batch, "micro_batch", "--micro-batch"),
        tp_overlap=_figure(args.tp_overlap, "tp_overlap", "--tp-overlap"),
        dp_overlap=_figure(args.dp_overlap, "dp_overlap", "--dp-overlap"),
        ep_overlap=_figure(args.ep_overlap, "ep_overlap", "--ep-overlap"),
        memory_usable=_figure(args.memory_usable, "memory_usable", "--memory-usable"),
        link_efficiency=_figure(args.link_efficiency, "link_efficiency", "--link-efficiency"),
        elementwise_bytes=_figure(args.elementwise_bytes, "elementwise_bytes",
                                  "--elementwise-bytes"),
        grad_reduce=grad, max_node_mfu=_figure(args.max_node_mfu, "max_node_mfu",
                                               "--max-node-mfu"),
        cp_min_tokens=presets.DEFAULTS["cp_min_tokens"],
        j_per_flop=j_per_flop, dp_efficiency=dp_efficiency, pins=pins, notes=tuple(notes))


def _sweep_counts(spec: str, s: model.Scenario) -> list[int]:
    if spec == "auto":
        return model.default_sweep(int(s.cluster.chips.value), int(s.cluster.node.chips.value))
    try:  # a count like the --chips it sweeps (an inf or 1e400 is no count)
        return count_list(spec, "--sweep-chips", high=_COUNT.high or 1e9)
    except ConfigError as e:
        raise ConfigError("--sweep-chips", f"expected chip counts like 8192,16384 or nothing "
                          f"(a default series): {e.message}") from None


def _numbers(value: Any, where: str = "") -> Iterator[tuple[str, float]]:
    """Every float in a JSON-like value, with its path."""
    if isinstance(value, float):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{where}[{i}]")


def _out_of_range(args: argparse.Namespace, what: str) -> ConfigError:
    """The error of inputs whose projection is not a finite number (an overflow to inf, a
    division by an underflow): named by the given number furthest from 1 in magnitude."""
    given = {k: v for k, v in vars(args).items()  # the number flags given (all positive)
             if isinstance(v, int | float) and not isinstance(v, bool) and v > 0}
    if not given:
        return ConfigError("project", f"{what} is not a finite number")
    worst = max(given, key=lambda k: abs(math.log10(given[k])))
    return ConfigError(f"--{worst.replace('_', '-')}", f"{given[worst]:g} is out of range: "
                       f"{what} is not a finite number with it")


def _project(args: argparse.Namespace, compute: Callable[[], T]) -> T:
    """``compute()``; an overflow or a division by an underflow is ``_out_of_range``."""
    try:
        return compute()
    except (ZeroDivisionError, OverflowError):
        raise _out_of_range(args, "the projection") from None


def _alone(args: argparse.Namespace) -> None:
    """--validate takes no projection flags (only --json)."""
    given = [a for a in getattr(args, "verb_argv", []) if a not in ("--validate", "--json")]
    if given:
        raise ConfigError("--validate", "checks the step model on the published runs and takes "
                          f"only --json; got {given[0]}")


def cmd_project(args: argparse.Namespace) -> int:
    if args.validate:
        _alone(args)
        v = calibration.stored()
        if args.json:
            print(json.dumps(v.as_dict()))
        else:
            console.stdout.print(render.validation_table(v))
            console.stdout.print(render.validation_summary(v))
        return 0
    if args.plot is not None:
        output_file(args.plot, "--plot", ".png")
    s = scenario(args)
    batches = batch_list(args.global_batch_tokens)
    fit_map = _project(args, lambda: model.fit_map(s, batches)) if len(batches) > 1 else None
    p = _project(args, lambda: model.project(s) if fit_map is None
                 else model.fastest_of(fit_map))
    bad = next(((k, v) for k, v in _numbers(p.as_dict()) if not math.isfinite(v)), None)
    if bad:
        raise _out_of_range(args, f"the projection's {bad[0]} ({bad[1]})")
    s = p.scenario
    sweep_spec = args.sweep_chips or ("auto" if args.plot and fit_map is None else None)
    rows = model.sweep(s, _sweep_counts(sweep_spec, s)) if sweep_spec else None
    if args.plot:
        cap = s.cluster.power_cap
        cap_mw = None if cap is None else cap.value / 1e6
        title = f"{s.workload.title} on {s.cluster.chip.name}"
        if rows is not None:
            render.plot(rows, args.plot, title, cap_mw)
        else:
            render.plot(model.fit_map_rows(fit_map or []), args.plot, title, cap_mw,
                        labels="batch")
    if args.json:
        out = p.as_dict()
        out["bandwidths"] = render.bandwidths(s.cluster.node)
        if fit_map is not None:
            out["batches"] = model.fit_map_rows(fit_map)
        if rows is not None:
            out["sweep"] = rows
        if args.plot:
            out["plot"] = args.plot
        print(json.dumps(out))
        return 0
    console.stdout.print(render.inputs_table(p))
    console.stdout.print(render.results_table(p))
    if fit_map is not None:
        console.stdout.print(render.fit_map_table(model.fit_map_rows(fit_map)))
    if rows is not None:
        console.stdout.print(render.sweep_table(rows))
    if args.plot:
        console.stdout.print(f"plot: {args.plot}")
    return 0
