"""`trnbench` command line: argument parsing only; each verb calls into a module.

Exit codes: 0 success, 1 a run that failed midway (stored as failed) or a record that
could not be stored, 2 bad input (one line on stderr naming the field and the accepted
values; nothing written), 130 interrupted by SIGINT, 143 by SIGTERM (stored as interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from types import ModuleType
from typing import Any

# torch-free imports only: `--help` and the verbs that read results start in well under a
# second; each verb's module, and the training stack with it, loads when that verb is parsed
from bench.inputs.errors import ConfigError, raise_on_signals, signal_of
from bench.records.store import StoreError

# verb -> (its stage's command module, which has add_<verb>_args and cmd_<verb>; help)
VERBS = {
    "run": ("bench.train.command", "benchmark training steps of one model"),
    "models": ("bench.train.command", "list the model registry"),
    "env": ("bench.backends.command", "detected backends, devices and versions"),
    "plan": ("bench.parallel.command", "per-rank memory of a run on named hardware, and the "
             "smallest change of layout that fits"),
    "sweep": ("bench.launch.command", "a grid of runs with repeats, one subprocess each"),
    "scaling": ("bench.launch.command", "scaling efficiency over process counts (torchrun "
                "runs)"),
    "suite": ("bench.launch.command", "the measurement suite of a machine: plan, batch "
              "search, repeats (scripts/suite.toml)"),
    "report": ("bench.report.command", "Markdown, CSV and HTML tables and plots of stored runs"),
    "compare": ("bench.report.command", "ratios per chip, instance, watt and dollar of target "
                "runs over baseline runs"),
    "comm": ("bench.comm.command", "collective bandwidth (all-reduce, all-gather, ...) "
             "through torch.distributed, the nccl-tests way"),
    "ingest": ("bench.records.command", "store the benchmarks of a pytest-benchmark JSON file, "
               "or nccl-tests or nccom-test output, as records"),
    "project": ("bench.projection.command", "project a training run onto a cluster"),
}


def command_module(verb: str) -> ModuleType:
    return importlib.import_module(VERBS[verb][0])


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2. ``verb``: a verb's
    parser, whose flags come from ``add_<verb>_args`` of its command module (``VERBS``),
    imported when the parser is first used (parsing or help)."""

    def __init__(self, *args: Any, verb: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._verb = verb

    def _add_flags(self) -> None:
        if self._verb:
            verb, self._verb = self._verb, None
            getattr(command_module(verb), f"add_{verb}_args")(self)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._add_flags()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_flags()
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        fail(message.removeprefix("argument "))  # "--model: ...", as a ConfigError reads


def fail(message: str) -> None:
    print(f"trnbench: error: {message}", file=sys.stderr)
    sys.exit(2)


def build_parser() -> Parser:
    """The top-level parser; each verb's flags are added when that verb is parsed."""
    parser = Parser(prog="trnbench", description="LLM training benchmarks for Trainium, "
                    "GPUs and CPUs: throughput, MFU, memory, with their methods.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    for verb, (_, help_text) in VERBS.items():
        verbs.add_parser(verb, help=help_text, verb=verb, allow_abbrev=verb != "scaling")
    return parser


def torchrun_worker() -> bool:
    """This process is a rank that torchrun started (it sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    # a torchrun worker leaves SIGTERM to torchrun (it names the rank that failed)
    signals = contextlib.nullcontext() if torchrun_worker() else raise_on_signals()
    try:
        with signals:
            args.verb_argv = argv[1:]
            return getattr(command_module(args.verb), f"cmd_{args.verb}")(args)
    except ConfigError as e:
        fail(str(e))
    except StoreError as e:
        print(f"trnbench: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        sig = signal_of(e)
        print(f"trnbench: interrupted by {sig.name}", file=sys.stderr)
        return 128 + sig
    return 0


if __name__ == "__main__":
    sys.exit(main())
