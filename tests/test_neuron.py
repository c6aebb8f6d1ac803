"""Trainium description and backend selection on a machine without Trainium.

The topology parser is tested on the documented device kinds and on neuron-ls JSON
payloads (real shapes: a device list, and an object with instance-wide fields); the
Neuron backends must report themselves unavailable here, with the reason.
"""

from __future__ import annotations

import pytest

from bench import backends
from bench.backends import neuron_topology as nt
from bench.backends.neuron import is_native


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


def test_neuron_ls_trn2_object_with_instance_fields():
    payload = {"instance_type": "trn2.48xlarge", "logical_neuroncore_config": 2,
               "neuron_devices": [{"neuron_device": i, "nc_count": 8, "memory_size": 96 << 30}
                                  for i in range(16)]}
    topo = nt.from_neuron_ls(payload, environ={})
    assert (topo.generation, topo.lnc, topo.logical_cores_per_chip) == ("trn2", 2, 4)


def test_neuron_ls_trn1_device_list():
    payload = [{"neuron_device": i, "nc_count": 2, "memory_size": 32 << 30} for i in range(16)]
    topo = nt.from_neuron_ls(payload, environ={})
    assert (topo.generation, topo.logical_cores_per_chip) == ("trn1", 2)


def test_neuron_ls_lnc_from_environment():
    payload = [{"neuron_device": 0, "nc_count": 8}]
    topo = nt.from_neuron_ls(payload, environ={"NEURON_LOGICAL_NC_CONFIG": "1"})
    assert (topo.generation, topo.lnc, topo.logical_cores_per_chip) == ("trn2", 1, 8)


def test_neuron_ls_garbage_is_none():
    assert nt.from_neuron_ls({"something": 1}) is None
    assert nt.from_neuron_ls([]) is None


def test_lnc_from_compiler_flag():
    assert nt.lnc_from_env({"NEURON_CC_FLAGS": "--model-type transformer --lnc=1"}) == 1
    assert nt.lnc_from_env({"NEURON_CC_FLAGS": "-O1 -lnc 2"}) == 2
    assert nt.lnc_from_env({}) is None


def test_undetectable_topology_has_no_chips():
    topo = nt.NeuronTopology(None, None, None, None, "unknown")
    assert topo.chips(1) is None


def test_native_version_split():
    assert is_native("2.13.3.0") and is_native("2.14.3.0")
    assert not is_native("2.9.0.2.11.19965")


def test_neuron_backends_unavailable_here_with_reasons():
    probes = {p.name: p for p in backends.probe_all()}
    for name in ("neuron", "neuron-xla"):
        assert not probes[name].available and probes[name].reason
    assert backends.AUTO_ORDER == ("neuron", "neuron-xla", "cuda", "cpu")
    with pytest.raises(backends.BackendUnavailable, match="neuron is not available here"):
        backends.select("neuron")
