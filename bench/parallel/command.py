"""`trnbench plan`: the memory plan of a run on named hardware, before renting it.

Prints the per-rank memory of the requested layout by component (``bench.parallel.memory_plan``)
and whether it fits; when it fits, the nearest layout that does not (one flag less), when
it does not, the smallest change that would. Exit 0 when the requested layout fits, 1 when
it does not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.inputs import config, numbers
from bench.inputs.config import ConfigError, RunConfig
from bench.inputs.numbers import COUNT, PER_NODE, POSITIVE, flag
from bench.parallel import layout as layouts
from bench.parallel import memory_plan
from bench.projection.search import GIB

BACKENDS = memory_plan.HARDWARE_BACKENDS

PLAN_FIELDS = ("hardware", "nproc", "nnodes")  # a --config file's [plan] table
# the RunConfig fields that change the plan, given and defaulted as in `trnbench run`
RUN_FIELDS = ("model", "batch", "seq", "tp", "dp_shard", "parallel", "ac", "param_dtype",
              "precision")


def add_plan_args(p: argparse.ArgumentParser) -> None:
    p.description = ("The run flags are those of `trnbench run`, with its defaults: the "
                     "backend's embedded default run, --batch in sequences per data-parallel "
                     "rank.")
    p.add_argument("--config", metavar="FILE", help="TOML run file: its [run] table, and "
                   f"a [plan] table of {', '.join(PLAN_FIELDS)} (default: none)")
    p.add_argument("--hardware", help=f"node kind: {', '.join(memory_plan.NODES)} (no "
                   "default: required unless --memory-gib is given)")
    p.add_argument("--memory-gib", type=flag(POSITIVE), metavar="GIB",
                   help="memory per rank instead of --hardware's (default: --hardware's)")
    p.add_argument("--nproc", type=flag(PER_NODE), metavar="N", help="ranks per node (default: the "
                   "node's NeuronCores or GPUs)")
    p.add_argument("--nnodes", type=flag(COUNT), metavar="M", help="nodes (default 1)")
    p.add_argument("--backend", choices=config.BACKEND_NAMES[1:], help="the backend whose "
                   "embedded default run (bench/inputs/defaults.toml) the other flags override "
                   "(default: " + ", ".join(f"{b[0]} on {h}" for h, b in BACKENDS.items())
                   + "; neuron with --memory-gib alone)")
    config.add_flags(p, RUN_FIELDS)
    p.add_argument("--json", action="store_true", help="the plan as JSON on stdout")


def _file(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The --config file's [run] and [plan] tables (empty without one)."""
    if not args.config:
        return {}, {}
    table = config.read_toml(args.config, "--config").get("plan", {})
    unknown = sorted(set(table) - set(PLAN_FIELDS))
    if unknown:
        raise ConfigError("--config", f"{args.config}: unknown [plan] field {unknown[0]!r}; "
                          f"accepted: {', '.join(PLAN_FIELDS)}")
    return config.load_toml(args.config), table


def _config(args: argparse.Namespace, run_table: dict[str, Any]) -> RunConfig:
    """The run as `trnbench run` would resolve it: the backend's embedded default, the
    --config file's [run] table, the flags. The backend: --backend, else the file's where it
    runs on --hardware, else the hardware's."""
    backend = args.backend
    if backend is None:
        named = run_table.get("backend")
        runs_here = args.hardware is None or named in BACKENDS[args.hardware]
        backend = named if isinstance(named, str) and runs_here else None
    run_table = {k: v for k, v in run_table.items() if k != "backend"}
    return config.resolve(memory_plan.backend_for(args.hardware, backend), run_table,
                          config.flag_layer(args))


def _entry(cfg: RunConfig, base: RunConfig | None, layout: layouts.Layout,
           pred: memory_plan.Prediction) -> dict[str, Any]:
    return {"flags": memory_plan.flags(cfg, base) if base else None, "tp": layout.tp,
            "dp": layout.dp, "parallel": cfg.parallel, "ac": cfg.ac,
            "param_dtype": cfg.param_dtype, **pred.as_dict()}


def _print(title: str, e: dict[str, Any]) -> None:
    verdict = "fits" if e["fits"] else "does not fit"
    print(f"{title}: TP {e['tp']} x DP {e['dp']} {e['parallel']}, ac {e['ac']}, parameters "
          f"{e['param_dtype']}: {e['total_bytes'] / GIB:,.2f} GiB per rank of "
          f"{e['usable_bytes'] / GIB:,.2f} GiB usable at the peak ({e['peak_phase']}): "
          f"{verdict}")
    for part, value in e["bytes"].items():
        if value or part in ("activations", "logits"):
            print(f"  {part:<12} {value / GIB:>9,.2f} GiB")


def cmd_plan(args: argparse.Namespace) -> int:
    run_table, plan_table = _file(args)
    for name in PLAN_FIELDS:
        if getattr(args, name) is None and name in plan_table:
            value = plan_table[name]  # the flag's own check for a file's value
            if name == "hardware" and not isinstance(value, str):
                raise ConfigError("--config", f"{args.config}: [plan] hardware must be one of "
                                  f"{', '.join(memory_plan.NODES)}, got {value!r}")
            setattr(args, name, value if name == "hardware" else
                    numbers.check(value, f"--{name}", PER_NODE if name == "nproc" else COUNT))
    args.nnodes = args.nnodes or 1
    if args.hardware is None and args.memory_gib is None:
        raise ConfigError("--hardware", f"required (one of {', '.join(memory_plan.NODES)}) "
                          "unless --memory-gib is given")
    per_node = 1
    if args.hardware:
        memory, per_node = memory_plan.hardware_memory_per_rank(args.hardware)
    if args.memory_gib is not None:
        memory = memory_plan.given_memory(args.memory_gib, "--memory-gib")
    per_rank = memory.value
    per_node = args.nproc or per_node
    cfg = _config(args, run_table)
    layout = layouts.for_world(cfg, per_node, args.nnodes)
    pred = memory_plan.predict(cfg, layout, per_rank)
    out = {"model": cfg.model, "backend": cfg.backend, "hardware": args.hardware,
           "ranks": per_node * args.nnodes,
           "batch": cfg.batch, "seq": cfg.seq, "precision": cfg.precision,
           "requested": _entry(cfg, None, layout, pred)}
    others = memory_plan.alternatives(cfg, per_node, args.nnodes, per_rank, fit=not pred.fits)
    key = "nearest_not_fitting" if pred.fits else "smallest_fitting_change"
    out[key] = None
    if others:
        v, p = others[0]
        out[key] = _entry(v, cfg, layouts.for_world(v, per_node, args.nnodes), p)
    if args.json:
        print(json.dumps(out))
        return 0 if pred.fits else 1
    print(f"memory plan: {cfg.model} on {cfg.backend}, {cfg.batch} x {cfg.seq} tokens per "
          f"data-parallel rank, {cfg.precision}, {per_node * args.nnodes} ranks ({per_node} "
          f"per node{', ' + args.hardware if args.hardware else ''})")
    _print("requested", out["requested"])
    saved = out["requested"]["saved_for_backward"]
    print("  saved for backward: " + ", ".join(f"{k} {v / GIB:,.2f} GiB"
                                               for k, v in saved.items() if v))
    basis = out["requested"]["basis"]
    print(f"  model: {basis['label']} ({basis['detail']})")
    if out[key]:
        _print(f"{key.replace('_', ' ')} ({out[key]['flags']})", out[key])
    if not pred.fits:
        print(f"refused: {memory_plan.refusal(cfg, pred, per_node, args.nnodes, memory)}")
    return 0 if pred.fits else 1
