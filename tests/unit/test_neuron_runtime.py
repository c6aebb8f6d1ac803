"""Compile- and fallback-aware records on TorchNeuron, in this process: whole runs of the neuron
backend through a stand-in ``torch.neuron`` (device events, allocator) and a stand-in
``torch_neuronx`` whose eager mode compiles each operator into a NEFF of a real cache directory
(tests/device_fakes.py): a cold start, then a warm one from the same cache; CPU fallbacks
counted and flagged; every count that cannot be made says why instead of guessing; stochastic
rounding and LNC in the record. The topology comes from the documented device kind ``NC_v3d``
(no neuron-ls process); a run with neuron-ls on PATH: tests/integration/test_neuron_ls.py."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from bench.backends import neuron_runtime
from bench.backends.base import CacheState
from bench.backends.selection import Selection
from bench.inputs import config
from bench.records import record as rec
from bench.records import store
from bench.train import runner
from tests.device_fakes import FakeDeviceModule, FakeTorchNeuronx, neuron_on_cpu

FALLBACK = "aten::nll_loss_forward"  # one call per step: F.cross_entropy's loss


def _run(monkeypatch, tmp_path: Path, fake: FakeTorchNeuronx, steps: int = 3,
         warmup: int = 2, module: types.ModuleType | None = None) -> dict:
    """One run on the neuron backend with ``fake`` as torch_neuronx (a fresh one is a fresh
    process: its in-memory cache is empty; ``module``: another torch_neuronx in its place,
    ``fake`` still compiling), stored and read back."""
    monkeypatch.setitem(sys.modules, "torch_neuronx", module or fake)
    backend = neuron_on_cpu(FakeDeviceModule("torch.neuron (stand-in)", "NC_v3d", count=64))
    cfg = config.resolve("neuron", {"model": "tiny", "seq": 16, "batch": 2, "steps": steps,
                                    "warmup": warmup, "precision": "fp32", "energy": "none"})
    results = tmp_path / "r.jsonl"
    with fake.compiling():
        record = runner.execute(cfg, Selection(backend, "stand-in"), results)
    assert record.status == "ok", record.error
    return list(store.read(results))[-1].to_json()


@pytest.fixture
def neff_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "neff-cache"
    monkeypatch.setenv("TORCH_NEURONX_NEFF_CACHE_DIR", str(cache))
    monkeypatch.setenv("TORCH_NEURONX_METRICS_ENABLED", "1")
    return cache


def test_a_cold_start_then_a_warm_one_with_cpu_fallbacks(neff_cache, tmp_path, monkeypatch):
    """The cold run compiles in its first step (and, before the warm-up, the graphs of the
    model's set-up), nothing in the window, and ran nothing on the CPU: zero counted, not
    flagged. The warm run finds every graph in the cache; its loss ran on the CPU: counted,
    named and flagged. Both keep the rounding and LNC settings."""
    monkeypatch.setenv("NEURON_RT_STOCHASTIC_ROUNDING_EN", "1")
    monkeypatch.delenv("NEURON_LOGICAL_NC_CONFIG", raising=False)
    record = _run(monkeypatch, tmp_path, FakeTorchNeuronx())
    cold = record["compile_cache"]
    assert cold["dir"] == str(neff_cache) and cold["entries_before"] > 0  # set-up's graphs
    assert cold["first_step"] == "cold" and cold["first_step_graphs"] > 0
    assert cold["warmup_graphs"] >= cold["first_step_graphs"] and cold["timed_graphs"] == 0
    assert (cold["hits"], cold["misses"]) == (0, cold["warmup_graphs"])
    assert record["cpu_fallbacks"]["warmup"] == 0 and record["cpu_fallbacks"]["timed"] == 0
    assert record["flags"] == []

    neffs = len(list(neff_cache.rglob("*.neff")))
    record = _run(monkeypatch, tmp_path, FakeTorchNeuronx(cpu_fallback=(FALLBACK,)))
    warm = record["compile_cache"]
    assert warm["entries_before"] == neffs and warm["first_step"] == "warm"
    assert (warm["first_step_graphs"], warm["warmup_graphs"], warm["timed_graphs"]) == (0, 0, 0)
    assert warm["hits"] > 0 and warm["misses"] == 0
    assert record["cpu_fallbacks"] == {"method": neuron_runtime.FALLBACK_METHOD, "warmup": 2,
                                       "timed": 3, "ops": [FALLBACK], "reason": None}
    assert record["flags"] == [f"5 operator call(s) ran on the host CPU, not the device "
                               f"({FALLBACK}; 3 in the timed window): not a device-only figure"]
    versions = record["device"]["versions"]
    assert versions["stochastic_rounding"] == "NEURON_RT_STOCHASTIC_ROUNDING_EN=1"
    assert versions["lnc_setting"] == "NEURON_LOGICAL_NC_CONFIG unset (default 2 on Trn2)"
    assert versions["lnc"] == "2" and versions["neff_cache"] == str(neff_cache)
    assert versions["sdk_line"].startswith("TorchNeuron")


def _state(entries: int | None, hits: int = 0, misses: int = 0) -> CacheState:
    return CacheState("/nvme/neff", entries, hits, misses, "*.neff files")


def test_graphs_added_in_the_window_are_compilations_in_the_window():
    cache = rec.CompileCache.of(_state(10), _state(14, misses=4), _state(15, misses=5),
                                _state(17, misses=7))
    assert (cache.first_step, cache.first_step_graphs, cache.warmup_graphs,
            cache.timed_graphs, cache.misses) == ("cold", 4, 5, 2, 7)


def test_counters_that_disagree_with_the_files_are_not_used():
    """Fewer misses than graphs added (another process wrote to the shared cache, or the
    counters count something else): hits and misses null, with the reason."""
    cache = rec.CompileCache.of(_state(0), _state(3, misses=1), _state(3, misses=1),
                                _state(3, misses=1))
    assert cache.hits is None and cache.misses is None and cache.first_step == "cold"
    assert cache.hits_reason == "the runtime counted 1 miss(es) for 3 graph(s) added: " \
                                "counters not used"


def test_what_cannot_be_counted_says_why(tmp_path, monkeypatch):
    """No cache variable (TorchNeuron's default location is not published), counters off, a
    torch_neuronx without the op tracking: null counts, each with its reason."""
    monkeypatch.delenv("TORCH_NEURONX_NEFF_CACHE_DIR", raising=False)
    monkeypatch.delenv("TORCH_NEURONX_METRICS_ENABLED", raising=False)
    bare = types.ModuleType("torch_neuronx")  # a release without the op tracking
    record = _run(monkeypatch, tmp_path, FakeTorchNeuronx(), module=bare)
    cache = record["compile_cache"]
    assert cache["reason"].startswith("TORCH_NEURONX_NEFF_CACHE_DIR is unset")
    assert cache["first_step"] is None and cache["timed_graphs"] is None
    assert cache["hits_reason"] == "TORCH_NEURONX_METRICS_ENABLED is not 1 (the cache " \
                                   "counters are off)"
    fb = record["cpu_fallbacks"]
    assert fb["warmup"] is None and "no get_fallback_ops()" in fb["reason"]
    assert f"CPU fallbacks not counted: {fb['reason']}" in record["warnings"]


def test_a_cache_directory_that_gets_no_graph_is_not_counted(neff_cache, tmp_path,
                                                            monkeypatch):
    """The variable points somewhere, but no NEFF appears there: the cache is elsewhere (or
    named otherwise), and zero would be a guess."""
    monkeypatch.setattr(neuron_runtime, "NEFF_GLOB", "*.neff-v2")
    cache = _run(monkeypatch, tmp_path, FakeTorchNeuronx())["compile_cache"]
    assert cache["reason"].startswith("no compiled graph (*.neff-v2 files under "
                                      "$TORCH_NEURONX_NEFF_CACHE_DIR) after the first step")
    assert cache["first_step"] is None and cache["first_step_graphs"] is None


def test_fallbacks_over_ranks_are_the_largest_ranks_and_every_operator():
    parts = [rec.CpuFallbacks(method="m", warmup=1, timed=2, ops=["aten::a"]),
             rec.CpuFallbacks(method="m", warmup=3, timed=0, ops=["aten::b"])]
    merged = rec.CpuFallbacks.aggregate(parts)
    assert (merged.warmup, merged.timed, merged.ops) == (3, 2, ["aten::a", "aten::b"])
    uncounted = rec.CpuFallbacks(method="m", reason="no API")
    assert rec.CpuFallbacks.aggregate([uncounted, parts[0]]) == uncounted
