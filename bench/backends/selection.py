"""Backend registry and `auto` selection (order: best first)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.backends.base import Backend, Probe
from bench.backends.cpu import CpuBackend
from bench.backends.cuda import CudaBackend
from bench.backends.neuron import NeuronBackend
from bench.backends.xla import NeuronXlaBackend, XlaBackend
from bench.inputs.config import ConfigError, RunConfig, resolve

BACKENDS: dict[str, type[Backend]] = {
    b.name: b for b in (NeuronBackend, NeuronXlaBackend, CudaBackend, CpuBackend, XlaBackend)
}
# best first; `xla` (XLA:CPU, the CI lane of neuron-xla) is only used when named
AUTO_ORDER = ("neuron", "neuron-xla", "cuda", "cpu")


class BackendUnavailable(RuntimeError):
    """A backend asked for by name cannot run here."""


@dataclass(frozen=True)
class Selection:
    backend: type[Backend]
    reason: str


def probe_all() -> list[Probe]:
    return [BACKENDS[name].probe() for name in BACKENDS]


def select(name: str) -> Selection:
    """The backend class for ``name`` ('auto' picks the first available, with the reason)."""
    if name == "auto":
        skipped = []
        for probe in (BACKENDS[n].probe() for n in AUTO_ORDER):
            if probe.available:
                why = f"auto chose {probe.name}: {probe.reason}"
                if skipped:
                    why += "; skipped " + "; ".join(skipped)
                return Selection(BACKENDS[probe.name], why)
            skipped.append(f"{probe.name} ({probe.reason})")
        raise BackendUnavailable("no backend is available")  # cpu always is
    if name not in BACKENDS:
        raise KeyError(name)
    probe = BACKENDS[name].probe()
    if not probe.available:
        raise BackendUnavailable(f"{name} is not available here: {probe.reason}")
    return Selection(BACKENDS[name], f"{name} as asked: {probe.reason}")


def names() -> list[str]:
    return ["auto", *BACKENDS]


def resolve_run(backend: str, *layers: dict) -> tuple[RunConfig, Selection]:
    """The backend named by user input and the validated run configuration of ``layers`` on
    it (``config.resolve``); ConfigError naming the field and what is accepted or available."""
    if backend not in names():
        raise ConfigError("--backend", f"unknown backend {backend!r}; accepted: "
                          f"{', '.join(names())}")
    try:
        selection = select(backend)
    except BackendUnavailable as e:
        available = [p.name for p in probe_all() if p.available]
        raise ConfigError("--backend", f"{e}; available: auto, {', '.join(available)}") from None
    cfg = resolve(selection.backend.name, *layers)
    if cfg.compile and not selection.backend.supports_compile:
        raise ConfigError("--compile", f"does not apply to {cfg.backend} (XLA compiles the "
                          "lazy-tensor graphs itself); accepted on: cpu, cuda, neuron")
    return cfg, selection
