"""Dense Llama-style decoder in pure PyTorch.

Architecture as in Llama 2/3 (Touvron et al. 2023, arXiv:2307.09288; Llama 3 Herd,
arXiv:2407.21783): pre-norm blocks of RMSNorm -> grouped-query attention with RoPE ->
residual, RMSNorm -> SwiGLU MLP -> residual; final RMSNorm and a linear output head.
Module names follow Meta's reference code (``tok_embeddings``, ``layers.N.attention.wq`` ...).

Written for compilers that want static graphs (XLA, Neuron, ``torch.compile``): static
shapes, no data-dependent control flow, no ``.item()``, no complex tensors. RoPE uses the
real-valued rotate-half form and the tables are non-persistent buffers; Llama 3.1's
long-context RoPE frequency scaling is left out (it changes no shape or FLOP count).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.configs import LlamaConfig

__all__ = ["Llama", "LlamaConfig", "build"]


class RMSNorm(nn.Module):
    """y = x * rsqrt(mean(x^2) + eps) * weight, normalised in fp32 and cast back to x's dtype
    (Zhang & Sennrich 2019, arXiv:1910.07467)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_tables(
    head_dim: int, max_seq_len: int, theta: float, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the RoPE angles p * theta^(-2i/head_dim), each [max_seq_len, head_dim/2],
    fp32 (Su et al. 2021, arXiv:2104.09864)."""
    inv_freq = theta ** -(torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(max_seq_len, device=device).float(), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE on x [..., T, head_dim] with cos/sin [T, head_dim/2]: the pair
    (x_i, x_{i+head_dim/2}) is rotated by angle_i."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[B, n_kv, T, hd] -> [B, n_kv * n_rep, T, hd]; query head h reads kv head h // n_rep."""
    if n_rep == 1:
        return x
    b, n_kv, t, hd = x.shape
    return x[:, :, None].expand(b, n_kv, n_rep, t, hd).reshape(b, n_kv * n_rep, t, hd)


class Attention(nn.Module):
    """Causal grouped-query attention (Ainslie et al. 2023, arXiv:2305.13245) through SDPA."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # heads counted from the projections' outputs: under tensor parallelism a rank
        # holds n_heads / tp query and n_kv_heads / tp KV heads (bench.parallel.apply)
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, -1, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, -1, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, -1, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        n_rep = q.shape[1] // k.shape[1]
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    """SwiGLU MLP: w2(silu(w1 x) * w3 x) (Shazeer 2020, arXiv:2002.05202)."""

    def __init__(self, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, ffn_dim, bias=False)
        self.w3 = nn.Linear(dim, ffn_dim, bias=False)
        self.w2 = nn.Linear(ffn_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """h = x + attention(norm(x)); out = h + feed_forward(norm(h)); the MLP is a SwiGLU
    FeedForward unless another module (an MoE layer) is given."""

    def __init__(self, cfg: LlamaConfig, feed_forward: nn.Module | None = None) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        if feed_forward is None:
            feed_forward = FeedForward(cfg.dim, cfg.ffn_dim)
        self.feed_forward = feed_forward

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Llama(nn.Module):
    """Decoder-only Llama: ``forward(tokens [B, T]) -> logits [B, T, vocab_size]``."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(
            TransformerBlock(cfg, self.make_feed_forward(cfg)) for _ in range(cfg.n_layers)
        )
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        half = cfg.head_dim // 2
        self.register_buffer("rope_cos", torch.empty(cfg.max_seq_len, half), persistent=False)
        self.register_buffer("rope_sin", torch.empty(cfg.max_seq_len, half), persistent=False)
        if not self.rope_cos.is_meta:
            self.init_weights()

    def make_feed_forward(self, cfg: LlamaConfig) -> nn.Module:
        """The MLP of one block (SwiGLU); a subclass returns its own (models/moe.py)."""
        return FeedForward(cfg.dim, cfg.ffn_dim)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Fill parameters and RoPE tables; call again after ``to_empty()`` of a meta model.

        Linear and embedding weights ~ N(0, 0.02); the block output projections (wo, w2)
        ~ N(0, 0.02 / sqrt(2 * n_layers)) as in GPT-2 (Radford et al. 2019); norms = 1.
        """
        std = 0.02
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
        out_std = std / math.sqrt(2 * self.cfg.n_layers)
        for layer in self.layers:
            nn.init.normal_(layer.attention.wo.weight, mean=0.0, std=out_std)
            nn.init.normal_(layer.feed_forward.w2.weight, mean=0.0, std=out_std)
        cfg = self.cfg
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta, self.rope_cos.device)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {t} exceeds max_seq_len {self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h, cos, sin)
        return self.output(self.norm(h))


def build(cfg: LlamaConfig, device: str | torch.device | None = None) -> Llama:
    """Construct a Llama directly on ``device``; ``"meta"`` allocates no storage."""
    if device is None:
        return Llama(cfg)
    with torch.device(device):
        return Llama(cfg)
