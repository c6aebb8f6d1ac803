"""Trainium on a machine without Trainium, in this process: topology from the documented device
kinds and neuron-ls output, ``--precompile``, and the Neuron backends reporting themselves
unavailable here with the reason. What runs a stand-in neuron-ls (a real process on PATH): the
native backend through a stand-in ``torch.neuron`` and a fake driver sysfs (a whole run), and
the memory check before a run from neuron-ls, in tests/integration/test_neuron_ls.py.

The neuron-ls fixtures (tests/device_fakes.py) are the JSON example of the Neuron LS User Guide,
Neuron 2.29, nothing added.
"""

from __future__ import annotations

import sys

import pytest

from bench.backends import neuron_topology as nt
from bench.backends import selection
from bench.backends.neuron import is_native
from bench.inputs import config
from bench.train import command as run_command
from tests.device_fakes import TRN2_LNC2, trn2_lnc1

# --- topology --------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "gen", "lnc", "per_chip"), [
    ("NC_v2", "trn1", 1, 2), ("NC_v3", "trn2", 1, 8), ("NC_v3d", "trn2", 2, 4),
])
def test_device_kinds(kind, gen, lnc, per_chip):
    topo = nt.from_device_kind(kind)
    assert (topo.generation, topo.lnc, topo.logical_cores_per_chip) == (gen, lnc, per_chip)
    assert topo.chips(per_chip) == 1.0
    assert topo.chips(64) == 64 / per_chip  # a trn2.48xlarge at LNC=2: 64 ranks, 16 chips


def test_unknown_kind_is_none():
    assert nt.from_device_kind("NC_v9") is None


@pytest.mark.parametrize(("devices", "lnc", "per_chip"), [(TRN2_LNC2, 2, 4), (trn2_lnc1(), 1, 8)])
def test_documented_neuron_ls_json_gives_generation_lnc_and_cores_per_chip(devices, lnc,
                                                                           per_chip):
    topo = nt.from_neuron_ls(devices, environ={})
    assert (topo.generation, topo.lnc, topo.logical_cores_per_chip) == ("trn2", lnc, per_chip)
    assert topo.chips(1) == 1 / per_chip


def test_neuron_ls_object_format_finds_the_device_entries_by_their_fields():
    """Neuron 2.34's object: instance-wide fields at the top, per-device entries inside. No
    example is published, so the key holding the entries is deliberately arbitrary here."""
    payload = {"unpublished_key": TRN2_LNC2, "another": {"x": 1}}
    topo = nt.from_neuron_ls(payload, environ={})
    assert (topo.generation, topo.lnc, topo.logical_cores_per_chip) == ("trn2", 2, 4)


def test_neuron_ls_without_devices_is_none():
    assert nt.from_neuron_ls({"something": 1}) is None
    assert nt.from_neuron_ls([]) is None
    assert nt.from_neuron_ls([{"neuron_device": 0}]) is None  # no nc_count


def test_neuron_ls_of_unknown_memory_and_8_cores_has_no_generation():
    """trn2 and trn3 both have 8 physical cores: without a known memory size, no guess."""
    devices = [{**TRN2_LNC2[0], "memory_size": 1}]
    topo = nt.from_neuron_ls(devices, environ={})
    assert topo.generation is None and topo.logical_cores_per_chip == 4


def test_lnc_from_compiler_flag():
    assert nt.lnc_from_env({"NEURON_CC_FLAGS": "--model-type transformer --lnc=1"}) == 1
    assert nt.lnc_from_env({"NEURON_CC_FLAGS": "-O1 -lnc 2"}) == 2
    assert nt.lnc_from_env({}) is None


def test_device_name_naming_the_generation():
    assert nt.from_device_name("Trainium2", environ={}).logical_cores_per_chip == 4
    topo = nt.from_device_name("trn2", environ={"NEURON_LOGICAL_NC_CONFIG": "1"})
    assert (topo.generation, topo.lnc, topo.logical_cores_per_chip) == ("trn2", 1, 8)
    assert nt.from_device_name("neuron") is None


def test_undetectable_topology_has_no_chips():
    topo = nt.NeuronTopology(None, None, None, None, "unknown")
    assert topo.chips(1) is None


def test_no_neuron_ls_and_no_known_name_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    topo = nt.detect("neuron")
    assert topo.generation is None and topo.chips(1) is None


# --- --precompile ------------------------------------------------------------------------------

def test_precompile_wraps_the_whole_command_nproc_included(monkeypatch, tmp_path):
    """As documented (``neuron_parallel_compile torchrun --nproc_per_node=N <script>``), the
    trial run is the command itself, with its torchrun launch: same world size, same graphs."""
    execs = []
    monkeypatch.setattr(run_command.shutil, "which", lambda name: f"/opt/bin/{name}")
    monkeypatch.setattr(run_command.os, "execv", lambda exe, args: execs.append(args))
    cfg = config.resolve("neuron-xla", {"model": "tiny"})
    argv = ["--backend", "neuron-xla", "--nproc", "32", "--precompile", "--model", "tiny"]
    run_command.precompile(cfg, argv)
    assert execs == [["/opt/bin/neuron_parallel_compile", sys.executable, "-m", "bench", "run",
                      "--backend", "neuron-xla", "--nproc", "32", "--model", "tiny"]]


# --- here, without Trainium ------------------------------------------------------------------

def test_native_version_split():
    assert is_native("2.13.3.0") and is_native("2.14.3.0")
    assert not is_native("2.9.0.2.11.19965")


def test_neuron_backends_unavailable_here_with_reasons():
    probes = {p.name: p for p in selection.probe_all()}
    for name in ("neuron", "neuron-xla"):
        assert not probes[name].available and probes[name].reason
    # `trnbench env` (and a record's backend.reason) names the XLA line as the legacy one
    assert probes["neuron-xla"].reason.startswith("legacy XLA line (torch-neuronx 2.9 on ")
    assert selection.AUTO_ORDER == ("neuron", "neuron-xla", "cuda", "cpu")
    with pytest.raises(selection.BackendUnavailable, match="neuron is not available here"):
        selection.select("neuron")
