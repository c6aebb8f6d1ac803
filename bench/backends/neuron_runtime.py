"""What TorchNeuron says about its NEFF cache, its CPU fallbacks and its runtime settings,
read by the documented means where there are some, else marked not counted with the reason.

Sources and how far each is verified: docs/backends.md, "Compilation and CPU fallback on
TorchNeuron". In short:

- the persistent NEFF cache is the directory ``TORCH_NEURONX_NEFF_CACHE_DIR`` (documented:
  Neuron compiler artifacts page). Its default is not published, so an unset variable means
  not counted. Compiled graphs are counted as ``*.neff`` files added under it (recursively:
  the layout inside is not published); a directory with no NEFF after a step has compiled or
  loaded something is not where the cache is, and is not counted either;
- cache hits and misses: ``torch_neuronx._C._get_compilation_cache_stats()`` (private, seen in
  torch-neuronx's own tests; keys ``persistent_hits``, ``persistent_misses``), read only with
  ``TORCH_NEURONX_METRICS_ENABLED=1`` (the counters are off otherwise) and only where they
  agree with the NEFF files;
- CPU fallbacks: ``torch_neuronx.clear_op_tracking()`` and ``torch_neuronx.get_fallback_ops()``
  (torch-neuronx's module functions, one name per operator call that ran on the CPU; used by
  its test utilities; the published page on finding fallbacks could not be read);
- stochastic rounding: ``NEURON_RT_STOCHASTIC_ROUNDING_EN`` (Neuron Runtime developer guide:
  default off); LNC: ``NEURON_LOGICAL_NC_CONFIG`` (logical NeuronCore configuration page:
  default 2 on Trn2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.backends.base import CacheState, Fallbacks

CACHE_ENV = "TORCH_NEURONX_NEFF_CACHE_DIR"
METRICS_ENV = "TORCH_NEURONX_METRICS_ENABLED"
ROUNDING_ENV = "NEURON_RT_STOCHASTIC_ROUNDING_EN"
LNC_ENV = "NEURON_LOGICAL_NC_CONFIG"
NEFF_GLOB = "*.neff"
FALLBACK_METHOD = ("torch_neuronx.get_fallback_ops(): operator calls run on the CPU since "
                   "torch_neuronx.clear_op_tracking() at the start of the warm-up")


def _torch_neuronx() -> Any | None:
    try:
        import torch_neuronx
    except ImportError:
        return None
    return torch_neuronx


def cache_dir(environ: dict[str, str] | None = None) -> str | None:
    return (os.environ if environ is None else environ).get(CACHE_ENV) or None


def _stats(module: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The persistent cache's hit and miss counters, or None and why."""
    if os.environ.get(METRICS_ENV) != "1":
        return None, f"{METRICS_ENV} is not 1 (the cache counters are off)"
    read = getattr(getattr(module, "_C", None), "_get_compilation_cache_stats", None)
    if read is None:
        return None, "this torch-neuronx has no _C._get_compilation_cache_stats()"
    try:
        stats = dict(read())
    except Exception as e:  # noqa: BLE001 - a private API: any failure means not counted
        return None, f"_C._get_compilation_cache_stats() failed: {e}"
    keys = ("persistent_hits", "persistent_misses")
    if not all(isinstance(stats.get(k), int) for k in keys):
        return None, f"_C._get_compilation_cache_stats() has no integer {' and '.join(keys)}"
    return {k: stats[k] for k in keys}, None


def cache_state() -> CacheState:
    """The NEFF cache now: its ``*.neff`` files and the persistent hit/miss counters."""
    directory = cache_dir()
    method = f"{NEFF_GLOB} files under ${CACHE_ENV}"
    module = _torch_neuronx()
    stats, why = _stats(module) if module is not None else (None, "torch_neuronx is absent")
    hits, misses = (stats["persistent_hits"], stats["persistent_misses"]) if stats else (None,
                                                                                         None)
    if directory is None:
        return CacheState(None, None, hits, misses, method, f"{CACHE_ENV} is unset "
                          "(TorchNeuron's default cache location is not published): not "
                          "counted", why)
    root = Path(directory)
    entries = sum(1 for _ in root.rglob(NEFF_GLOB)) if root.is_dir() else 0
    return CacheState(directory, entries, hits, misses, method, None, why)


def clear_fallbacks() -> None:
    """Start counting CPU fallbacks afresh (where torch-neuronx tracks them)."""
    clear = getattr(_torch_neuronx(), "clear_op_tracking", None)
    if clear is not None:
        clear()


def fallbacks() -> Fallbacks:
    """Operator calls that ran on the CPU since ``clear_fallbacks``; read after a
    ``torch.neuron.synchronize()`` (execution is asynchronous)."""
    module = _torch_neuronx()
    read = getattr(module, "get_fallback_ops", None)
    if read is None or not hasattr(module, "clear_op_tracking"):
        return Fallbacks(None, FALLBACK_METHOD, "this torch-neuronx has no get_fallback_ops() "
                                                "and clear_op_tracking(): not counted")
    return Fallbacks([str(op) for op in read()], FALLBACK_METHOD, None)


def settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The runtime settings a record keeps: stochastic rounding and the LNC as set."""
    env = os.environ if environ is None else environ
    rounding = env.get(ROUNDING_ENV)
    lnc = env.get(LNC_ENV)
    return {
        "stochastic_rounding": f"{ROUNDING_ENV}={rounding}" if rounding is not None else
        f"{ROUNDING_ENV} unset (the runtime's default is off; whether the framework turns it "
        "on is not published for TorchNeuron)",
        "lnc_setting": f"{LNC_ENV}={lnc}" if lnc is not None else
        f"{LNC_ENV} unset (default 2 on Trn2)",
    }
