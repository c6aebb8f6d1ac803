"""Validated run configuration: embedded per-backend defaults, TOML files, CLI overrides.

Precedence (lowest first): the backend's entry in ``defaults.toml``, the model's registry
defaults (batch, seq), a ``--config`` TOML file's ``[run]`` table, command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bench import numbers
from bench.energy import CHOICES as ENERGY_CHOICES
from bench.errors import ConfigError
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


def __getattr__(name: str) -> Any:
    """``PRECISION_DTYPES`` (precision -> torch dtype), built on first use so that importing
    this module does not import torch."""
    if name == "PRECISION_DTYPES":
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16}
    raise AttributeError(f"module 'bench.config' has no attribute {name!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one benchmark run (stored whole in the record)."""

    model: str
    backend: str
    batch: int
    seq: int
    steps: int
    warmup: int
    precision: str
    compile: bool = False
    lr: float = 3e-4
    seed: int = 0
    data: str = "synthetic"
    energy: str = "auto"  # meter of the timed window (bench.energy)
    parallel: str = "ddp"  # data parallelism under torchrun: ddp | fsdp (FSDP2) | hsdp
    tp: int = 1  # tensor (and sequence) parallel ranks inside a node (bench.parallel)
    dp_shard: int = 0  # hsdp: ranks that shard a replica (0: ranks per node / tp)
    ac: str = "none"  # activation checkpointing: none | full | selective (every 2nd block)
    param_dtype: str = "fp32"  # bf16: FSDP2 MixedPrecisionPolicy (fp32 master, reduce)
    dist_timeout_s: float = 600.0  # process-group timeout: a dead peer ends the run by then

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f.type for f in dataclasses.fields(RunConfig)}
# the numeric fields' ranges: one table for the flags (cli), --config files and sweep files
LIMITS = {
    "batch": numbers.COUNT,
    "seq": numbers.COUNT,
    "steps": numbers.COUNT,
    "warmup": numbers.Limits(low=0, high=numbers.INT_MAX, integer=True),
    "seed": numbers.Limits(low=0, high=2**63 - 1, integer=True),  # torch.manual_seed's range
    "lr": numbers.POSITIVE,  # a huge one is a run that diverges (stored as failed)
    "dist_timeout_s": numbers.Limits(low=0, low_open=True, high=1e9),  # a timedelta holds it
    "tp": numbers.COUNT,
    "dp_shard": numbers.Limits(low=0, high=numbers.INT_MAX, integer=True),  # 0: per node / tp
}


def flag(name: str) -> str:
    """The ``trnbench run`` flag of a RunConfig field (``dp_shard`` -> ``--dp-shard``)."""
    return "--dist-timeout" if name == "dist_timeout_s" else f"--{name.replace('_', '-')}"


def backend_defaults(backend: str) -> dict[str, Any]:
    """The embedded default run for ``backend`` (the cpu entry for backends without one)."""
    table = tomllib.loads(resources.files("bench").joinpath("defaults.toml").read_text())
    return dict(table.get(backend, table["cpu"]))


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
    unknown = sorted(set(run) - set(FIELDS))
    if unknown:
        raise ConfigError(
            "--config",
            f"{p}: unknown field {unknown[0]!r}; accepted: {', '.join(FIELDS)}",
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
    try:
        return registry.get(str(name))
    except registry.UnknownModelError:
        raise ConfigError(
            "--model", f"unknown model {name!r}; accepted: {', '.join(registry.names())}"
        ) from None


def validate(cfg: RunConfig) -> RunConfig:
    """Check every field's type and range; raise ConfigError naming the first bad one."""
    cfg = dataclasses.replace(cfg, **{name: numbers.check(getattr(cfg, name), flag(name),
                                                          limits)
                                      for name, limits in LIMITS.items()})
    if cfg.precision not in PRECISIONS:
        raise ConfigError(
            "--precision", f"unknown precision {cfg.precision!r}; accepted: {', '.join(PRECISIONS)}"
        )
    if not isinstance(cfg.compile, bool):
        raise ConfigError("--compile", f"must be true or false, got {cfg.compile!r}")
    if cfg.parallel not in PARALLEL_MODES:
        raise ConfigError("--parallel", f"unknown mode {cfg.parallel!r}; accepted: "
                          f"{', '.join(PARALLEL_MODES)}")
    for name, accepted in (("ac", AC_MODES), ("param_dtype", PARAM_DTYPES)):
        if getattr(cfg, name) not in accepted:
            raise ConfigError(flag(name), f"unknown value {getattr(cfg, name)!r}; accepted: "
                              f"{', '.join(accepted)}")
    if cfg.energy not in ENERGY_CHOICES:
        raise ConfigError("--energy", f"unknown energy method {cfg.energy!r}; accepted: "
                          f"{', '.join(ENERGY_CHOICES)}")
    if cfg.data != "synthetic":
        raise ConfigError("--data", f"unknown data {cfg.data!r}; accepted: synthetic")
    spec = _model_spec(cfg.model)
    if cfg.seq > spec.config.max_seq_len:
        raise ConfigError(
            "--seq",
            f"{cfg.seq} is above the maximum of {cfg.model} ({spec.config.max_seq_len})",
        )
    from bench.parallel import layout  # the model's and precision's constraints on TP

    layout.check_model(cfg, spec.config)
    return cfg
