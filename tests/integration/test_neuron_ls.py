"""Trainium on a machine without Trainium, with a stand-in neuron-ls on PATH (an executable of
tests/device_fakes.py, run as a real process): the new flag first, then the old one; the native
backend through a stand-in ``torch.neuron`` with that neuron-ls and a fake driver sysfs (a whole
run); the memory check before a run from neuron-ls (as ``trnbench plan`` computes it), also
before ``--precompile``. The rest of the Neuron path: tests/unit/test_neuron.py.

The neuron-ls fixtures (tests/device_fakes.py) are the JSON example of the Neuron LS User Guide,
Neuron 2.29, nothing added.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bench.backends import hardware, selection
from bench.backends import neuron_topology as nt
from bench.backends.base import Probe
from bench.backends.hardware import MemoryUnknown
from bench.backends.neuron import NeuronBackend
from bench.backends.selection import Selection
from bench.inputs import config
from bench.parallel import memory_plan
from bench.train import command as run_command
from bench.train import runner
from tests.conftest import read_jsonl
from tests.device_fakes import TRN2_LNC2, FakeDeviceModule, fake_neuron_ls, neuron_on_cpu, trn2_lnc1

# --- a fake neuron-ls on PATH ----------------------------------------------------------------

@pytest.mark.parametrize(("release", "calls"), [
    ("new", ["--output-format json"]),
    ("old", ["--output-format json", "--json-output"]),
])
def test_neuron_ls_new_flag_first_then_the_old_one(tmp_path, monkeypatch, release, calls):
    bin_dir = fake_neuron_ls(tmp_path / "bin", TRN2_LNC2, release)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("NEURON_LOGICAL_NC_CONFIG", raising=False)
    topo = nt.detect("an unpublished device name")
    assert (topo.generation, topo.lnc, topo.logical_cores_per_chip) == ("trn2", 2, 4)
    assert topo.source == "neuron-ls " + calls[-1]
    assert (bin_dir / "calls.log").read_text().splitlines() == calls


# --- the native backend through a stand-in torch.neuron -------------------------------------

def _sysfs(root: Path, devices: int, util_bips: int) -> Path:
    """The driver's per-device power node with a live ``utilization_raw`` (bench.energy.neuron
    documents the format)."""
    for i in range(devices):
        node = root / f"neuron{i}" / "stats" / "power"
        node.mkdir(parents=True)
        (node / "utilization").write_text("POWER_STATUS_VALID,1781370720,1.00,2.00,1.50\n")
        (node / "utilization_raw").write_text(f"die,util_bips,counter\n0,{util_bips},1\n")
    return root


@pytest.mark.parametrize(("device_name", "lnc", "devices", "per_chip"), [
    ("an unpublished device name", "2", TRN2_LNC2, 4),
    ("an unpublished device name", "1", trn2_lnc1(), 8),
    ("NC_v3d", "2", TRN2_LNC2, 4),
])
def test_native_run_through_stand_in_torch_neuron_neuron_ls_and_sysfs(
        device_name, lnc, devices, per_chip, tmp_path, monkeypatch, cache_dir):
    """describe, peak_flops, the chip count at LNC 1 and 2 and the energy meter, together in
    one stored record. Whatever the runtime's device name, neuron-ls settles the topology."""
    bin_dir = fake_neuron_ls(tmp_path / "bin", devices, "new")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("NEURON_LOGICAL_NC_CONFIG", lnc)
    monkeypatch.setenv("TRNBENCH_NEURON_SYSFS", str(_sysfs(tmp_path / "sysfs", 2, 5000)))
    fake = FakeDeviceModule("torch.neuron (stand-in)", device_name, count=64 // int(lnc) * 2)
    backend = neuron_on_cpu(fake)
    results = tmp_path / "r.jsonl"
    cfg = config.resolve("neuron", {"model": "tiny", "steps": 3, "warmup": 1,
                                    "precision": "fp32"})
    record = runner.execute(cfg, Selection(backend, "stand-in"), results).to_json()
    assert record["status"] == "ok", record.get("error")
    assert read_jsonl(results)[0]["status"] == "ok"
    dev = record["device"]
    assert dev["kind"] == "trn2" and dev["chips"] == pytest.approx(1 / per_chip)
    assert dev["device_count"] == fake.count and dev["versions"]["lnc"] == lnc
    assert dev["versions"]["device_name"] == device_name
    assert record["peak"]["value"] == hardware.DEVICES["trn2"].peak["fp32"].value
    assert record["tokens_per_s_per_chip"] == pytest.approx(record["tokens_per_s"] * per_chip)
    assert record["mfu"] == pytest.approx(record["model"]["flops_per_token"]
                                          * record["tokens_per_s_per_chip"]
                                          / record["peak"]["value"])
    assert record["step_time"]["method"] == "device-events" and len(record["step_times_s"]) == 3
    # energy: both fake devices at 50 % of the table's maximum power over the window
    e = record["energy"]
    assert set(e["device_joules"]) == {"neuron0", "neuron1"}
    assert e["joules"] == pytest.approx(2 * 0.5 * 500 * e["interval_s"], rel=0.05)
    assert any("this process computes on" in w for w in e["warnings"])


# --- the memory check before a run: neuron-ls's memory per NeuronCore ---------------------

def _on_path(monkeypatch, bin_dir: Path) -> None:
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(("devices", "release", "gib", "source"), [
    (TRN2_LNC2, "new", 24, "neuron-ls: 96 GiB per device / 4 NeuronCores at LNC=2"),
    (trn2_lnc1(), "old", 12, "neuron-ls: 96 GiB per device / 8 NeuronCores at LNC=1"),
])
def test_memory_per_rank_is_a_devices_memory_over_the_neuroncores_it_shows(
        devices, release, gib, source, tmp_path, monkeypatch):
    _on_path(monkeypatch, fake_neuron_ls(tmp_path / "bin", devices, release))
    for backend in (NeuronBackend, selection.BACKENDS["neuron-xla"]):
        memory = backend.rank_memory(per_node=8)
        assert (memory.value, memory.source) == (gib * 2**30, source)


def test_memory_per_rank_passes_over_devices_that_give_no_integers(tmp_path, monkeypatch):
    """A ``memory_size`` such as "96 GB" is not the documented bytes: that device is passed
    over, and with no device left the run is not checked. The LNC may be instance-wide (the
    top-level object of Neuron >= 2.34), as the topology reads it."""
    devices = [{k: v for k, v in d.items() if k != "logical_neuroncore_config"}
               for d in TRN2_LNC2]
    devices[1]["memory_size"] = "96 GB"
    devices.append({**devices[0], "memory_size": 32 * 2**30, "nc_count": None})
    _on_path(monkeypatch, fake_neuron_ls(tmp_path / "bin", devices, "new",
                                         top={"logical_neuroncore_config": 2}))
    memory = NeuronBackend.rank_memory(per_node=8)
    assert (memory.value, memory.source) == (
        24 * 2**30, "neuron-ls: 96 GiB per device / 4 NeuronCores at LNC=2")
    assert nt.detect(None).lnc == 2
    for d in devices:
        d["nc_count"] = "4 cores"
    _on_path(monkeypatch, fake_neuron_ls(tmp_path / "bin2", devices, "new"))
    with pytest.raises(MemoryUnknown, match="^neuron-ls gives no device with integer "
                                            "memory_size and nc_count$"):
        NeuronBackend.rank_memory(per_node=8)
    assert nt.detect(None).logical_cores_per_chip is None


def test_neuron_ls_off_path_is_found_where_the_tools_package_installs_it(tmp_path, monkeypatch):
    """A shell that never put /opt/aws/neuron/bin on PATH still gets the memory check."""
    bin_dir = fake_neuron_ls(tmp_path / "opt-aws-neuron-bin", TRN2_LNC2, "new")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(nt, "NEURON_BIN", str(bin_dir))
    assert nt.neuron_ls() == str(bin_dir / "neuron-ls")
    assert NeuronBackend.rank_memory(per_node=64).value == 24 * 2**30


@pytest.fixture
def neuron_here(monkeypatch) -> None:
    """The neuron backend available (its probe a stand-in), no memory override."""
    monkeypatch.delenv("TRNBENCH_RANK_MEMORY_GIB", raising=False)
    monkeypatch.setattr(NeuronBackend, "probe",
                        classmethod(lambda cls: Probe("neuron", True, "stand-in: no Trainium")))


def test_a_run_on_trn2_is_checked_as_trnbench_plan_checks_it(tmp_path, monkeypatch, cli_main,
                                                             neuron_here, launches):
    """llama3-8b on 8 NeuronCores of a trn2 at LNC=2 (neuron-ls: 24 GiB per rank): refused
    at --seq 4096 with the change `trnbench plan --hardware trn2` names, and accepted with that
    change, whose prediction is the plan's, before any process starts."""
    _on_path(monkeypatch, fake_neuron_ls(tmp_path / "bin", TRN2_LNC2, "new"))
    flags = ["--model", "llama3-8b", "--nproc", "8", "--seq", "4096"]
    plan = cli_main("plan", *flags, "--hardware", "trn2")
    refused = plan.stdout.splitlines()[-1].removeprefix("refused: ")
    run = cli_main("run", "--backend", "neuron", "--precision", "bf16", *flags)
    assert (plan.returncode, run.returncode, launches) == (1, 2, [])
    neuron_ls = "neuron-ls: 96 GiB per device / 4 NeuronCores at LNC=2"
    assert run.stderr == (
        f"trnbench: error: plan: needs 170.7 GiB per rank of 21.6 GiB usable (90% of 24.0 GiB "
        f"per rank, {neuron_ls}): try --tp 8 --ac selective or --tp 8 --ac full\n")
    datasheet = "trn2 datasheet: 96 GiB per chip / 4 NeuronCores"
    assert run.stderr == f"trnbench: error: plan: {refused.replace(datasheet, neuron_ls)}\n"
    change = json.loads(cli_main("plan", *flags, "--hardware", "trn2", "--json").stdout)[
        "smallest_fitting_change"]
    assert cli_main("run", "--backend", "neuron", "--precision", "bf16", *flags,
                    *change["flags"].split()).returncode == 0
    cfg, = launches
    pred = memory_plan.check_run(cfg, NeuronBackend, 8, 1)
    assert (pred.total, pred.usable, pred.fits) == (
        change["total_bytes"], change["usable_bytes"], True)
    assert pred.usable == memory_plan.USABLE * 24 * 2**30  # the same share as on the CPU


@pytest.mark.parametrize(("neuron_ls", "why"), [
    (None, "neuron-ls is neither on PATH nor in /opt/aws/neuron/bin"),
    ("#!/bin/sh\necho 'neuron-ls: no Neuron driver' >&2\nexit 1\n",
     "neuron-ls failed or timed out"),
], ids=["absent", "failing"])
def test_without_neuron_ls_the_run_is_not_checked(neuron_ls, why, tmp_path, monkeypatch,
                                                  cli_main, neuron_here, launches):
    monkeypatch.setenv("PATH", str(tmp_path))  # no neuron-ls, or one that fails
    if neuron_ls:
        (tmp_path / "neuron-ls").write_text(neuron_ls)
        (tmp_path / "neuron-ls").chmod(0o755)
    run = cli_main("run", "--backend", "neuron", "--model", "llama3-70b", "--nproc", "8")
    assert run.returncode == 0 and len(launches) == 1, run.stderr
    assert f"memory not checked: {why}" in run.stderr.splitlines()
    assert memory_plan.check_run(launches[0], NeuronBackend, 8, 1) is None


# --- --precompile ------------------------------------------------------------------------------

def test_precompile_of_a_run_that_cannot_fit_is_refused_before_the_compiler_starts(
        tmp_path, monkeypatch, cli_main):
    """The memory check comes before ``--precompile`` hands the command to
    neuron_parallel_compile: exit 2 here, not a failure inside the compiler's trial run."""
    xla = selection.BACKENDS["neuron-xla"]
    monkeypatch.delenv("TRNBENCH_RANK_MEMORY_GIB", raising=False)
    monkeypatch.setattr(xla, "probe", classmethod(
        lambda cls: Probe("neuron-xla", True, "stand-in: no Trainium")))
    _on_path(monkeypatch, fake_neuron_ls(tmp_path / "bin", TRN2_LNC2, "new"))
    execs, which = [], shutil.which
    monkeypatch.setattr(run_command.shutil, "which", lambda name: "/opt/bin/neuron_parallel_compile"
                        if name == "neuron_parallel_compile" else which(name))
    monkeypatch.setattr(run_command.os, "execv", lambda exe, args: execs.append(args))
    run = cli_main("run", "--backend", "neuron-xla", "--precision", "bf16", "--model",
                   "llama3-8b", "--nproc", "8", "--seq", "4096", "--precompile")
    assert (run.returncode, execs) == (2, []), run.stderr
    assert run.stderr.startswith("trnbench: error: plan: needs ")
