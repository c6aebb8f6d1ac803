"""Analytic parameter counts and training FLOPs per token.

Derivation: docs/models.md, "Parameters and FLOPs per token"."""

from __future__ import annotations

from functools import singledispatch
from typing import TYPE_CHECKING, Any

from models.configs import LlamaConfig, MoEConfig

if TYPE_CHECKING:
    from torch import nn

FORMULA = "6N+12LHQT"


@singledispatch
def param_count(cfg: Any) -> int:
    """All parameters of the model that ``cfg`` describes (a tied matrix counted once)."""
    raise TypeError(f"no parameter count for config type {type(cfg).__name__}")


@singledispatch
def matmul_param_count(cfg: Any) -> int:
    """N of ``6N+12LHQT``: parameters that take part in matmuls for one token."""
    raise TypeError(f"no matmul parameter count for config type {type(cfg).__name__}")


@singledispatch
def active_param_count(cfg: Any) -> int:
    """Parameters that one token uses (embedding and norms included): all of a dense model."""
    return param_count(cfg)


def _attention_params(cfg: LlamaConfig) -> int:
    """wq + wk + wv + wo = D*H*Q + 2*D*KV*Q + H*Q*D."""
    q_dim, kv_dim = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    return 2 * cfg.dim * q_dim + 2 * cfg.dim * kv_dim


def _llama_block_matmul_params(cfg: LlamaConfig) -> int:
    """Attention + w1 + w2 + w3 = D*H*Q + 2*D*KV*Q + H*Q*D + 3*D*F."""
    return _attention_params(cfg) + 3 * cfg.dim * cfg.ffn_dim


@param_count.register
def _(cfg: LlamaConfig) -> int:
    """V*D embedding + L * (block matmuls + 2*D norms) + D final norm + V*D head if untied."""
    embedding = cfg.vocab_size * cfg.dim
    blocks = cfg.n_layers * (_llama_block_matmul_params(cfg) + 2 * cfg.dim)
    head = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.dim
    return embedding + blocks + cfg.dim + head


@matmul_param_count.register
def _(cfg: LlamaConfig) -> int:
    """L * block matmuls + V*D output head."""
    return cfg.n_layers * _llama_block_matmul_params(cfg) + cfg.vocab_size * cfg.dim


def _expert_params(cfg: MoEConfig) -> int:
    """One SwiGLU expert: w1 + w2 + w3 = 3*D*F."""
    return 3 * cfg.dim * cfg.ffn_dim


@param_count.register
def _(cfg: MoEConfig) -> int:
    """As the dense count with each MLP replaced by E experts (3*D*F each) and a D*E router."""
    blocks = cfg.n_layers * (
        _attention_params(cfg) + cfg.dim * cfg.n_experts + cfg.n_experts * _expert_params(cfg)
        + 2 * cfg.dim
    )
    head = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.dim
    return cfg.vocab_size * cfg.dim + blocks + cfg.dim + head


@active_param_count.register
def _(cfg: MoEConfig) -> int:
    """Total minus the L * (E - k) experts that a token does not use."""
    return param_count(cfg) - cfg.n_layers * (cfg.n_experts - cfg.top_k) * _expert_params(cfg)


@matmul_param_count.register
def _(cfg: MoEConfig) -> int:
    """L * (attention + D*E router + k active experts) + V*D output head."""
    per_layer = _attention_params(cfg) + cfg.dim * cfg.n_experts + cfg.top_k * _expert_params(cfg)
    return cfg.n_layers * per_layer + cfg.vocab_size * cfg.dim


def flops_per_token(cfg: Any, seq_len: int) -> int:
    """Training FLOPs per token = 6 * N + 12 * L * H * Q * T (PaLM appendix B)."""
    attention = 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len
    return 6 * matmul_param_count(cfg) + attention


@singledispatch
def hardware_flops_per_token(cfg: Any, seq_len: int) -> float:
    """Training FLOPs per token that the implementation computes: for a dense model the
    model FLOPs of ``flops_per_token``."""
    return flops_per_token(cfg, seq_len)


@hardware_flops_per_token.register
def _(cfg: MoEConfig, seq_len: int) -> float:
    """Model FLOPs with the k active experts replaced by what capacity dispatch computes.

    Per token and layer, with C = cfg.capacity(T) slots per expert and sequence of T tokens:
    the experts cost 6 * 3*D*F * E*C/T (every slot is computed, filled or not) instead of
    6 * 3*D*F * k, and the dispatch and combine einsums add 10 * E*C*D: forward 2 + 2,
    backward 2 for dispatch (its one-hot mask needs no gradient, only x does) and 4 for
    combine (the gradients of the expert outputs and of the gate weights). Routing (softmax,
    top-k, cumsum, one-hot compares) is elementwise work, not counted.
    """
    slots = cfg.n_experts * cfg.capacity(seq_len)
    experts = 6 * _expert_params(cfg) * slots / seq_len
    dispatch = 10 * slots * cfg.dim
    active = 6 * cfg.top_k * _expert_params(cfg)
    return flops_per_token(cfg, seq_len) + cfg.n_layers * (experts + dispatch - active)


def count_module_params(module: nn.Module) -> int:
    """Sum of numel over the module's unique parameters (shared ones once); works on meta."""
    return sum(p.numel() for p in module.parameters())


def recompute_flops_per_token(cfg: Any, seq_len: int, blocks: int) -> float:
    """Forward FLOPs per token run again in backward by activation checkpointing of
    ``blocks`` of the ``n_layers`` blocks.

    A block's forward is a third of its training FLOPs (forward 1, backward 2), i.e.
    (hardware FLOPs - 6 V D head) / (3 L); non-reentrant checkpointing stops recomputing
    once every tensor backward needs is regenerated (``torch.utils.checkpoint``'s early
    stop), so a dense block's last matmul (w2, 2 D F) does not run again. For a mixture of
    experts the whole block forward is counted (an upper bound: its last combine step is
    skipped too).
    """
    head = 6 * cfg.vocab_size * cfg.dim
    last = 0 if isinstance(cfg, MoEConfig) else 2 * cfg.dim * cfg.ffn_dim
    return blocks * ((hardware_flops_per_token(cfg, seq_len) - head) / (3 * cfg.n_layers) - last)
