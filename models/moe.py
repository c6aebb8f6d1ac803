"""Mixture-of-experts decoder with static-shape, capacity-based routing.

Derivation: docs/models.md, "Mixture of experts"."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.configs import MoEConfig
from models.llama import Llama


class Routing(NamedTuple):
    """Static-shape routing of one batch (see the module docstring)."""

    dispatch: torch.Tensor  # [B, T, E, C] bool: token t holds slot c of expert e
    gates: torch.Tensor  # [B, T, E] fp32: renormalised top-k weights, 0 off the top k
    aux_loss: torch.Tensor  # scalar fp32: n_experts * sum_e f_e * P_e
    dropped_fraction: torch.Tensor  # scalar fp32: dropped assignments / (B * T * top_k)


def route(logits: torch.Tensor, top_k: int, capacity: int) -> Routing:
    """Top-k routing of router ``logits`` [B, T, E] into ``capacity`` slots per expert and
    sequence, with first choices ranked before second choices."""
    b, t, n_experts = logits.shape
    probs = logits.float().softmax(-1)
    top = probs.topk(top_k, dim=-1).indices  # [B, T, k]
    experts = torch.arange(n_experts, device=logits.device)
    choice = top.transpose(1, 2).unsqueeze(-1) == experts  # [B, k, T, E], one True per row
    rank = choice.flatten(1, 2).cumsum(1, dtype=torch.int32).view(b, top_k, t, n_experts)
    slot = (rank * choice).sum(1)  # [B, T, E]: 1-based rank of t in e, 0 where e not chosen
    dispatch = slot.unsqueeze(-1) == torch.arange(1, capacity + 1, device=logits.device)
    selected = choice.any(1)
    gates = probs * selected
    gates = gates / gates.sum(-1, keepdim=True)
    f = choice.float().mean((0, 1, 2))
    aux_loss = n_experts * (f * probs.mean((0, 1))).sum()
    dropped = 1 - dispatch.sum(dtype=torch.float32) / (b * t * top_k)
    return Routing(dispatch, gates, aux_loss, dropped)


class ExpertLinear(nn.Module):
    """``n_experts`` bias-free linear maps applied slot-wise: [B, E, C, in] -> [B, E, C, out],
    weight [E, out, in] (each expert's matrix laid out as in ``nn.Linear``)."""

    def __init__(self, n_experts: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_experts, out_dim, in_dim))
        nn.init.normal_(self.weight, mean=0.0, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("becd,efd->becf", x, self.weight)


class MoEFeedForward(nn.Module):
    """Router + ``n_experts`` SwiGLU experts w2(silu(w1 x) * w3 x) with capacity dispatch.

    Keeps the aux loss and dropped fraction of its last forward in ``last_aux_loss`` and
    ``last_dropped_fraction``.
    """

    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.router = nn.Linear(cfg.dim, cfg.n_experts, bias=False)
        self.w1 = ExpertLinear(cfg.n_experts, cfg.dim, cfg.ffn_dim)
        self.w3 = ExpertLinear(cfg.n_experts, cfg.dim, cfg.ffn_dim)
        self.w2 = ExpertLinear(cfg.n_experts, cfg.ffn_dim, cfg.dim)
        self.last_aux_loss: torch.Tensor | None = None
        self.last_dropped_fraction: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = route(self.router(x), self.cfg.top_k, self.cfg.capacity(x.shape[1]))
        self.last_aux_loss = r.aux_loss
        self.last_dropped_fraction = r.dropped_fraction.detach()
        dispatch = r.dispatch.to(x.dtype)
        xe = torch.einsum("btec,btd->becd", dispatch, x)
        ye = self.w2(F.silu(self.w1(xe)) * self.w3(xe))
        combine = dispatch * r.gates.to(x.dtype).unsqueeze(-1)
        return torch.einsum("btec,becd->btd", combine, ye)


class MoETransformer(Llama):
    """Decoder-only MoE: ``forward(tokens [B, T]) -> logits [B, T, vocab_size]``, plus
    ``aux_loss()`` and ``routing_stats()`` of the last forward."""

    cfg: MoEConfig

    def make_feed_forward(self, cfg: MoEConfig) -> nn.Module:
        return MoEFeedForward(cfg)

    @torch.no_grad()
    def init_weights(self) -> None:
        """As ``Llama.init_weights`` (router ~ N(0, 0.02), expert w2 ~ N(0, 0.02 /
        sqrt(2 * n_layers))), and expert w1, w3 ~ N(0, 0.02)."""
        super().init_weights()
        for layer in self.layers:
            nn.init.normal_(layer.feed_forward.w1.weight, mean=0.0, std=0.02)
            nn.init.normal_(layer.feed_forward.w3.weight, mean=0.0, std=0.02)

    def aux_loss(self) -> torch.Tensor:
        """Load-balancing loss of the last forward, mean over layers (unweighted)."""
        return torch.stack([layer.feed_forward.last_aux_loss for layer in self.layers]).mean()

    def routing_stats(self) -> dict[str, torch.Tensor]:
        """Scalars of the last forward, mean over layers, detached, on the model's device:
        ``dropped_fraction`` (assignments over capacity) and ``aux_loss``."""
        dropped = [layer.feed_forward.last_dropped_fraction for layer in self.layers]
        return {"dropped_fraction": torch.stack(dropped).mean(),
                "aux_loss": self.aux_loss().detach()}


def build(cfg: MoEConfig, device: str | torch.device | None = None) -> MoETransformer:
    """Construct an MoETransformer directly on ``device``; ``"meta"`` allocates no storage."""
    if device is None:
        return MoETransformer(cfg)
    with torch.device(device):
        return MoETransformer(cfg)
