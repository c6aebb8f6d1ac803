"""Model shapes as plain dataclasses, free of torch: the registry, FLOP counts and the
projection read them without importing the model code (``models/llama.py``, ``models/moe.py``
build the modules and re-export these classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class LlamaConfig:
    """Shape of a dense Llama decoder."""

    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab_size: int
    max_seq_len: int
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        sizes = ("dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim", "vocab_size", "max_seq_len")
        for name in sizes:
            if getattr(self, name) <= 0:
                raise ValueError(f"LlamaConfig.{name} must be positive, got {getattr(self, name)}")
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


@dataclass(frozen=True)
class MoEConfig(LlamaConfig):
    """A Llama shape whose MLP is ``n_experts`` SwiGLU experts of width ``ffn_dim`` each,
    ``top_k`` of them active per token."""

    n_experts: int = 8
    top_k: int = 2
    capacity_factor: float = 1.25
    aux_loss_coef: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(
                f"top_k ({self.top_k}) must be between 1 and n_experts ({self.n_experts})"
            )
        if not self.capacity_factor > 0:
            raise ValueError(f"capacity_factor must be positive, got {self.capacity_factor}")
        if not self.aux_loss_coef >= 0:
            raise ValueError(f"aux_loss_coef must be >= 0, got {self.aux_loss_coef}")

    def capacity(self, seq_len: int) -> int:
        """Slots per expert per sequence: min(T, ceil(capacity_factor * top_k * T / n_experts)).

        Integer arithmetic on the decimal capacity factor (1.1 is 11/10), so that exact
        products do not round up through float error.
        """
        cf = Fraction(str(self.capacity_factor))
        slots = -(-cf.numerator * self.top_k * seq_len // (cf.denominator * self.n_experts))
        return min(seq_len, slots)
