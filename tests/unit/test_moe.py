"""Tests for the mixture-of-experts model: exact counts, static-shape routing, capacity dispatch
against a naive per-token loop, hardware FLOPs, and training through the benchmark."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.backends.common import aot_autograd
from torch._dynamo.testing import CompileCounterWithBackend
from torch._functorch.aot_autograd import make_boxed_func
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench.backends.cpu import CpuBackend
from bench.inputs import config
from bench.train import runner
from models import flops, moe, registry
from models.moe import MoEConfig, MoEFeedForward, route
from tests.conftest import read_jsonl

MIXTRAL_TOTAL = 46_702_792_704
MIXTRAL_ACTIVE = 12_879_925_248  # "12.9B active" (Jiang et al. 2024)
MIXTRAL_MATMUL = 12_748_587_008  # active minus the 131M input embedding and the norms

SMALL = MoEConfig(
    dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=48, vocab_size=64, max_seq_len=64,
    n_experts=4, top_k=2,
)


def test_mixtral_counts_module_and_formula() -> None:
    cfg = registry.get("mixtral-8x7b").config
    model = registry.build("mixtral-8x7b", "meta")
    assert flops.param_count(cfg) == flops.count_module_params(model) == MIXTRAL_TOTAL
    # from the module: everything but the experts, plus top_k of the experts in each layer
    experts = [p for n, p in model.named_parameters() if re.search(r"feed_forward\.w\d", n)]
    assert all(p.shape[0] == 8 for p in experts) and len(experts) == 3 * 32
    one_expert_per_layer = sum(p[0].numel() for p in experts)
    from_module = MIXTRAL_TOTAL - sum(p.numel() for p in experts) + 2 * one_expert_per_layer
    assert from_module == flops.active_param_count(cfg) == MIXTRAL_ACTIVE
    assert flops.matmul_param_count(cfg) == MIXTRAL_MATMUL
    assert round(MIXTRAL_ACTIVE / 1e9, 1) == 12.9
    assert (cfg.rope_theta, cfg.max_seq_len, cfg.tie_embeddings) == (1e6, 32768, False)
    spec = registry.get("mixtral-8x7b")
    assert (spec.seq_len, spec.batch_size) == (4096, 1)


def test_capacity() -> None:
    assert registry.get("mixtral-8x7b").config.capacity(4096) == 1280  # 1.25 * 2 * 4096 / 8
    assert 1.1 * 2 * 100 / 4 > 55  # float error that a plain ceil would round up to 56
    assert replace(SMALL, capacity_factor=1.1).capacity(100) == 55
    assert replace(SMALL, capacity_factor=1.0).capacity(10) == 5  # ceil(2 * 10 / 4)
    assert replace(SMALL, capacity_factor=100.0).capacity(7) == 7  # never more than T


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="top_k"):
        replace(SMALL, top_k=5)
    with pytest.raises(ValueError, match="capacity_factor"):
        replace(SMALL, capacity_factor=0.0)
    with pytest.raises(ValueError, match="divisible by n_heads"):
        replace(SMALL, n_heads=5)


def naive_moe(ff: MoEFeedForward, x: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Reference: one token and one choice at a time, first choices of a sequence before its
    second choices; an assignment past an expert's capacity is skipped. Returns the output,
    the dropped assignments and the load-balancing loss."""
    cfg = ff.cfg
    b, t, _ = x.shape
    capacity = cfg.capacity(t)
    out = torch.zeros_like(x)
    dropped = 0
    counts = torch.zeros(cfg.n_experts)
    probs_all = ff.router(x).float().softmax(-1)
    for s in range(b):
        probs = probs_all[s]
        top_p, top_i = probs.topk(cfg.top_k, dim=-1)
        gates = top_p / top_p.sum(-1, keepdim=True)
        load = [0] * cfg.n_experts
        for j in range(cfg.top_k):
            for i in range(t):
                e = int(top_i[i, j])
                counts[e] += 1
                load[e] += 1
                if load[e] > capacity:
                    dropped += 1
                    continue
                v = x[s, i]
                h = F.silu(ff.w1.weight[e] @ v) * (ff.w3.weight[e] @ v)
                out[s, i] = out[s, i] + gates[i, j] * (ff.w2.weight[e] @ h)
    f = counts / counts.sum()
    aux = cfg.n_experts * (f * probs_all.mean((0, 1))).sum()
    return out, dropped, aux


@pytest.mark.parametrize(("capacity_factor", "dropping"), [(2.0, False), (0.5, True)],
                         ids=["ample", "tight"])
def test_dispatch_matches_naive_loop(capacity_factor: float, dropping: bool) -> None:
    """Capacity 2.0 = n_experts / top_k: C = T, nothing can drop (Mixtral's dropless routing);
    0.5: C = T / 4 slots for T / 2 assignments per expert on average, so at least half drop."""
    torch.manual_seed(0)
    cfg = replace(SMALL, capacity_factor=capacity_factor)
    ff = MoEFeedForward(cfg)
    x = torch.randn(3, 16, cfg.dim)
    out = ff(x)
    ref, dropped, aux = naive_moe(ff, x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(ff.last_aux_loss, aux)
    assert ff.last_dropped_fraction.item() == pytest.approx(dropped / (3 * 16 * cfg.top_k))
    assert (dropped >= 3 * 16 * cfg.top_k / 2) if dropping else dropped == 0
    # the gradients agree too (the gates get theirs through the combine einsum)
    params = list(ff.parameters())
    for a, r in zip(torch.autograd.grad(out.square().sum(), params),
                    torch.autograd.grad(ref.square().sum(), params), strict=True):
        torch.testing.assert_close(a, r)


def test_aux_loss_is_one_when_balanced() -> None:
    """Uniform router probabilities: P_e = 1/E, so E * sum_e f_e / E = 1 for any f."""
    r = route(torch.zeros(2, 8, 4), top_k=2, capacity=8)
    assert r.aux_loss.item() == pytest.approx(1.0)
    assert r.dispatch.shape == (2, 8, 4, 8) and r.dropped_fraction.item() == 0.0
    torch.testing.assert_close(r.gates.sum(-1), torch.ones(2, 8))


DATA_DEPENDENT = {"aten.nonzero", "aten._local_scalar_dense", "aten.masked_select",
                  "aten.unique", "aten.index_put", "aten.item"}


def test_one_static_graph_for_any_tokens() -> None:
    """torch.compile(fullgraph=True) fails on a graph break (.item(), data-dependent control
    flow or output shapes such as nonzero); the traced aten graphs contain no data-dependent
    op, and tokens that overload two experts (heavy drops) reuse the one compiled graph."""
    torch.manual_seed(0)
    model = moe.build(SMALL)
    ops: set[str] = set()

    def capture(gm: torch.fx.GraphModule, _inputs):
        ops.update(str(n.target).rsplit(".", 1)[0] for n in gm.graph.nodes
                   if n.op == "call_function")
        return make_boxed_func(gm.forward)

    counter = CompileCounterWithBackend(aot_autograd(fw_compiler=capture, bw_compiler=capture))

    def forward(tokens):
        logits = model(tokens)
        return logits, model.aux_loss(), model.routing_stats()["dropped_fraction"]

    compiled = torch.compile(forward, fullgraph=True, backend=counter)
    random_tokens = torch.randint(0, SMALL.vocab_size, (2, 32))
    same_tokens = torch.full((2, 32), 7)
    dropped = []
    for tokens in (random_tokens, same_tokens):
        logits, aux, drop = compiled(tokens)
        (logits.sum() + aux).backward()
        eager = forward(tokens)
        torch.testing.assert_close(logits, eager[0])
        torch.testing.assert_close(drop, eager[2])
        dropped.append(drop.item())
    assert counter.frame_count == 1
    assert ops and not ops & DATA_DEPENDENT, sorted(ops & DATA_DEPENDENT)
    assert "aten.topk" in ops and "aten.cumsum" in ops
    # identical tokens have identical hidden states: all pick the same two experts, which
    # keep C = 20 of their 32 assignments each
    assert dropped[1] == pytest.approx(1 - SMALL.capacity(32) / 32) and dropped[0] < 0.2


def test_flop_counter_matches_hardware_flops() -> None:
    """FlopCounterMode on one fp32 forward + backward, SDPA on the MATH backend (as in
    test_models: attention = 12*L*H*Q*T per token of bmm, no causal discount).

    The einsums run as bmm: experts [E, B*C, D] x [E, D, F], counted for every slot; dispatch
    [B, E*C, T] x [B, T, D] (backward: the input gradient only, the one-hot mask needs none);
    combine [B, T, E*C] x [B, E*C, D] (backward: both operands, the gates included). Linear
    layers (attention, router, head) run as mm: exactly 6 N per token without the experts.
    Routing (softmax, top-k, cumsum, compares) counts nothing.
    """
    torch.manual_seed(0)
    batch, seq = 2, 64
    cfg = SMALL
    assert cfg.n_experts * cfg.capacity(seq) / seq == 2.5  # 25% over the 2 active experts
    model = moe.build(cfg)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq))
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        (model(tokens).float().sum() + cfg.aux_loss_coef * model.aux_loss()).backward()
    counts = counter.get_flop_counts()["Global"]
    n_tokens = batch * seq
    dense_part = flops.matmul_param_count(cfg) - cfg.n_layers * cfg.top_k * 3 * cfg.dim * \
        cfg.ffn_dim
    assert counts[torch.ops.aten.mm] == 6 * dense_part * n_tokens
    hardware = flops.hardware_flops_per_token(cfg, seq)
    assert counter.get_total_flops() / n_tokens == pytest.approx(hardware, rel=1e-12)  # exact
    assert hardware > 1.15 * flops.flops_per_token(cfg, seq)  # the model FLOPs would miss it


def test_train_step_adds_weighted_aux_loss() -> None:
    torch.manual_seed(0)
    cfg = replace(SMALL, aux_loss_coef=0.5)
    model = moe.build(cfg)
    by_hand, without_aux = copy.deepcopy(model), copy.deepcopy(model)
    tokens = torch.randint(0, cfg.vocab_size, (2, 16))
    targets = torch.randint(0, cfg.vocab_size, (2, 16))
    step = runner.make_train_step(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                  CpuBackend(), "fp32")
    ce = step(tokens, targets)
    for m, coef in ((by_hand, 0.5), (without_aux, 0.0)):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        ce_ref = F.cross_entropy(m(tokens).flatten(0, 1), targets.flatten())
        (ce_ref + coef * m.aux_loss()).backward()
        opt.step()
    torch.testing.assert_close(ce, ce_ref.detach())  # the step reports the cross-entropy
    for a, b in zip(model.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    router = model.layers[0].feed_forward.router.weight
    assert not torch.allclose(router, without_aux.layers[0].feed_forward.router.weight)


def test_moe_tiny_learns_through_the_cli(cli_main, tmp_path) -> None:
    results = tmp_path / "moe.jsonl"
    proc = cli_main("run", "--model", "moe-tiny", "--backend", "cpu", "--steps", "20", "--warmup",
                    "2", "--json", "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert read_jsonl(results) == [record] and record["status"] == "ok"
    assert record["loss_last"] < record["loss_first"] - 0.5  # about 6.27 -> 4.99
    cfg = registry.get("moe-tiny").config
    m = record["model"]
    assert m["params"] == flops.param_count(cfg) == 1_017_472
    assert m["active_params"] == flops.active_param_count(cfg) == 624_256
    assert m["matmul_params"] == flops.matmul_param_count(cfg)
    assert m["flops_per_token"] == flops.flops_per_token(cfg, 64)
    assert m["hardware_flops_per_token"] == flops.hardware_flops_per_token(cfg, 64)
    assert m["hardware_flops_per_token"] > m["flops_per_token"]
    # MFU stays on the model FLOPs
    assert record["mfu"] == pytest.approx(
        m["flops_per_token"] * record["tokens_per_s"] / record["peak"]["value"])
    r = record["moe"]
    assert {k: r[k] for k in ("n_experts", "top_k", "capacity_factor", "capacity",
                              "aux_loss_coef")} == {
        "n_experts": 4, "top_k": 2, "capacity_factor": 1.25, "capacity": 40,
        "aux_loss_coef": 0.01}
    assert 0.0 <= r["dropped_fraction"] < 0.25
    assert 0.9 < r["aux_loss"] < 2.0


def test_dense_record_has_no_moe_fields(cache_dir) -> None:
    cfg = config.resolve("cpu", {"model": "tiny", "steps": 2, "warmup": 1, "seq": 16})
    result = runner.measure(cfg, CpuBackend()).to_json()
    assert "moe" not in result
    m = result["model"]
    assert m["active_params"] == m["params"]
    assert m["hardware_flops_per_token"] == m["flops_per_token"]


class AotEagerCpu(CpuBackend):
    """The CPU backend with torch.compile's aot_eager backend: Dynamo traces the step as with
    inductor (module attribute writes included), without inductor's code generation time."""

    def compile(self, fn):
        return torch.compile(fn, backend="aot_eager")


def test_compiled_moe_run_records_routing(cache_dir) -> None:
    """A compiled training step: the router's statistics, set as module attributes in the
    compiled forward, still reach the record."""
    cfg = config.resolve("cpu", {"model": "moe-tiny", "steps": 3, "warmup": 2, "seq": 32,
                                 "batch": 4, "compile": True})
    result = runner.measure(cfg, AotEagerCpu()).to_json()
    assert result["loss_last"] < result["loss_first"]
    assert 0.0 <= result["moe"]["dropped_fraction"] < 0.25 and result["moe"]["capacity"] == 20


def test_models_lists_active_params(cli_main) -> None:
    proc = cli_main("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(registry.names())
    for name, r in rows.items():
        if isinstance(registry.get(name).config, MoEConfig):
            assert r["active_params"] < r["params"]
        else:
            assert r["active_params"] == r["params"]
    assert rows["mixtral-8x7b"]["params"] == MIXTRAL_TOTAL
    assert rows["mixtral-8x7b"]["active_params"] == MIXTRAL_ACTIVE
    table = cli_main("models")
    assert "active" in table.stdout and "12,879,925,248" in table.stdout
