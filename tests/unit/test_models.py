"""Tests for the reference models, their registry and the analytic FLOP/parameter counts."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from models import flops, registry
from models.llama import Llama, LlamaConfig, build

EXACT_PARAMS = {
    "1b": 1_235_814_400,
    "3b": 3_212_749_824,
    "llama3-8b": 8_030_261_248,
    "llama3-70b": 70_553_706_496,
    "llama3-405b": 405_853_388_800,
}

GQA = LlamaConfig(
    dim=128, n_layers=2, n_heads=8, n_kv_heads=2, ffn_dim=256, vocab_size=256, max_seq_len=512
)
TIED = LlamaConfig(
    dim=96,
    n_layers=3,
    n_heads=6,
    n_kv_heads=6,
    ffn_dim=256,
    vocab_size=300,
    max_seq_len=512,
    tie_embeddings=True,
)


@pytest.mark.parametrize("name", sorted(EXACT_PARAMS))
def test_exact_param_counts(name: str) -> None:
    spec = registry.get(name)
    assert flops.param_count(spec.config) == EXACT_PARAMS[name]
    assert flops.count_module_params(registry.build(name, "meta")) == EXACT_PARAMS[name]


@pytest.mark.parametrize("name", registry.names())
def test_module_count_matches_formula(name: str) -> None:
    spec = registry.get(name)
    cfg = spec.config
    assert flops.count_module_params(registry.build(spec, "meta")) == flops.param_count(cfg)
    norms = (2 * cfg.n_layers + 1) * cfg.dim
    embedding = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.dim
    # active = all parameters of a dense model; an MoE model's unused experts are left out
    assert flops.matmul_param_count(cfg) == flops.active_param_count(cfg) - norms - embedding


@pytest.mark.parametrize(
    ("cfg", "seq_len"),
    [(registry.get("tiny").config, 256), (GQA, 512), (TIED, 512)],
    ids=["tiny", "gqa", "tied"],
)
def test_flops_per_token_matches_flop_counter(cfg: LlamaConfig, seq_len: int) -> None:
    """6N+12LHQT against torch's FlopCounterMode on one real fp32 forward + backward on CPU.

    What FlopCounterMode counts (torch 2.13): every aten.mm / aten.bmm at 2 FLOPs per
    multiply-add. Linear layers run as mm: 2N per token forward, 4N backward (grad input and
    grad weight), so the mm total is exactly 6N per token; the embedding lookup and its
    backward are not matmuls and count nothing, which is why an untied input table is not in N.
    On the CPU, SDPA dispatches by default to the fused
    aten._scaled_dot_product_flash_attention_for_cpu (and its _backward), for which torch 2.13
    registers no FLOP formula: attention would count 0. The test therefore selects the MATH
    backend, which decomposes SDPA into bmm: QK^T and AV forward (4*B*H*T^2*Q) and four bmm
    backward (8*B*H*T^2*Q), over the full T x T square (the causal mask is applied after the
    matmul), i.e. exactly 12*L*H*Q*T per token with no causal discount. (torch's own formulas
    for the fused GPU kernels count 5 backward matmuls, the recomputed scores included.)
    """
    batch = 2
    model = build(cfg)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq_len))
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        model(tokens).float().sum().backward()
    counts = counter.get_flop_counts()["Global"]
    tokens_total = batch * seq_len
    assert counts[torch.ops.aten.mm] == 6 * flops.matmul_param_count(cfg) * tokens_total
    attention_share = 1 - 6 * flops.matmul_param_count(cfg) / flops.flops_per_token(cfg, seq_len)
    assert attention_share > 0.2  # long enough that the attention term matters
    per_token = counter.get_total_flops() / tokens_total
    assert per_token == pytest.approx(flops.flops_per_token(cfg, seq_len), rel=0.02)


def test_flops_per_token_formula() -> None:
    cfg = registry.get("llama3-8b").config
    expected = 6 * 7_504_658_432 + 12 * 32 * 32 * 128 * 8192
    assert flops.flops_per_token(cfg, 8192) == expected
    assert flops.FORMULA == "6N+12LHQT"


@pytest.mark.parametrize("cfg", [registry.get("tiny").config, TIED], ids=["tiny", "tied"])
def test_causal(cfg: LlamaConfig) -> None:
    torch.manual_seed(0)
    model = build(cfg).eval()
    seq_len, t = 32, 12
    a = torch.randint(0, cfg.vocab_size, (2, seq_len))
    b = a.clone()
    b[:, t + 1 :] = torch.randint(0, cfg.vocab_size, (2, seq_len - t - 1))
    with torch.no_grad():
        la, lb = model(a), model(b)
    assert la.shape == (2, seq_len, cfg.vocab_size)
    torch.testing.assert_close(la[:, : t + 1], lb[:, : t + 1])
    assert not torch.allclose(la[:, t + 1 :], lb[:, t + 1 :])


def test_tiny_model_learns() -> None:
    """AdamW on sequences where the next token is a fixed permutation of the current one."""
    torch.manual_seed(0)
    spec = registry.get("tiny")
    vocab = spec.config.vocab_size
    model = registry.build("tiny")
    perm = torch.randperm(vocab)
    seq = torch.empty(spec.batch_size, spec.seq_len + 1, dtype=torch.long)
    seq[:, 0] = torch.randint(0, vocab, (spec.batch_size,))
    for i in range(spec.seq_len):
        seq[:, i + 1] = perm[seq[:, i]]
    inputs, targets = seq[:, :-1], seq[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(torch.log(torch.tensor(float(vocab))).item(), rel=0.1)
    assert losses[-1] < 0.5 * losses[0]  # 6.26 -> about 1.6 with this seed


def test_meta_build_405b_is_instant_and_storageless() -> None:
    start = time.perf_counter()
    model = registry.build("llama3-405b", "meta")
    # A generous bound: a real allocation/init of 405B parameters could not finish in it.
    assert time.perf_counter() - start < 10
    tensors = [*model.parameters(), *model.buffers()]
    assert tensors and all(t.is_meta for t in tensors)


def test_meta_model_materialises() -> None:
    """A meta-built model becomes usable after to_empty() + init_weights()."""
    cfg = registry.get("tiny").config
    model = build(cfg, "meta").to_empty(device="cpu")
    model.init_weights()
    reference = build(cfg)
    torch.testing.assert_close(model.rope_cos, reference.rope_cos)
    torch.testing.assert_close(model.rope_sin, reference.rope_sin)
    assert torch.isfinite(model(torch.randint(0, cfg.vocab_size, (1, 16)))).all()


def test_init_and_tying() -> None:
    torch.manual_seed(0)
    cfg = registry.get("tiny").config
    model = build(cfg)
    out_std = 0.02 / (2 * cfg.n_layers) ** 0.5
    for layer in model.layers:
        assert layer.attention.wo.weight.std().item() == pytest.approx(out_std, rel=0.1)
        assert layer.feed_forward.w2.weight.std().item() == pytest.approx(out_std, rel=0.1)
        assert layer.attention.wq.weight.std().item() == pytest.approx(0.02, rel=0.1)
        assert torch.equal(layer.attention_norm.weight, torch.ones(cfg.dim))
    tied = build(TIED)
    assert tied.output.weight is tied.tok_embeddings.weight
    assert model.output.weight is not model.tok_embeddings.weight


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="divisible by n_heads"):
        LlamaConfig(
            dim=100, n_layers=1, n_heads=3, n_kv_heads=1, ffn_dim=8, vocab_size=8, max_seq_len=8
        )
    with pytest.raises(ValueError, match="divisible by n_kv_heads"):
        LlamaConfig(
            dim=64, n_layers=1, n_heads=4, n_kv_heads=3, ffn_dim=8, vocab_size=8, max_seq_len=8
        )
    assert registry.get("llama3-405b").config.head_dim == 128


def test_sequence_longer_than_max_is_rejected() -> None:
    cfg = registry.get("tiny").config
    with pytest.raises(ValueError, match="max_seq_len"):
        build(cfg)(torch.zeros(1, cfg.max_seq_len + 1, dtype=torch.long))


def test_registry() -> None:
    assert registry.names() == [
        "tiny",
        "125m",
        "350m",
        "1b",
        "3b",
        "llama3-8b",
        "llama3-70b",
        "llama3-405b",
        "moe-tiny",
        "mixtral-8x7b",
    ]
    spec = registry.get("llama3-8b")
    assert (spec.seq_len, spec.batch_size) == (8192, 1)
    assert isinstance(registry.build(spec, "meta"), Llama)
    for spec in map(registry.get, registry.names()):
        theta = 1e6 if spec.name == "mixtral-8x7b" else 500000.0
        assert spec.config.rope_theta == theta and spec.config.norm_eps == 1e-5
        assert spec.seq_len <= spec.config.max_seq_len


def test_unknown_model_error_lists_names() -> None:
    with pytest.raises(registry.UnknownModelError) as info:
        registry.get("gpt-5")
    message = str(info.value)
    assert "gpt-5" in message
    assert all(name in message for name in registry.names())
    assert isinstance(info.value, ValueError)
