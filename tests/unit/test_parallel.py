"""Node-scale parallelism (bench.parallel, bench.parallel.memory_plan), in this process: layouts
refused before any process starts, the memory plan against hand arithmetic, the reference run
files, and HFU's recomputation term against torch's FLOP counter. The real gloo runs through
torchrun, whose losses match a one-process run, and the 70B Slurm job's dry run:
tests/integration/test_parallel_runs.py."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench import cli
from bench.backends import selection
from bench.inputs.config import ConfigError
from bench.parallel import layout, memory_plan
from tests.conftest import ROOT

STEPS = ("--model", "tiny", "--seq", "32", "--warmup", "1", "--steps", "2")
GIB = 2**30


def _cfg(**fields):
    return selection.resolve_run("cpu", {"model": "tiny", **fields})[0]


@pytest.mark.parametrize(("fields", "nproc", "message"), [
    ({"tp": 3}, 3, "--tp: 3 does not divide the 4 query heads of tiny"),
    ({"tp": 4}, 4, "--tp: 4 does not divide the 2 KV heads of tiny"),
    ({"tp": 2}, 1, "--tp: 2 does not divide the 1 ranks per node (--nproc)"),
    ({"tp": 2, "model": "moe-tiny"}, 2, "--tp: moe-tiny is a mixture of experts"),
    ({"tp": 2, "model": "1b"}, 2, "--tp: 1b ties its embedding and output head"),
    ({"tp": 2}, 4, "--parallel: ddp does not replicate a tensor-parallel model"),
    ({"parallel": "hsdp", "dp_shard": 3}, 4, "--dp-shard: 3 does not divide the 4"),
    ({"dp_shard": 2}, 4, "--dp-shard: applies to --parallel hsdp only"),
    ({"param_dtype": "bf16", "parallel": "fsdp"}, 2, "--param-dtype: bf16 (FSDP2"),
])
def test_bad_layouts_are_refused_naming_the_constraint(fields, nproc, message):
    with pytest.raises(ConfigError) as e:
        layout.for_world(_cfg(**fields), nproc, 1)
    assert str(e.value).startswith(message)


def test_layouts_and_the_legacy_xla_backend():
    hsdp = layout.for_world(_cfg(parallel="hsdp", dp_shard=2), 4, 1)
    assert (hsdp.mesh_shape, hsdp.mesh_names, hsdp.shards) == (
        (2, 2, 1), ("dp_replicate", "dp_shard", "tp"), 2)
    fsdp = layout.for_world(_cfg(parallel="fsdp", tp=2), 4, 1)
    assert (fsdp.mesh_shape, fsdp.dp, fsdp.shards, fsdp.dp_rank(3)) == ((2, 2), 2, 2, 1)
    assert layout.for_world(_cfg(parallel="hsdp"), 4, 2).dp_shard == 4  # a node shards
    base = _cfg()
    for change, flag in (({"tp": 2}, "--tp"), ({"ac": "full"}, "--ac"),
                         ({"parallel": "hsdp"}, "--parallel")):
        xla = dataclasses.replace(base, backend="neuron-xla", **change)
        with pytest.raises(ConfigError, match=f"^{flag}: .*neuron-xla"):
            layout.check_model(xla, xla and __import__("models").registry.get("tiny").config)


def _refused(argv: list[str], capsys) -> str:
    """``trnbench ARGV`` in this process: exit 2 and its one stderr line."""
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    return err


def test_the_cli_refuses_with_one_line_before_launching(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    err = _refused(["run", *STEPS, "--nproc", "4", "--tp", "2", "--results", str(results)],
                   capsys)
    assert "--parallel: ddp does not replicate" in err and not results.exists()


def test_a_run_that_cannot_fit_is_refused_by_the_plan_and_nothing_is_written(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRNBENCH_RANK_MEMORY_GIB", "64")  # not this host's RAM: any host
    results = tmp_path / "r.jsonl"
    err = _refused(["run", "--model", "llama3-8b", "--nproc", "2", "--backend", "cpu",
                    "--results", str(results)], capsys)
    assert err == ("trnbench: error: plan: needs 231.8 GiB per rank of 57.6 GiB usable (90% "
                   "of 64.0 GiB per rank, TRNBENCH_RANK_MEMORY_GIB); no --tp/--ac/--parallel/"
                   "--param-dtype setting fits on 2 ranks: try --nnodes 2 --parallel fsdp "
                   "--ac full\n")
    assert not results.exists() and "launching" not in err


def test_a_bad_rank_memory_override_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("TRNBENCH_RANK_MEMORY_GIB", "64GB")
    assert _refused(["run", *STEPS, "--backend", "cpu"], capsys) == (
        "trnbench: error: TRNBENCH_RANK_MEMORY_GIB: must be a number of GiB > 0, got '64GB'\n")


def _8b_trn2_by_hand() -> dict[str, float]:
    """Llama 3.1 8B, seq 8192, 1 sequence per DP rank, TP 8 x DP 8 FSDP2 on 64 ranks, bf16
    parameters, full checkpointing, at its peak: the start of the backward (docs/memory.md,
    written out)."""
    block = (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336) / 8  # 27,262,976
    root = 2 * 128256 * 4096 / 8  # embedding + head rows/columns of one TP rank
    p = 32 * block + root + 65 * 4096  # 1,004,015,616 parameters per TP rank
    n, vocab = 8192, 128256 / 8  # tokens of the TP group; a rank's vocabulary shard
    # a checkpointed block keeps its bf16 input, its bf16 cos/sin and the RNG state
    kept = n * 2 * 4096 / 8 + 2 * 8192 * 128 + 5056
    # the final norm (x.float(), rsqrt, normed in bf16) and the head's all-gathered input
    head = n * ((6 * 4096 + 4) / 8 + 2 * 4096) + 4
    return {"parameters": 4 * p / 8, "optimizer": 8 * p / 8, "gradients": 0, "autocast": 0,
            "transient": 0, "gathered": 2 * (root + 4096),  # the root gathered in bf16
            "activations": 32 * kept + head,
            # log-probs, their gradient and log-softmax's (fp32), loss parallelism's exp(x)
            "logits": 12 * n * vocab + 4 * n * vocab + 33 * n}


def _70b_trn2_by_hand() -> dict[str, float]:
    """Llama 3.1 70B on 4 trn2.48xlarge: TP 8 x DP 32 FSDP2, bf16 parameters, full AC."""
    block = (2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672) / 8  # 106,954,752
    root = 2 * 128256 * 8192 / 8
    p = 80 * block + root + 161 * 8192  # 8,820,367,360
    n, vocab = 8192, 128256 / 8
    kept = n * 2 * 8192 / 8 + 2 * 8192 * 128 + 5056
    head = n * ((6 * 8192 + 4) / 8 + 2 * 8192) + 4
    return {"parameters": 4 * p / 32, "optimizer": 8 * p / 32, "gradients": 0, "autocast": 0,
            "transient": 0, "gathered": 2 * (root + 8192), "activations": 80 * kept + head,
            "logits": 16 * n * vocab + 33 * n}


@pytest.mark.parametrize(("model", "nnodes", "hand", "total"), [
    ("llama3-8b", 1, _8b_trn2_by_hand, 4_298_301_444),
    ("llama3-70b", 4, _70b_trn2_by_hand, 7_629_514_756),
])
def test_memory_plan_against_hand_arithmetic(model, nnodes, hand, total):
    cfg = selection.resolve_run("cpu", {"model": model, "precision": "bf16", "tp": 8,
                                       "parallel": "fsdp", "param_dtype": "bf16",
                                       "ac": "full"})[0]
    cfg = dataclasses.replace(cfg, backend="neuron")  # as `trnbench plan --hardware trn2`
    memory, per_node = memory_plan.hardware_memory_per_rank("trn2")
    per_rank = memory.value
    assert (per_rank, per_node) == (24 * GIB, 64)  # 96 GiB over 4 logical cores at LNC=2
    assert memory.source == "trn2 datasheet: 96 GiB per chip / 4 NeuronCores"
    h100 = memory_plan.hardware_memory_per_rank("h100")[0]  # the datasheet's decimal GB
    assert (h100.value, h100.source) == (80e9, "h100 datasheet: 80 GB per chip")
    pred = memory_plan.predict(cfg, layout.for_world(cfg, 64, nnodes), per_rank)
    assert pred.phase == "backward_loss" and pred.basis[0] == "derived"
    assert pred.parts == pytest.approx(hand())
    assert pred.total == pytest.approx(total) and pred.fits
    # without checkpointing each block keeps its whole saved set: the all-gathered norm
    # outputs (2 D bytes a token each, not divided by TP) weigh most
    none = memory_plan.predict(dataclasses.replace(cfg, ac="none"),
                               layout.for_world(cfg, 64, nnodes), per_rank)
    n_layers, dim = (32, 4096) if model == "llama3-8b" else (80, 8192)
    assert none.saved["activations"] > n_layers * 4 * 8192 * dim  # > 2 x Korthikanti's 34 / t


def test_plan_prints_what_fits_and_the_nearest_that_does_not(capsys):
    assert cli.main(["plan", "--model", "llama3-8b", "--hardware", "trn2", "--nproc", "64",
                     "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["requested"]["fits"] and out["requested"]["parallel"] == "ddp"
    # no change of two flags fits (TP 4 with autocast and no checkpointing: 33.0 GiB);
    # FSDP2 with bf16 parameters and full checkpointing: 17.4 GiB, 11.7 of it the loss's
    assert out["smallest_fitting_change"]["flags"] == "--parallel fsdp --param-dtype bf16 --ac full"
    assert out["smallest_fitting_change"]["fits"]
    assert cli.main(["plan", "--model", "llama3-8b", "--hardware", "h100", "--parallel",
                     "fsdp", "--param-dtype", "bf16", "--ac", "selective", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ranks"] == 8 and out["requested"]["fits"]
    assert out["nearest_not_fitting"] and not out["nearest_not_fitting"]["fits"]
    assert set(out["requested"]["bytes"]) == {"parameters", "optimizer", "activations",
                                              "autocast", "logits", "gradients", "gathered",
                                              "transient"}
    assert out["requested"]["peak_phase"] == "backward_loss"
    assert out["requested"]["basis"]["label"] == "derived"


@pytest.mark.parametrize("path", sorted(
    str(p.relative_to(ROOT)) for p in [*ROOT.glob("scripts/trn2/*.toml"),
                                       *ROOT.glob("scripts/gpu/llama3-*.toml")]))
def test_reference_run_files_fit_their_hardware(path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["plan", "--config", path, "--json"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["requested"]["fits"] and out["model"].startswith("llama3-")


@pytest.mark.parametrize("mode", ["selective", "full"])
def test_recomputed_flops_match_the_flop_counter(mode):
    """HFU's recomputation term against torch's FlopCounterMode on a real forward + backward
    of ``tiny`` with checkpointed blocks (MATH attention: see tests/unit/test_models.py for what
    the counter counts): the extra FLOPs over the same step without checkpointing are
    ``flops.recompute_flops_per_token`` per token."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from bench.parallel import apply
    from models import flops, registry

    spec = registry.get("tiny")
    tokens = torch.randint(0, spec.config.vocab_size, (2, 16))

    def counted(ac: str) -> int:
        torch.manual_seed(0)
        model = registry.build(spec)
        blocks = apply.activation_checkpointing(model, ac)
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), counter:
            model(tokens).float().sum().backward()
        return counter.get_total_flops(), len(blocks)

    base, _ = counted("none")
    total, blocks = counted(mode)
    assert blocks == (1 if mode == "selective" else 2)
    assert total - base == flops.recompute_flops_per_token(spec.config, 16, blocks) * 2 * 16
