"""What this code's Llama (models/llama.py) keeps for backward and holds at each phase of a
training step (bench/train/runner.py), in bytes per rank. Torch-free: the plan and the
projection import it.

Derivation, measurements and the symbols: docs/memory.md, "Per-rank memory"."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

CKPT_RNG = 5056  # bytes of torch.get_rng_state() a non-reentrant checkpoint keeps per block
PARTS = ("activations", "autocast", "logits", "gradients", "gathered", "transient")


@dataclass(frozen=True)
class Shape:
    """The sizes of a dense Llama that memory depends on."""

    dim: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    layers: int
    tied: bool = False
    gated: bool = True  # SwiGLU (models/llama.py); False: a plain two-matrix MLP

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


@dataclass(frozen=True)
class Step:
    """One rank's step: ``batch`` sequences of ``seq`` tokens (shared by the TP ranks), TP
    degree ``tp``, parameters sharded over ``shards`` ranks by FSDP2 (``fsdp``)."""

    shape: Shape
    batch: int
    seq: int
    mode: str = "fp32"  # fp32; bf16: autocast over fp32 parameters; bf16p: FSDP2 bf16 ones
    checkpointed: frozenset[int] = frozenset()
    tp: int = 1
    fsdp: bool = False
    shards: int = 1
    kernel: str = "cpu_flash"  # what SDPA saves: cpu_flash; CUDA's flash or efficient
    adamw: str = "for-loop"  # or fused

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    @property
    def act(self) -> int:
        """Bytes of an activation the matmuls make: 4 in fp32, 2 under bf16."""
        return 4 if self.mode == "fp32" else 2

    @property
    def stream(self) -> int:
        """Bytes of the residual stream: fp32 unless FSDP2 gathers bf16 parameters."""
        return 2 if self.mode == "bf16p" else 4


# ---- saved for backward, per token of one rank (sequence-parallel parts divided by t)
def norm_saved(s: Shape, mode: str) -> int:
    """RMSNorm's x, x * rsqrt and rsqrt (bf16p: x.float(), rsqrt, normed.type_as(x))."""
    return 6 * s.dim + 4 if mode == "bf16p" else 8 * s.dim + 4


def norm_output_saved(s: Shape, mode: str, consumers: int) -> int:
    """A norm's output as the linears after it save it (all-gathered under TP): shared in
    fp32 and bf16p, one bf16 copy per linear under autocast (it caches weight casts only)."""
    return 2 * s.dim * consumers if mode == "bf16" else (4 if mode == "fp32" else 2) * s.dim


def kv_heads_saved(s: Shape, tp: int) -> int:
    """Heads of SDPA's saved k and v on a rank: repeat_kv copies them to H / t, unless it is
    a view (no repeat, or one KV head per rank: a stride-0 expand)."""
    ht, kt = s.heads // tp, s.kv_heads // tp
    return kt if ht == kt or kt == 1 else ht


def attention_saved(s: Shape, mode: str, tp: int, kernel: str, seq: int) -> float:
    """Roped q, k, v, SDPA's out and fp32 logsumexp, wo's input (a copy of out on the CPU)."""
    a = 4 if mode == "fp32" else 2
    ht = s.heads // tp
    out_copy = ht if kernel == "cpu_flash" else 0
    rows = -(-seq // 32) * 32 / seq if kernel == "efficient" else 1.0
    return a * s.head_dim * (2 * ht + 2 * kv_heads_saved(s, tp) + out_copy) + 4 * ht * rows


def mlp_saved(s: Shape, mode: str, tp: int) -> float:
    """SwiGLU's w1 and w3 outputs, silu's output and the product (a plain MLP: two)."""
    return (4 if s.gated else 2) * (4 if mode == "fp32" else 2) * s.ffn / tp


def rope_saved(s: Shape, mode: str, seq: int) -> int:
    """Per block, not per token: cos and sin cast to bf16 (four casts; bf16p: FSDP2's two)."""
    return {"fp32": 0, "bf16": 4, "bf16p": 2}[mode] * seq * s.head_dim


def layer_saved_per_token(s: Shape, mode: str, tp: int, kernel: str, seq: int) -> float:
    """One un-checkpointed block's saved bytes per token of a rank, RoPE tables left out."""
    return (2 * norm_saved(s, mode) / tp + norm_output_saved(s, mode, 3)
            + norm_output_saved(s, mode, 2 if s.gated else 1)
            + attention_saved(s, mode, tp, kernel, seq) + mlp_saved(s, mode, tp))


def block_saved(r: Step) -> float:
    """Bytes one un-checkpointed block keeps for backward."""
    s = r.shape
    return (r.tokens * layer_saved_per_token(s, r.mode, r.tp, r.kernel, r.seq)
            + rope_saved(s, r.mode, r.seq))


def checkpoint_saved(r: Step) -> float:
    """A checkpointed block keeps its input (the residual stream; bf16p also its cos, sin)."""
    rope = 2 * r.seq * r.shape.head_dim if r.mode == "bf16p" else 0
    return r.tokens * r.stream * r.shape.dim / r.tp + rope + CKPT_RNG


def head_saved(r: Step) -> float:
    """The final norm and the head's input (all-gathered under TP), and the loss scalar."""
    s = r.shape
    return r.tokens * (norm_saved(s, r.mode) / r.tp + norm_output_saved(s, r.mode, 1)) + 4


def logprobs_saved(r: Step) -> float:
    """The cross-entropy's fp32 log-softmax output: the rank's vocabulary shard."""
    return 4 * r.tokens * r.shape.vocab / r.tp


def kept(r: Step) -> list[float]:
    """What each block keeps for backward, in order."""
    full, ckpt = block_saved(r), checkpoint_saved(r)
    return [ckpt if k in r.checkpointed else full for k in range(r.shape.layers)]


def block_matmul_params(s: Shape, tp: int) -> float:
    """Elements of one block's matmul weights on a TP rank."""
    hd = s.head_dim
    return (2 * s.dim * s.heads * hd + 2 * s.dim * s.kv_heads * hd
            + (3 if s.gated else 2) * s.dim * s.ffn) / tp


def casts_kept(r: Step) -> list[float]:
    """bf16 copies of each block's weights that autocast makes and backward keeps (bf16)."""
    cast = 2 * block_matmul_params(r.shape, r.tp) if r.mode == "bf16" else 0.0
    return [0.0 if k in r.checkpointed else cast for k in range(r.shape.layers)]


def head_cast(r: Step) -> float:
    """The head weight's bf16 copy (bf16)."""
    return 2 * r.shape.vocab * r.shape.dim / r.tp if r.mode == "bf16" else 0.0


def saved_for_backward(r: Step) -> dict[str, float]:
    """What one forward and the loss leave for backward, by kind (ids and targets left out:
    they are the batch)."""
    return {"activations": sum(kept(r)) + head_saved(r), "logits": logprobs_saved(r),
            "autocast": sum(casts_kept(r)) + head_cast(r)}


# ---- the peak over one step
def param_sizes(s: Shape, tp: int) -> list[float]:
    """fp32 bytes of each parameter on a TP rank, in model.parameters() order."""
    hd = s.head_dim
    block = [s.dim, s.dim * s.heads * hd / tp, s.dim * s.kv_heads * hd / tp,
             s.dim * s.kv_heads * hd / tp, s.heads * hd * s.dim / tp, s.dim,
             *[s.dim * s.ffn / tp] * (3 if s.gated else 2)]
    head = [] if s.tied else [s.vocab * s.dim / tp]
    return [4 * x for x in [s.vocab * s.dim / tp, *block * s.layers, s.dim, *head]]


def adamw_transient(sizes: list[float], impl: str) -> float:
    """Bytes AdamW allocates while it steps: the for-loop's denom of a parameter (two
    parameter-sized tensors) beside the previous one's; fused: none."""
    if impl == "fused":
        return 0.0
    return max(prev + 2 * p for prev, p in zip([0.0, *sizes], sizes, strict=False))


def phases(r: Step) -> dict[str, dict[str, float]]:
    """Bytes above the resident parameters and AdamW states at the peak of each phase of a
    step, by part (PARTS)."""
    s, t, n, a = r.shape, r.tp, r.tokens, r.act
    nv = n * s.vocab / t
    lp = t > 1  # loss parallelism
    sizes = param_sizes(s, t)
    blocks, casts = kept(r), casts_kept(r)
    acts, autocast = sum(blocks) + head_saved(r), sum(casts) + head_cast(r)
    grad = 2 if r.mode == "bf16p" else 4  # unsharded gradients: the parameters' dtype
    w = (2 if r.mode == "bf16p" else 4) if r.fsdp else 0  # gathered parameter bytes
    p_blk = block_matmul_params(s, t) + 2 * s.dim  # elements, the norms' weights too
    p_root = s.vocab * s.dim * (1 if s.tied else 2) / t + s.dim
    root = w * p_root
    out = {
        "forward_loss": {"activations": acts, "autocast": autocast, "gathered": root,
                         "logits": a * nv + (4 * nv if a == 2 else 0) + 4 * nv
                         + (4 * nv if lp else 0)},
        "backward_loss": {"activations": acts, "autocast": autocast, "gathered": root,
                          "logits": 12 * nv + ((4 * nv + 33 * n) if lp else 0)},
    }
    if r.mode == "bf16":  # the head's matmul inside autocast: its cache holds every cast
        every = 2 * block_matmul_params(s, t) * len(r.checkpointed)
        out["forward_head"] = {"activations": acts - 4, "autocast": autocast + every,
                               "gathered": root, "logits": a * nv}
    out["backward_blocks"] = _backward_blocks(r, blocks, casts, p_blk, root, grad, w)
    replicated = s.vocab * s.dim * (1 - 1 / t)  # TP: the embedding's gradient is [V, D]
    if r.fsdp:
        out["backward_end"] = {"gradients": sum(sizes) / r.shards,
                               "transient": 4 * p_root + grad * s.vocab * s.dim / t
                               + grad * replicated}
        out["optimizer"] = {"gradients": sum(sizes) / r.shards,
                            "transient": adamw_transient([x / r.shards for x in sizes],
                                                         r.adamw)}
        return out
    tied = 4 * s.vocab * s.dim if s.tied else 0  # the embedding's gradient, added to the head's
    out["backward_end"] = {"gradients": sum(sizes),  # the embedding's backward: full sequence
                           "transient": 4 * n * s.dim + 4 * replicated + tied}
    out["optimizer"] = {"gradients": sum(sizes),
                        "transient": 4 * replicated + adamw_transient(sizes, r.adamw)}
    return out


def _backward_blocks(r: Step, blocks: list[float], casts: list[float], p_blk: float,
                     root: float, grad: int, w: int) -> dict[str, float]:
    """The largest moment of the blocks' backward: block k in SwiGLU's mul backward, the
    blocks above it done (their gradients kept, sharded under FSDP2)."""
    s, t, n = r.shape, r.tp, r.tokens
    full = block_saved(r)
    below, casts_below = [0.0, *accumulate(blocks)], [0.0, *accumulate(casts)]
    cast = 2 * block_matmul_params(s, t) if r.mode == "bf16" else 0.0
    mlp_out = s.dim * s.ffn / t  # w2's weight gradient
    head_grad = grad * (s.vocab * s.dim / t + s.dim)
    done_grad = 4 * p_blk / r.shards if r.fsdp else 4 * p_blk
    best: dict[str, float] = {}
    for k in range(s.layers - 1, -1, -1):
        ckpt = k in r.checkpointed
        parts = {
            "activations": below[k] + full + (
                (blocks[k] if r.mode == "bf16p" else CKPT_RNG) if ckpt else 0),
            "autocast": casts_below[k] + cast,
            "gradients": head_grad + (s.layers - 1 - k) * done_grad
            + grad * mlp_out,
            "gathered": (root + w * p_blk * (2 if k > 0 else 1)
                         + (4 * p_blk if k < s.layers - 1 else 0)) if r.fsdp else 0.0,
            "transient": r.stream * n * s.dim / t + 2 * r.act * n * s.ffn / t
            - (2 * mlp_out if r.mode == "bf16" else 0),
        }
        if sum(parts.values()) > sum(best.values()):
            best = parts
    return best


def peak(r: Step) -> tuple[str, dict[str, float]]:
    """The phase of the step's peak and its parts (every part of PARTS, 0 where none)."""
    by_phase = phases(r)
    name = max(by_phase, key=lambda p: sum(by_phase[p].values()))
    return name, {k: by_phase[name].get(k, 0.0) for k in PARTS}
