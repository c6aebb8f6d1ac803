"""The embedded default run of every backend (bench/inputs/defaults.toml): each backend has one,
it validates, and on Trainium2 and H100 the memory plan accepts it; `plan` resolves a run as
`run` does, so that their --batch (and every other run flag) mean the same thing."""

from __future__ import annotations

import json

import pytest

from bench.backends import selection
from bench.inputs import config
from bench.parallel import memory_plan
from bench.projection.search import GIB

BACKENDS = list(selection.BACKENDS)  # every backend class; auto selects one of these


def test_the_backend_flag_names_every_backend():
    assert ("auto", *BACKENDS) == config.BACKEND_NAMES


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_has_its_own_default_run(backend):
    table = config.backend_defaults(backend)
    assert {"model", "steps", "warmup", "precision"} <= set(table)
    cfg = config.resolve(backend, {})
    assert cfg.backend == backend and cfg.model == table["model"]


def test_a_backend_without_an_entry_fails_instead_of_taking_another_default():
    with pytest.raises(KeyError, match=r"defaults.toml has no \[tpu\] entry"):
        config.resolve("tpu", {})


def test_accelerator_defaults_are_bf16():
    for backend in ("neuron", "neuron-xla", "cuda"):
        assert config.resolve(backend, {}).precision == "bf16"


@pytest.mark.parametrize(("hardware", "backend", "model"), [
    ("trn2", "neuron", "350m"), ("trn2", "neuron-xla", "350m"), ("h100", "cuda", "1b"),
])
@pytest.mark.parametrize("nproc", [[], ["--nproc", "1"]], ids=["node", "one-rank"])
def test_plan_of_a_backends_default_fits_its_hardware(hardware, backend, model, nproc,
                                                     cli_main):
    """`trnbench plan --hardware H --backend B` plans B's default run, as `trnbench run
    --backend B` would run it, on every rank of a node or on one."""
    proc = cli_main("plan", "--hardware", hardware, "--backend", backend, *nproc, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.loads(proc.stdout)
    cfg = config.resolve(backend, {})
    assert (plan["model"], plan["backend"], plan["batch"], plan["seq"], plan["precision"]) == (
        model, backend, cfg.batch, cfg.seq, cfg.precision)
    assert plan["requested"]["fits"]


def test_the_neuron_default_fits_one_neuroncore_at_lnc2_with_a_margin():
    """350m, bf16, 4 x 2048 on 24 GiB (a Trainium2's 96 GiB over 4 logical cores): 18.3 GiB of
    the 21.6 the plan allows; 1b does not fit one core at any batch."""
    memory, _ = memory_plan.hardware_memory_per_rank("trn2")
    cfg = config.resolve("neuron", {})
    layout = memory_plan.for_world(cfg, 1, 1)
    pred = memory_plan.predict(cfg, layout, memory.value)
    assert pred.fits and pred.total / GIB == pytest.approx(18.35, abs=0.01)
    one_b = config.resolve("neuron", {"model": "1b", "batch": 1})
    assert not memory_plan.predict(one_b, layout, memory.value).fits


def test_plan_refuses_a_backend_that_does_not_run_on_the_hardware(cli_main):
    proc = cli_main("plan", "--hardware", "h100", "--backend", "neuron")
    assert proc.returncode == 2
    assert proc.stderr == "trnbench: error: --backend: neuron does not run on h100; accepted: " \
                          "cuda\n"


@pytest.mark.parametrize("flags", [
    ["--model", "1b", "--batch", "3", "--seq", "1024"],
    ["--batch", "2"],  # the backend's default model and sequence, with this batch
    ["--model", "llama3-8b", "--batch", "1", "--tp", "4", "--parallel", "fsdp"],
])
def test_plan_and_run_resolve_the_same_flags_to_the_same_run(flags, cli_main, launches,
                                                            monkeypatch):
    """--batch is sequences per data-parallel rank in both, and every default is the same:
    the run `trnbench run --backend neuron --nproc 64 FLAGS` would launch is the one
    `trnbench plan --hardware trn2 --nproc 64 FLAGS` plans."""
    from bench.backends.base import Probe
    from bench.backends.neuron import NeuronBackend

    monkeypatch.setattr(NeuronBackend, "probe",
                        classmethod(lambda cls: Probe("neuron", True, "stand-in")))
    monkeypatch.setenv("TRNBENCH_RANK_MEMORY_GIB", "1000")
    plan = json.loads(cli_main("plan", "--hardware", "trn2", "--nproc", "64", *flags,
                               "--json").stdout)
    assert cli_main("run", "--backend", "neuron", "--nproc", "64", *flags).returncode == 0
    run, = launches
    assert (plan["model"], plan["backend"], plan["batch"], plan["seq"], plan["precision"]) == (
        run.model, run.backend, run.batch, run.seq, run.precision)
    assert (plan["requested"]["tp"], plan["requested"]["parallel"]) == (run.tp, run.parallel)
