"""Named model configurations with default run shapes, from ``tiny`` (tests) to Llama 3 405B.

The 1b/3b entries are the Llama 3.2 1B/3B shapes (tied embeddings) and the llama3-* entries
the Llama 3.1 8B/70B/405B shapes (Llama 3 Herd, arXiv:2407.21783, Table 3; parameter counts
match the Hugging Face checkpoints). 125m and 350m are GPT-3-sized Llama-style shapes.
The mixture-of-experts entries (``models/moe.py``) follow the dense ones: ``moe-tiny`` for
tests and ``mixtral-8x7b``, the Mixtral 8x7B shape (Jiang et al. 2024, arXiv:2401.04088;
46,702,792,704 parameters as in the Hugging Face checkpoint, 12.9B active per token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.configs import LlamaConfig, MoEConfig

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A named model and the sequence length and per-device batch size a run uses by default."""

    name: str
    config: LlamaConfig  # or its subclass MoEConfig
    seq_len: int
    batch_size: int
    description: str


class UnknownModelError(ValueError):
    """A model name that is not in the registry."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model {name!r}; accepted names: {', '.join(names())}")
        self.name = name


# Shared by the GPT-3-sized shapes and by the Llama 3 shapes (Llama 3 vocabulary, 128K context).
_SMALL = {"vocab_size": 32000, "max_seq_len": 2048}
_LLAMA3 = {"vocab_size": 128256, "max_seq_len": 131072}

_TINY = LlamaConfig(
    dim=128, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=384, vocab_size=512, max_seq_len=256
)
_125M = LlamaConfig(dim=768, n_layers=12, n_heads=12, n_kv_heads=12, ffn_dim=2048, **_SMALL)
_350M = LlamaConfig(dim=1024, n_layers=24, n_heads=16, n_kv_heads=16, ffn_dim=2816, **_SMALL)
_1B = LlamaConfig(
    dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_dim=8192, tie_embeddings=True, **_LLAMA3
)
_3B = LlamaConfig(
    dim=3072, n_layers=28, n_heads=24, n_kv_heads=8, ffn_dim=8192, tie_embeddings=True, **_LLAMA3
)
_8B = LlamaConfig(dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, ffn_dim=14336, **_LLAMA3)
_70B = LlamaConfig(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, ffn_dim=28672, **_LLAMA3)
_405B = LlamaConfig(dim=16384, n_layers=126, n_heads=128, n_kv_heads=8, ffn_dim=53248, **_LLAMA3)
_MOE_TINY = MoEConfig(
    dim=128, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=256, vocab_size=512, max_seq_len=256,
    n_experts=4, top_k=2,
)
_MIXTRAL_8X7B = MoEConfig(
    dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, ffn_dim=14336, vocab_size=32000,
    max_seq_len=32768, rope_theta=1e6, n_experts=8, top_k=2,
)

_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("tiny", _TINY, 64, 8, "tiny GQA Llama for tests"),
        ModelSpec("125m", _125M, 512, 8, "GPT-3 Small sized Llama"),
        ModelSpec("350m", _350M, 2048, 4, "GPT-3 Medium sized Llama"),
        ModelSpec("1b", _1B, 2048, 8, "Llama 3.2 1B shape"),
        ModelSpec("3b", _3B, 2048, 4, "Llama 3.2 3B shape"),
        ModelSpec("llama3-8b", _8B, 8192, 1, "Llama 3.1 8B shape"),
        ModelSpec("llama3-70b", _70B, 8192, 1, "Llama 3.1 70B shape"),
        ModelSpec("llama3-405b", _405B, 8192, 1, "Llama 3.1 405B shape"),
        ModelSpec("moe-tiny", _MOE_TINY, 64, 8, "tiny 4-expert top-2 MoE for tests"),
        ModelSpec("mixtral-8x7b", _MIXTRAL_8X7B, 4096, 1, "Mixtral 8x7B shape, 8 experts top-2"),
    )
}


def names() -> list[str]:
    """Registered model names: dense smallest first, then mixture-of-experts."""
    return list(_SPECS)


def get(name: str) -> ModelSpec:
    """The spec registered as ``name``; raises UnknownModelError listing the accepted names."""
    try:
        return _SPECS[name]
    except KeyError:
        raise UnknownModelError(name) from None


def build(name_or_spec: str | ModelSpec, device: str | torch.device | None = None) -> nn.Module:
    """Build the named (or given) model on ``device``; ``"meta"`` allocates no storage."""
    from models import llama, moe  # torch: only when a model is built

    spec = get(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    if isinstance(spec.config, MoEConfig):
        return moe.build(spec.config, device)
    return llama.build(spec.config, device)
