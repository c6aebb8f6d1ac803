"""Synthetic, seeded, learnable token data, generated before the timed window.

Each sequence follows a fixed random bigram map: x[t+1] = perm[x[t]] with probability
1 - noise, else a uniform random token. A model can learn the map from embeddings
alone, so the loss falls within a few dozen steps; its floor is about
noise * ln(V) + H(noise) nats. Every token is real (no padding).
"""

from __future__ import annotations

import torch

NOISE = 0.1


def bigram_sequences(
    n: int, length: int, vocab: int, seed: int, noise: float = NOISE
) -> torch.Tensor:
    """``n`` sequences of ``length`` tokens (int64, CPU) following one seeded bigram map."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(vocab, generator=gen)
    out = torch.empty(n, length, dtype=torch.long)
    out[:, 0] = torch.randint(vocab, (n,), generator=gen)
    rand = torch.randint(vocab, (n, length), generator=gen)
    keep = torch.rand(n, length, generator=gen) >= noise
    for t in range(1, length):
        out[:, t] = torch.where(keep[:, t], perm[out[:, t - 1]], rand[:, t])
    return out


class SyntheticBatches:
    """A pool of (inputs, targets) batches on the device, cycled by index; no work per step."""

    def __init__(self, batch: int, seq: int, vocab: int, seed: int, device: torch.device,
                 pool: int = 8, shard: tuple[int, int] = (0, 1)):
        """``shard = (index, count)``: this rank's ``batch`` sequences of each global batch of
        ``count x batch`` (one seeded stream, so the shards of count ranks together are the
        batches of one rank with ``count x batch``)."""
        index, count = shard
        tokens = bigram_sequences(pool * count * batch, seq + 1, vocab, seed)
        tokens = tokens.view(pool, count * batch, seq + 1)[:, index * batch:(index + 1) * batch]
        self._batches = [
            (t[:, :-1].contiguous().to(device), t[:, 1:].contiguous().to(device)) for t in tokens
        ]

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._batches[step % len(self._batches)]
