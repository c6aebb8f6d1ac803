"""`trnbench` command line: argument parsing only; each verb calls into a module.

Exit codes: 0 success, 1 a run that failed midway (stored as failed), 2 bad input
(one line on stderr naming the field and the accepted values; nothing written),
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from bench import backends, config, console, environment, store
from bench.config import ConfigError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        fail(message)


def fail(message: str) -> None:
    print(f"trnbench: error: {message}", file=sys.stderr)
    sys.exit(2)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML file with a [run] table")
    p.add_argument("--model", help="registry name (see `trnbench models`)")
    p.add_argument("--backend", choices=backends.names(), help="device family (default auto)")
    p.add_argument("--batch", type=int, help="sequences per step (default: model's)")
    p.add_argument("--seq", type=int, help="sequence length (default: model's)")
    p.add_argument("--steps", type=int, help="timed steps")
    p.add_argument("--warmup", type=int, help="warm-up steps before the window")
    p.add_argument("--precision", choices=config.PRECISIONS)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the training step")
    p.add_argument("--lr", type=float, help="AdamW learning rate (default 3e-4)")
    p.add_argument("--seed", type=int, help="seed of weights and data (default 0)")
    p.add_argument("--energy", choices=config.ENERGY_CHOICES,
                   help="energy meter of the timed window (default auto: the backend's sensor, "
                        "cuda nvml, neuron neuron, cpu rapl; modelled only when named)")
    p.add_argument("--results", metavar="PATH",
                   help=f"JSONL file to append to (default $TRNBENCH_RESULTS or "
                        f"{store.DEFAULT_PATH})")
    p.add_argument("--json", action="store_true", help="print the record as JSON on stdout")
    p.add_argument("--precompile", action="store_true",
                   help="neuron-xla: run under neuron_parallel_compile to fill the compile "
                        "cache (no record is stored), then run again without it")


def build_parser() -> Parser:
    parser = Parser(prog="trnbench", description="LLM training benchmarks for Trainium, "
                    "GPUs and CPUs: throughput, MFU, memory, with their methods.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    run = verbs.add_parser("run", help="benchmark training steps of one model")
    _add_run_args(run)
    models = verbs.add_parser("models", help="list the model registry")
    models.add_argument("--json", action="store_true")
    env = verbs.add_parser("env", help="detected backends, devices and versions")
    env.add_argument("--json", action="store_true")
    return parser


def precompile(cfg: config.RunConfig, argv: list[str]) -> None:
    """Re-run this command under ``neuron_parallel_compile`` (FACTS.md, "Neuron SDK")."""
    if cfg.backend != "neuron-xla":
        raise ConfigError("--precompile", f"applies to --backend neuron-xla only, not "
                          f"{cfg.backend}")
    exe = shutil.which("neuron_parallel_compile")
    if exe is None:
        raise ConfigError("--precompile", "neuron_parallel_compile is not on PATH (it comes "
                          "with torch-neuronx; activate the Neuron environment)")
    inner = [a for a in argv if a != "--precompile"]
    console.stderr.print(f"precompiling: {exe} {sys.executable} -m bench {' '.join(inner)}")
    os.execv(exe, [exe, sys.executable, "-m", "bench", *inner])


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from bench import runner  # torch-heavy imports only for the verbs that need them

    file_layer = config.load_toml(args.config) if args.config else {}
    backend_name = args.backend or file_layer.get("backend", "auto")
    if backend_name not in backends.names():
        raise ConfigError("--backend", f"unknown backend {backend_name!r}; accepted: "
                          f"{', '.join(backends.names())}")
    try:
        selection = backends.select(backend_name)
    except backends.BackendUnavailable as e:
        available = [p.name for p in backends.probe_all() if p.available]
        raise ConfigError("--backend", f"{e}; available: auto, {', '.join(available)}") from None
    cli_layer = {k: getattr(args, k) for k in config.FIELDS if k != "backend" and
                 getattr(args, k, None) is not None}
    cfg = config.resolve(selection.backend.name, file_layer, cli_layer)
    if cfg.compile and not selection.backend.supports_compile:
        raise ConfigError("--compile", f"does not apply to {cfg.backend} (XLA compiles the "
                          "lazy-tensor graphs itself); accepted on: cpu, cuda, neuron")
    if args.precompile:
        precompile(cfg, argv)
    results = Path(args.results) if args.results else store.default_path()
    problem = store.writable_problem(results)
    if problem:
        raise ConfigError("--results", f"cannot append records: {problem}")
    if os.environ.get("NEURON_EXTRACT_GRAPHS_ONLY"):
        console.stderr.print("graph extraction under neuron_parallel_compile: the device runs "
                             "stubs with zero outputs, so no record is stored")
        results = None

    console.stderr.print(f"[dim]{selection.reason}[/dim]")
    show_progress = console.stderr.is_terminal or not args.json
    with console.run_progress(show_progress) as progress:
        record = runner.execute(cfg, selection, results, progress)
    if args.json:
        print(store.dumps(record))
    else:
        console.stdout.print(console.summary_table(record, str(results or "not stored")))
    if record["status"] != "ok":
        where = f"stored in {results}" if results else "not stored"
        print(f"trnbench: run failed: {record['error']} ({where})", file=sys.stderr)
        return 1
    return 0


def cmd_models(args: argparse.Namespace, argv: list[str]) -> int:
    from models import flops, registry

    rows: list[dict[str, Any]] = []
    for name in registry.names():
        spec = registry.get(name)
        c = spec.config
        rows.append({
            "name": name, "params": flops.param_count(c),
            "matmul_params": flops.matmul_param_count(c),
            "flops_per_token": flops.flops_per_token(c, spec.seq_len),
            "seq": spec.seq_len, "batch": spec.batch_size, "layers": c.n_layers,
            "dim": c.dim, "heads": c.n_heads, "kv_heads": c.n_kv_heads,
            "vocab": c.vocab_size, "max_seq": c.max_seq_len, "description": spec.description,
        })
    if args.json:
        print(json.dumps(rows))
        return 0
    from rich.table import Table

    t = Table(title=f"trnbench models (FLOPs/token by {flops.FORMULA} at the default seq)")
    for col in ("name", "params", "layers", "dim", "heads/kv", "vocab", "seq", "batch",
                "GFLOP/token"):
        t.add_column(col, justify="left" if col == "name" else "right")
    for r in rows:
        t.add_row(r["name"], f"{r['params']:,}", str(r["layers"]), str(r["dim"]),
                  f"{r['heads']}/{r['kv_heads']}", f"{r['vocab']:,}", str(r["seq"]),
                  str(r["batch"]), f"{r['flops_per_token'] / 1e9:,.2f}")
    console.stdout.print(t)
    return 0


def cmd_env(args: argparse.Namespace, argv: list[str]) -> int:
    probes = backends.probe_all()
    info = {
        "environment": environment.capture(),
        "backends": [{"name": p.name, "available": p.available, "reason": p.reason}
                     for p in probes],
        "auto": backends.select("auto").reason,
    }
    if args.json:
        print(json.dumps(info))
        return 0
    from rich.table import Table

    t = Table(title="trnbench env", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    for key, value in info["environment"].items():
        t.add_row(key, str(value))
    for p in probes:
        t.add_row(f"backend {p.name}", ("[green]yes[/green] " if p.available else
                                        "[red]no[/red] ") + p.reason)
    t.add_row("auto", info["auto"])
    console.stdout.print(t)
    return 0


VERBS = {"run": cmd_run, "models": cmd_models, "env": cmd_env}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        return VERBS[args.verb](args, argv[1:])
    except ConfigError as e:
        fail(str(e))
    except KeyboardInterrupt:
        print("trnbench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
