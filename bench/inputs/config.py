"""Validated run configuration: embedded per-backend defaults, TOML files, CLI overrides.

Precedence (lowest first): the backend's entry in ``defaults.toml``, the model's registry
defaults (batch, seq), a ``--config`` TOML file's ``[run]`` table, command-line flags.

Each RunConfig field carries its ``Option`` (flag, help, accepted values): the one table
from which the ``run``/``scaling`` flags (``add_flags``), ``validate``, the TOML readers
(``load_toml``, sweep files) and the inverse, ``to_argv``, are generated, so that a new
field is declared in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bench.inputs import numbers
from bench.inputs.errors import ConfigError
from models import registry

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (e.g. the Neuron DLAMI's venvs)
    import tomli as tomllib

PRECISIONS = ("fp32", "bf16")
PARALLEL_MODES = ("ddp", "fsdp", "hsdp")
AC_MODES = ("none", "full", "selective")
PARAM_DTYPES = ("fp32", "bf16")
# `--backend` choices, the keys of bench.backends (whose classes import torch): "auto" first
BACKEND_NAMES = ("auto", "neuron", "neuron-xla", "cuda", "cpu", "xla")
# `--energy` choices (bench.energy.meters makes the meter of each)
ENERGY_CHOICES = ("auto", "nvml", "neuron", "rapl", "modelled", "none")
DATA_KINDS = ("synthetic",)  # bench.train.data: seeded bigram sequences


def __getattr__(name: str) -> Any:
    """``PRECISION_DTYPES`` (precision -> torch dtype), built on first use so that importing
    this module does not import torch."""
    if name == "PRECISION_DTYPES":
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16}
    raise AttributeError(f"module 'bench.inputs.config' has no attribute {name!r}")


@dataclass(frozen=True)
class Option:
    """How a RunConfig field is given and checked. Exactly one kind of value: ``choices``
    (names), ``limits`` (a number, ``numbers.check``) or a bool field (``--x/--no-x``).
    ``noun`` names the value in an error ("unknown precision 'fp8'"); ``flag`` defaults to
    ``--`` and the field's name with dashes; ``name`` and ``boolean`` are filled in from the
    field (``options``)."""

    help: str
    choices: tuple[str, ...] = ()
    limits: numbers.Limits | None = None
    metavar: str | None = None
    noun: str = "value"
    flag: str = ""
    name: str = ""
    boolean: bool = False

    def unknown(self, value: object) -> str:
        return f"unknown {self.noun} {value!r}; accepted: {', '.join(self.choices)}"

    def check(self, value: Any) -> Any:
        """``value`` as the field holds it (a count as an int, a rate as a float), or a
        ConfigError naming the flag and the accepted values."""
        if self.limits is not None:
            return numbers.check(value, self.flag, self.limits)
        if self.boolean:
            if not isinstance(value, bool):
                raise ConfigError(self.flag, f"must be true or false, got {value!r}")
        elif isinstance(value, list | dict) or value not in self.choices:
            raise ConfigError(self.flag, self.unknown(value))
        return value

    def parse(self, text: str) -> Any:
        """The argparse ``type`` of the flag: the same check, on the flag's text."""
        if self.limits is not None:
            return numbers.flag(self.limits)(text)
        if text not in self.choices:
            raise argparse.ArgumentTypeError(self.unknown(text))
        return text

    def to_text(self, value: Any) -> str:
        """The flag's text of ``value``; ``repr`` of a float is exact."""
        return repr(value) if isinstance(value, float) else str(value)


def option(default: Any = dataclasses.MISSING, **spec: Any) -> Any:
    """A RunConfig field declared with its ``Option`` (kept in the field's metadata)."""
    return dataclasses.field(default=default, metadata={"option": Option(**spec)})


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one benchmark run (stored whole in the record)."""

    model: str = option(choices=tuple(registry.names()), noun="model", metavar="NAME",
                        help="registry name (see `trnbench models`)")
    backend: str = option(choices=BACKEND_NAMES, noun="backend",
                          help="device family (default auto)")
    batch: int = option(limits=numbers.COUNT, metavar="B",
                        help="sequences per step of each data-parallel rank (a TP group "
                             "shares them)")
    seq: int = option(limits=numbers.COUNT, metavar="T", help="sequence length")
    steps: int = option(limits=numbers.COUNT, metavar="N", help="timed steps")
    warmup: int = option(limits=numbers.INDEX,
                         metavar="W", help="warm-up steps before the window")
    precision: str = option(choices=PRECISIONS, noun="precision",
                            help="bf16: autocast with fp32 parameters and optimizer states")
    compile: bool = option(False, help="torch.compile the training step (default off)")
    lr: float = option(3e-4, limits=numbers.POSITIVE,  # a huge one diverges (stored failed)
                       metavar="LR", help="AdamW learning rate (default 3e-4)")
    seed: int = option(0, limits=numbers.Limits(low=0, high=2**63 - 1, integer=True),
                       metavar="S",  # torch.manual_seed's range
                       help="seed of weights and data (default 0)")
    data: str = option("synthetic", choices=DATA_KINDS, noun="data",
                       help="training data: synthetic (seeded bigram sequences; the only kind, "
                            "the default)")
    energy: str = option("auto", choices=ENERGY_CHOICES, noun="energy method",
                         help="energy meter of the timed window (default auto: the backend's "
                              "sensor, cuda nvml, neuron neuron, cpu rapl; modelled only when "
                              "named)")
    parallel: str = option("ddp", choices=PARALLEL_MODES, noun="mode",
                           help="data parallelism under torchrun: ddp (default), fsdp (FSDP2) "
                                "or hsdp (sharded inside a node, replicated across)")
    tp: int = option(1, limits=numbers.COUNT, metavar="T",
                     help="tensor (and sequence) parallel ranks inside a node (default 1)")
    dp_shard: int = option(0, limits=numbers.INDEX,
                           metavar="N", help="hsdp: ranks that shard one replica (default: "
                                             "ranks per node / tp)")
    ac: str = option("none", choices=AC_MODES,
                     help="activation checkpointing: none (default), full (every block), "
                          "selective (every 2nd block)")
    param_dtype: str = option("fp32", choices=PARAM_DTYPES,
                              help="bf16: FSDP2 MixedPrecisionPolicy (bf16 compute copies, "
                                   "fp32 master weights and gradient reduction); default fp32")
    dist_timeout_s: float = option(600.0, limits=numbers.Limits(low=0, low_open=True, high=1e9),
                                   flag="--dist-timeout", metavar="SECONDS",  # a timedelta's
                                   help="process-group timeout (default 600): a dead peer "
                                        "ends the run by then")

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def options(cls: type) -> dict[str, Option]:
    """Each field's Option, by field name, completed from the field; a field declared
    without one, or with not exactly one kind of value, is a TypeError at import."""
    table: dict[str, Option] = {}
    for f in dataclasses.fields(cls):
        opt = f.metadata.get("option")
        if opt is None:
            raise TypeError(f"{cls.__name__}.{f.name} is declared without config.option()")
        boolean = f.type in ("bool", bool)
        if boolean + bool(opt.choices) + (opt.limits is not None) != 1:
            raise TypeError(f"{cls.__name__}.{f.name}: give choices, limits or a bool type")
        table[f.name] = dataclasses.replace(
            opt, name=f.name, boolean=boolean, flag=opt.flag or f"--{f.name.replace('_', '-')}")
    return table


OPTIONS = options(RunConfig)


def field_of(flag: str) -> str | None:
    """The RunConfig field of a ``trnbench run`` flag (``--dist-timeout`` ->
    ``dist_timeout_s``), None for a flag of no field."""
    return next((o.name for o in OPTIONS.values() if o.flag == flag), None)


def add_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """The flags of the RunConfig fields ``names`` (default all), each stored under its field's
    name and None when absent (``flag_layer``); the help of a field that defaults.toml sets
    names each backend's default (``backend_default_help``)."""
    for opt in (OPTIONS[n] for n in (OPTIONS if names is None else names)):
        note = backend_default_help(opt.name)
        text = f"{opt.help}; {note}" if note else opt.help
        if opt.boolean:
            parser.add_argument(opt.flag, dest=opt.name, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
        else:
            parser.add_argument(opt.flag, dest=opt.name, type=opt.parse, help=text,
                                metavar=opt.metavar or "{" + ",".join(opt.choices) + "}")


def backend_default_help(name: str) -> str:
    """Each backend's default of field ``name`` from defaults.toml, for --help: 'default: 12
    on cpu, xla; 30 on cuda, ...' ('' for a field no backend sets). A backend without it takes
    the model's (batch, seq), as does a --model other than the backend's."""
    by_value: dict[str, list[str]] = {}
    for backend in BACKEND_NAMES[1:]:
        value = backend_defaults(backend).get(name)
        by_value.setdefault("the model's" if value is None else str(value), []).append(backend)
    if list(by_value) == ["the model's"]:
        return ""
    text = "default: " + "; ".join(f"{v} on {', '.join(b)}" for v, b in by_value.items())
    if name in ("batch", "seq"):
        text += " (a --model other than the backend's brings its own)"
    return text


def flag_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields given as flags (``add_flags``), by name."""
    return {n: getattr(args, n) for n in OPTIONS if getattr(args, n, None) is not None}


def to_argv(cfg: RunConfig) -> list[str]:
    """``trnbench run`` flags that resolve to exactly ``cfg``: every field is given, so no
    backend or model default fills one in (the inverse of ``add_flags`` + ``resolve``)."""
    argv: list[str] = []
    for name, opt in OPTIONS.items():
        value = getattr(cfg, name)
        if opt.boolean:
            argv.append(opt.flag if value else f"--no-{opt.flag[2:]}")
        else:
            argv += [opt.flag, opt.to_text(value)]
    return argv


def backend_defaults(backend: str) -> dict[str, Any]:
    """The embedded default run for ``backend``; KeyError for a backend without an entry
    (every backend has one: none takes another's default)."""
    table = tomllib.loads(resources.files("bench.inputs").joinpath("defaults.toml").read_text())
    if backend not in table:
        raise KeyError(f"bench/inputs/defaults.toml has no [{backend}] entry")
    return dict(table[backend])


def read_text(path: str | os.PathLike, flag: str) -> str:
    """A UTF-8 text file given with ``flag``; a missing, unreadable, special (a FIFO would
    block) or non-UTF-8 one is a ConfigError naming the flag and the file."""
    p = Path(path)
    try:
        if p.exists() and not p.is_file():
            raise ConfigError(flag, f"{p}: not a regular file")
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(flag, f"no such file: {p}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(flag, f"{p}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(flag, f"{p}: cannot read: {e.strerror}") from None


def read_toml(path: str | os.PathLike, flag: str) -> dict[str, Any]:
    """A TOML file given with ``flag``; a missing, unreadable, non-UTF-8 or malformed one is
    a ConfigError naming the flag and the file."""
    p = Path(path)
    try:
        return tomllib.loads(read_text(p, flag))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(flag, f"{p}: malformed TOML: {e}") from None


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """The ``[run]`` table of a config file (or its top level); errors name file and field."""
    p = Path(path)
    data = read_toml(p, "--config")
    run = data.get("run", data)
    if not isinstance(run, dict):
        raise ConfigError("--config", f"{p}: [run] must be a table")
    unknown = sorted(set(run) - set(OPTIONS))
    if unknown:
        raise ConfigError(
            "--config",
            f"{p}: unknown field {unknown[0]!r}; accepted: {', '.join(OPTIONS)}",
        )
    return run


def resolve(backend: str, *layers: dict[str, Any]) -> RunConfig:
    """Merge ``layers`` over the backend defaults and the model's own batch/seq; validate."""
    merged: dict[str, Any] = backend_defaults(backend)
    explicit: dict[str, Any] = {}
    for layer in layers:
        explicit.update({k: v for k, v in layer.items() if v is not None})
    if "model" in explicit and explicit["model"] != merged.get("model"):
        # a model chosen by the user brings its own batch/seq, not the backend default's
        merged.pop("batch", None)
        merged.pop("seq", None)
    merged.update(explicit)
    merged["backend"] = backend
    spec = _model_spec(merged.get("model"))
    merged.setdefault("batch", spec.batch_size)
    merged.setdefault("seq", spec.seq_len)
    return validate(RunConfig(**merged))


def _model_spec(name: Any) -> registry.ModelSpec:
    return registry.get(OPTIONS["model"].check(name))


def validate(cfg: RunConfig) -> RunConfig:
    """Check every field against its Option (type, choices, range), then the model's limits;
    raise ConfigError naming the first bad one."""
    cfg = dataclasses.replace(cfg, **{name: opt.check(getattr(cfg, name))
                                      for name, opt in OPTIONS.items()})
    spec = _model_spec(cfg.model)
    if cfg.seq > spec.config.max_seq_len:
        raise ConfigError(
            "--seq",
            f"{cfg.seq} is above the maximum of {cfg.model} ({spec.config.max_seq_len})",
        )
    from bench.parallel import layout  # the model's and precision's constraints on TP

    layout.check_model(cfg, spec.config)
    return cfg
