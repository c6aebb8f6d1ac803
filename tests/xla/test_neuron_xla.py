"""The neuron-xla backend class itself on XLA:CPU: its describe, peak, chip count and memory.

Stand-ins only where Trainium is missing: ``torch_neuronx`` (imported by the backend only to
register the Neuron PJRT plugin) is an empty module, ``neuron-ls`` is the fake of
tests/device_fakes.py, and ``xm.get_memory_info`` (XLA:CPU raises UNIMPLEMENTED for it) returns
what torch-xla documents: in torch-xla 2.9, ``bytes_used``, ``bytes_limit`` and
``peak_bytes_used`` in bytes (docstring of ``torch_xla.core.xla_model.get_memory_info``:
``{'bytes_used': 290816, 'bytes_limit': 34088157184, 'peak_bytes_used': 500816}``); before
torch-xla 2.1, ``kb_free`` and ``kb_total`` in KiB (as torch-xla's own FSDP still reads them).
"""

from __future__ import annotations

import os
import sys
import types

import pytest

os.environ.setdefault("PJRT_DEVICE", "CPU")

import torch_xla.core.xla_model as xm  # noqa: E402

from bench.backends import hardware
from bench.backends.xla import NeuronXlaBackend  # noqa: E402
from bench.inputs import config  # noqa: E402
from bench.train import runner
from tests.device_fakes import TRN2_LNC2, fake_neuron_ls  # noqa: E402

DOCUMENTED = {"bytes_used": 290816, "bytes_limit": 34088157184, "peak_bytes_used": 500816}


@pytest.fixture
def neuron_xla_on_cpu(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch_neuronx", types.ModuleType("torch_neuronx"))
    monkeypatch.setenv("PJRT_DEVICE", "CPU")
    monkeypatch.setenv("NEURON_CC_FLAGS", "--model-type transformer")
    monkeypatch.delenv("NEURON_LOGICAL_NC_CONFIG", raising=False)
    bin_dir = fake_neuron_ls(tmp_path / "bin", TRN2_LNC2, "old")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return NeuronXlaBackend()


@pytest.mark.parametrize(("info", "peak", "kind"), [
    (DOCUMENTED, 500816, "peak"),
    ({"bytes_used": 290816, "bytes_limit": 34088157184}, 290816, "in use"),
    ({"kb_free": 1000, "kb_total": 4000}, 3000 * 1024, "in use"),
])
def test_memory_from_xla_memory_info(neuron_xla_on_cpu, monkeypatch, info, peak, kind):
    monkeypatch.setattr(xm, "get_memory_info", lambda device=None: dict(info))
    memory = neuron_xla_on_cpu.peak_memory()
    assert memory.peak_bytes == peak
    assert ("not the peak" in memory.method) == (kind == "in use")


def test_memory_unreported_on_xla_cpu_is_null_with_the_reason(neuron_xla_on_cpu):
    memory = neuron_xla_on_cpu.peak_memory()  # the real XLA:CPU call
    assert memory.peak_bytes is None and "GetAllocatorStats" in memory.method


def test_neuron_xla_run_on_xla_cpu(neuron_xla_on_cpu, monkeypatch, cache_dir):
    """A whole run of the neuron-xla class: topology from neuron-ls (the runtime names no
    device kind here), trn2 peak, a quarter chip per rank, the documented memory peak, and
    window-average step times that add up to the window."""
    monkeypatch.setattr(xm, "get_memory_info", lambda device=None: dict(DOCUMENTED))
    cfg = config.resolve("neuron-xla", {"model": "tiny", "steps": 4, "warmup": 2,
                                        "precision": "fp32", "energy": "none"})
    record = runner.measure(cfg, neuron_xla_on_cpu).to_json()
    dev = record["device"]
    assert dev["kind"] == "trn2" and dev["chips"] == 0.25 and dev["device_count"] == 1
    assert dev["versions"]["topology_source"] == "neuron-ls --json-output"
    assert dev["versions"]["lnc"] == "2"
    assert dev["versions"]["sdk_line"].startswith("legacy XLA line")
    assert record["peak"]["value"] == hardware.DEVICES["trn2"].peak["fp32"].value
    assert record["memory"]["peak_bytes"] == 500816
    st = record["step_time"]
    assert st["method"] == "window-average" and st["p90_s"] is None and st["cv"] is None
    assert sum(record["step_times_s"]) == pytest.approx(record["window_s"], rel=0.02)
    assert record["compilation"]["timed_graphs"] == 0
