"""The ``trnbench env`` verb: the host, its software and the backends present."""

from __future__ import annotations

import argparse
import json

from bench.report import console


def add_env_args(p: argparse.ArgumentParser) -> None:
    """The flags of `trnbench env`."""
    p.add_argument("--json", action="store_true", help="the environment and backends as JSON "
                   "on stdout")


def cmd_env(args: argparse.Namespace) -> int:
    """`trnbench env`: the host, software versions and each backend's availability."""
    from bench.backends import environment, selection

    probes = selection.probe_all()
    info = {
        "environment": environment.capture(),
        "backends": [{"name": p.name, "available": p.available, "reason": p.reason}
                     for p in probes],
        "auto": selection.select("auto").reason,
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
