"""`trnbench project`: custom shapes, the plan space (interleaving, CP, gradient bytes, the
batch), the node-MFU cap, the fit map, the inputs of issue 23 and runs as inputs."""

from __future__ import annotations

import pytest

from bench import cli
from bench.projection import comm, presets, search
from bench.projection.workload import get_shape, llama_ffn
from bench.records import store
from bench.records.record import Record
from tests.conftest import project, refused

RAINIER = ("--workload", "claude-3.5-sonnet", "--cluster", "rainier")
TRN2_8K = ("--workload", "claude-3.5-sonnet", "--hardware", "trn2", "--chips", "8192")


# --- custom shapes ---------------------------------------------------------------------

def test_custom_shape_is_the_registry_shape_it_spells():
    spec = "layers=126,dim=16384,heads=128,kv_heads=8,ffn=53248,vocab=128256,mlp=swiglu"
    custom, reg = get_shape(spec, "--shape"), get_shape("llama3-405b", "--shape")
    assert (custom.params, custom.matmul_params) == (reg.params, reg.matmul_params)
    assert custom.flops_per_token(8192) == reg.flops_per_token(8192)
    plain = get_shape("layers=2,dim=256,heads=4,mlp=gelu", "--shape")
    assert plain.kv_heads == 4 and plain.matmul_params == 2 * (4 * 256**2 + 2 * 256 * 1024)
    gated = get_shape("layers=2,dim=4096,heads=32", "--shape")  # ffn by Llama's rule
    assert llama_ffn(4096) == 11008  # Llama 2 7B's width
    assert gated.matmul_params == 2 * (4 * 4096**2 + 3 * 4096 * 11008)


def test_custom_shape_projects_and_says_its_sequence_is_assumed(capsys):
    d = project(capsys, "--flops", "1e24", "--shape", "layers=32,dim=4096,heads=32,vocab=32000",
                "--hardware", "trn2", "--chips", "1024", "--node-mfu", "0.4")
    seq = next(r for r in d["inputs"] if r["name"] == "sequence length T")
    assert seq["value"] == 8192 and seq["label"] == "assumption"
    shape = next(r for r in d["inputs"] if r["name"] == "model shape")
    assert shape["label"] == "user" and "layers=32" in shape["source"]


@pytest.mark.parametrize("spec", ["layers=2,dim=100,heads=3", "layers=2,dim=128", "dim=128,x=1",
                                  "layers=2,dim=128,heads=4,mlp=tanh", "layers=0,dim=128,heads=4"])
def test_bad_custom_shape_is_refused(capsys, spec):
    assert "--shape" in refused(capsys, "project", "--flops", "1e24", "--shape", spec,
                                "--hardware", "trn2", "--chips", "64", "--node-mfu", "0.4")


# --- the plan space ----------------------------------------------------------------------

def test_interleaving_rules():
    """Chunks divide the layers of a stage; more than one needs m >= p, a multiple of p."""
    assert search.chunk_choices(126, 16, 32) == [1, 2, 4, 8]
    assert search.chunk_choices(126, 16, 24) == [1]  # 24 micro-batches, 16 stages
    assert search.chunk_choices(126, 16, 8) == [1]
    assert search.chunk_choices(126, 1, 64) == [1]


def test_interleaved_plans_obey_the_schedule(capsys):
    d = project(capsys, *TRN2_8K, "--node-mfu", "0.5", "--global-batch-tokens", "64M")
    p = d["plan"]
    layers = -(-126 // p["pp"])
    assert layers % p["vpp"] == 0
    if p["vpp"] > 1:
        assert p["micro_batches"] >= p["pp"] and p["micro_batches"] % p["pp"] == 0
    # 3 chunks do not divide the 8 layers of a stage
    assert "--vpp" in refused(capsys, "project", *TRN2_8K, "--node-mfu", "0.5", "--tp", "16",
                              "--pp", "16", "--dp", "32", "--vpp", "3")


def test_context_parallelism_for_long_sequences(capsys):
    long = project(capsys, "--model", "llama3-405b", "--tokens", "1e12", "--seq", "131072",
                   "--hardware", "h100", "--chips", "16384", "--node-mfu", "0.5",
                   "--global-batch-tokens", "16M")
    assert long["plan"]["cp"] > 1 and long["plan"]["step"]["cp_s"] > 0
    assert long["chips"] == (long["plan"]["tp"] * long["plan"]["cp"] * long["plan"]["pp"]
                             * long["plan"]["dp"])
    short = project(capsys, *TRN2_8K, "--node-mfu", "0.5")
    assert short["plan"]["cp"] == 1  # 8K tokens: no CP shard of 8K tokens or more
    assert "--cp" in refused(capsys, "project", *TRN2_8K, "--node-mfu", "0.5", "--cp", "3")


def test_the_batch_rounded_down_is_said(capsys):
    """2,048 sequences over DP 45 leave 23 out: the plan says so (issue 23)."""
    d = project(capsys, *RAINIER, "--node-mfu", "0.4", "--tp", "16", "--pp", "43",
                "--dp", "45", "--vpp", "1")
    assert d["plan"]["global_batch_seqs"] == 45 * 45
    assert any("23 fewer than the 2,048 asked" in n for n in d["notes"])


# --- the node-MFU cap ----------------------------------------------------------------------

def test_mfu_mode_holds_the_implied_node_mfu_under_the_cap(capsys):
    d = project(capsys, *TRN2_8K, "--mfu", "0.35", "--max-node-mfu", "0.55")
    assert d["node_mfu"] <= 0.55 and d["mfu_at_scale"] == pytest.approx(0.35)
    cap = next(r for r in d["inputs"] if r["name"] == "highest node MFU a plan may need")
    assert cap["label"] == "user"
    err = refused(capsys, "project", *TRN2_8K, "--mfu", "0.7")  # above anything the cap allows
    assert "--mfu" in err and "best MFU at scale any plan reaches there is" in err
    assert "71.5%" in err and "--max-node-mfu" in err
    assert "--max-node-mfu" in refused(capsys, "project", *TRN2_8K, "--node-mfu", "0.4",
                                       "--max-node-mfu", "0.5")


# --- the fit map -----------------------------------------------------------------------------

def test_fit_map_one_row_per_batch_and_its_plot(capsys, tmp_path):
    png = tmp_path / "fit.png"
    d = project(capsys, *TRN2_8K, "--mfu", "0.4", "--global-batch-tokens", "2M,4M,8M,16M",
                "--plot", str(png))
    rows = d["batches"]
    assert [r["global_batch_tokens"] for r in rows] == [2**21, 2**22, 2**23, 2**24]
    for r in rows:
        for key in ("chips", "days", "energy_mwh_facility", "node_mfu", "plan"):
            assert key in r
        assert r["node_mfu"] <= 0.7146 and r["batch_tokens_used"] >= 0.95 * r["global_batch_tokens"]
    days = [r["days"] for r in rows]
    assert days == sorted(days, reverse=True)  # a larger batch feeds more chips
    assert d["days"] == min(days)  # the headline: the fastest batch
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["project", *TRN2_8K, "--mfu", "0.4", "--global-batch-tokens", "4M,8M"]) == 0
    assert "the fit map, one row per global batch" in capsys.readouterr().out
    assert "--global-batch-tokens" in refused(capsys, "project", *TRN2_8K, "--mfu", "0.4",
                                              "--global-batch-tokens", "16X")


# --- inputs --------------------------------------------------------------------------------

def test_interconnect_and_memory_inputs():
    trn2 = presets.NODES["trn2-ultraserver"]
    assert trn2["intra"].value == 1024e9 and trn2["group_link"].value == 256e9
    assert trn2["group"].value == 64 and "does not say" in trn2["intra"].source
    trn1 = presets.NODES["trn1.32xlarge"]
    assert trn1["intra"].value == 384 * 2**30
    from bench.backends.hardware import DEVICES
    assert DEVICES["trn1"].bandwidth.value == 820 * 2**30
    # an UltraServer: PP inside the 64 chips over its NeuronLink, DP beyond it over EFA
    links = comm.place(per_node=16, intra=1024e9, inter=400e9, tp=16, pp=4, dp=8, group=64,
                       group_link=256e9)
    assert (links.intra, links.pp, links.dp) == (1024e9, 256e9, 400e9 / 16)
    assert presets.CLUSTERS["rainier"]["node"] == "trn2-ultraserver"


def test_mixed_trainium_cluster_projects_one_pool(capsys):
    trn3 = project(capsys, "--workload", "claude-3.5-sonnet", "--cluster", "trainium-2026",
                   "--node-mfu", "0.4", "--global-batch-tokens", "64M")
    assert trn3["hardware"] == "trn3" and trn3["cluster_chips"] == 249_000
    assert "trn3 pool" in trn3["cluster"] and trn3["power_cap_mw"] == 1000
    trn2 = project(capsys, "--workload", "claude-3.5-sonnet", "--cluster", "trainium-2026",
                   "--hardware", "trn2", "--node-mfu", "0.4", "--global-batch-tokens", "64M")
    assert trn2["hardware"] == "trn2" and trn2["cluster_chips"] == 498_000
    power = next(r for r in trn3["inputs"] if r["name"] == "chip power")
    assert power["label"] in ("estimate", "report")  # trn3's power stays an estimate


# --- a stored run as the node MFU --------------------------------------------------------------

def _run(mfu: float, ac: str, tp: int) -> Record:
    return Record.new({"model": "1b", "precision": "bf16", "backend": "neuron", "batch": 16,
                       "seq": 2048, "ac": ac},
                      {"host": "trn"}).with_json({
        "device": {"name": "trn2", "kind": "trn2", "chips": 16}, "world_size": 16,
        "parallelism": {"tp": tp, "dp": 16 // tp, "parallel": "ddp"},
        "ac": {"mode": ac, "blocks": 16 if ac != "none" else 0, "of_blocks": 16},
        "peak": {"value": 667e12, "label": "datasheet", "source": "x", "precision": "bf16"},
        "model": {"flops_per_token": 1e10}, "mfu": mfu, "tokens_per_s": 1e4})


def test_from_results_takes_the_runs_own_recompute_and_tp_out(capsys, tmp_path):
    """A run's MFU already holds its recompute and TP time: the node MFU is its MFU over the
    modelled efficiency of its own layout, not the MFU itself (issue 23)."""
    path = tmp_path / "runs.jsonl"
    plain, heavy = _run(0.3, "none", 1), _run(0.3, "full", 4)
    store.append(path, plain)
    store.append(path, heavy)
    args = ("--workload", "claude-3.5-sonnet", "--hardware", "trn2", "--chips", "4096",
            "--from-results", str(path))
    a = project(capsys, *args, "--run-id", plain.run_id)
    b = project(capsys, *args, "--run-id", heavy.run_id)
    assert 0.3 < a["node_mfu"] < b["node_mfu"]  # recompute and TP 4 taken out
    assert b["node_mfu"] > 0.3 * 4 / 3  # at least the recomputed forward
    node = next(r for r in b["inputs"] if r["name"] == "node MFU")
    assert node["label"] == "derived" and heavy.run_id in node["source"]
    assert any("taken out before the plan's own are added" in n for n in b["notes"])
