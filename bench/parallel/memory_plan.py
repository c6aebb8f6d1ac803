"""Per-rank memory of a training run, predicted before it starts (``trnbench plan``, and the
check inside ``trnbench run``), and the smallest change of layout that makes it fit.

Derivation: docs/memory.md, "Per-rank memory"."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.backends import hardware
from bench.backends.hardware import Figure
from bench.inputs import config
from bench.inputs.config import ConfigError, RunConfig
from bench.parallel import activations
from bench.parallel.layout import Layout, check_model, checkpointed_blocks, for_world
from bench.projection.search import ACT_BYTES_PER_LAYER, GIB
from models import flops, registry
from models.configs import LlamaConfig, MoEConfig

if TYPE_CHECKING:
    from bench.backends.base import Backend

USABLE = 0.9  # share of a rank's memory the plan may fill (the projection's default)
AC_ORDER = ("none", "selective", "full")

# memory per rank: ranks per node, ranks per chip (NeuronCores at LNC=2; one per GPU)
NODES = {
    "trn1": (32, 2, "trn1.32xlarge: 16 chips of 2 NeuronCores"),
    "trn2": (64, 4, "trn2.48xlarge: 16 chips of 4 logical NeuronCores at LNC=2"),
    "h100": (8, 1, "8-GPU node"),
    "h200": (8, 1, "8-GPU node"),
    "a100": (8, 1, "8-GPU node"),
}
# the backends that run on each node kind, the first its default (TorchNeuron supports trn2
# and trn3; trn1 has the legacy XLA line only)
HARDWARE_BACKENDS = {"trn1": ("neuron-xla",), "trn2": ("neuron", "neuron-xla"),
                     "h100": ("cuda",), "h200": ("cuda",), "a100": ("cuda",)}


def backend_for(hardware: str | None, backend: str | None) -> str:
    """The backend a run on ``hardware`` resolves with: ``backend`` when it runs there
    (ConfigError naming the ones that do when not), else the hardware's default."""
    if hardware is None:
        return backend or "neuron"
    accepted = HARDWARE_BACKENDS[hardware]
    if backend is None:
        return accepted[0]
    if backend not in accepted:
        raise ConfigError("--backend", f"{backend} does not run on {hardware}; accepted: "
                          f"{', '.join(accepted)}")
    return backend


@dataclass(frozen=True)
class Prediction:
    """Bytes per rank of one layout at the peak of its step, by part."""

    parts: dict[str, float]
    usable: float
    phase: str  # the phase of the step at the peak (a key of activations.phases)
    saved: dict[str, float]  # what the forward leaves for backward (activations.saved_for_backward)
    basis: tuple[str, str]  # (measured | derived | estimate, what was or was not measured)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        return self.total <= self.usable

    def as_dict(self) -> dict[str, Any]:
        return {"bytes": dict(self.parts), "total_bytes": self.total,
                "usable_bytes": self.usable, "fits": self.fits, "peak_phase": self.phase,
                "saved_for_backward": dict(self.saved),
                "basis": {"label": self.basis[0], "detail": self.basis[1]}}


def kernels(cfg: RunConfig) -> tuple[str, str]:
    """(SDPA kernel, AdamW implementation) of ``cfg``'s backend: the CPU's flash kernel and
    for-loop AdamW; CUDA's flash (bf16, pinned) or memory-efficient (fp32) kernel and fused
    AdamW; Neuron and XLA assumed as CUDA's bf16."""
    if cfg.backend == "cpu":
        return "cpu_flash", "for-loop"
    return ("efficient" if cfg.backend == "cuda" and cfg.precision == "fp32" else "flash"), "fused"


def basis(cfg: RunConfig, layout: Layout) -> tuple[str, str]:
    """Whether the model of this run's memory was measured (docs/memory.md) and, if not,
    which of its terms are derived."""
    derived = []
    if cfg.backend == "cuda":
        derived.append("CUDA's SDPA kernel and fused AdamW, from their layouts")
    elif cfg.backend != "cpu":
        derived.append(f"{cfg.backend}: the compiler decides what is kept (taken as the eager "
                       "step with a flash kernel and fused AdamW)")
    if cfg.compile:
        derived.append("--compile: the compiler decides what is saved")
    if layout.parallel == "ddp" and layout.dp > 1:
        derived.append("DDP's gradient buckets")
    if layout.parallel != "ddp" and (layout.tp > 1 or cfg.param_dtype == "fp32"
                                     or layout.shards > 2):
        derived.append(f"FSDP2's buffers over {layout.shards} ranks, TP {layout.tp}, "
                       f"{cfg.param_dtype} parameters (measured: 2 ranks, bf16, no TP)")
    if not derived:
        return "measured", ("CPU eager step, cpu flash SDPA, for-loop AdamW: within 3% of the "
                            "CPU allocator's peak (docs/memory.md)")
    return "derived", "not measured: " + "; ".join(derived)


def step(cfg: RunConfig, layout: Layout, m: LlamaConfig) -> activations.Step:
    """The step of one rank of ``cfg`` under ``layout``, as the memory model takes it."""
    kernel, adamw = kernels(cfg)
    mode = "fp32" if cfg.precision == "fp32" else ("bf16p" if cfg.param_dtype == "bf16"
                                                   else "bf16")
    shape = activations.Shape(m.dim, m.ffn_dim, m.n_heads, m.n_kv_heads, m.vocab_size,
                              m.n_layers, m.tie_embeddings)
    return activations.Step(shape, cfg.batch, cfg.seq, mode,
                            frozenset(checkpointed_blocks(cfg.ac, m.n_layers)), layout.tp,
                            layout.parallel != "ddp", layout.shards, kernel, adamw)


def predict(cfg: RunConfig, layout: Layout, memory_per_rank: float) -> Prediction:
    """The per-rank bytes of ``cfg`` under ``layout`` at the peak of its step: parameters and
    AdamW states, DDP's buckets, and the parts alive at the peak phase."""
    m = registry.get(cfg.model).config
    if isinstance(m, MoEConfig):
        return _moe_estimate(cfg, layout, m, memory_per_rank)
    r = step(cfg, layout, m)
    p = sum(activations.param_sizes(r.shape, r.tp))  # fp32 bytes of a TP rank's parameters
    parts = {"parameters": p / layout.shards, "optimizer": 2 * p / layout.shards}
    if layout.parallel == "ddp" and layout.dp > 1:
        parts["ddp_buckets"] = p
    phase, at_peak = activations.peak(r)
    return Prediction(parts | at_peak, USABLE * memory_per_rank, phase,
                      activations.saved_for_backward(r), basis(cfg, layout))


def _moe_estimate(cfg: RunConfig, layout: Layout, m: MoEConfig,
                  memory_per_rank: float) -> Prediction:
    """A mixture of experts (no TP): every part at once, activations by the 34 b T D
    constant of Korthikanti et al.; the derivation does not cover its routing tensors."""
    s, tokens = layout.shards, cfg.batch * cfg.seq
    p = flops.param_count(m)
    root = m.vocab_size * m.dim * (1 if m.tie_embeddings else 2)
    block = (p - root) / m.n_layers
    act = 2 if cfg.precision == "bf16" else 4
    parts = {"parameters": 4 * p / s, "gradients": 4 * p / s, "optimizer": 8 * p / s}
    if layout.parallel == "ddp" and layout.dp > 1:
        parts["ddp_buckets"] = 4 * p
    if layout.parallel != "ddp":
        parts["gathered"] = (2 if cfg.param_dtype == "bf16" else 4) * (2 * block + root)
    if cfg.precision == "bf16" and cfg.param_dtype == "fp32":
        parts["autocast"] = 2 * (p - (0 if m.tie_embeddings else m.vocab_size * m.dim))
    layer = ACT_BYTES_PER_LAYER * act / 2 * tokens * m.dim
    resid = 2 if cfg.param_dtype == "bf16" else 4
    ckpt = len(checkpointed_blocks(cfg.ac, m.n_layers))
    parts["activations"] = ((m.n_layers - ckpt) * layer + ckpt * resid * tokens * m.dim
                            + (layer if ckpt else 0))
    parts["logits"] = tokens * m.vocab_size * (act + 4 + (4 if act == 2 else 0))
    return Prediction(parts, USABLE * memory_per_rank, "all parts at once",
                      {"activations": parts["activations"], "logits": 4 * tokens * m.vocab_size,
                       "autocast": parts.get("autocast", 0.0)},
                      ("estimate", "mixture of experts: not covered by the derivation "
                       "(docs/memory.md); 34 b T D bytes per layer (Korthikanti et al. 2022)"))


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` in ascending order (up to sqrt(n) steps, not n)."""
    low = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return low + [n // d for d in reversed(low) if d * d != n]


def _variants(cfg: RunConfig, per_node: int) -> list[tuple[int, RunConfig]]:
    """Layouts one may try instead of ``cfg``, each with the number of flags it changes."""
    out = []
    tps = divisors(per_node)
    parallels = [cfg.parallel] + [p for p in ("fsdp", "ddp") if p != cfg.parallel]
    dtypes = [cfg.param_dtype] + (["bf16", "fp32"] if cfg.precision == "bf16" else [])
    for tp in tps:
        for ac in AC_ORDER:
            for parallel in parallels:
                for dtype in dict.fromkeys(dtypes):
                    v = dataclasses.replace(cfg, tp=tp, ac=ac, parallel=parallel,
                                            param_dtype=dtype, dp_shard=0 if parallel !=
                                            "hsdp" else cfg.dp_shard)
                    changed = _changes(v, cfg)
                    if changed:
                        out.append((changed, v))
    return out


def flags(cfg: RunConfig, base: RunConfig) -> str:
    return " ".join(f"{config.OPTIONS[f].flag} {getattr(cfg, f)}"
                    for f in ("parallel", "param_dtype", "tp", "ac")
                    if getattr(cfg, f) != getattr(base, f))


def _valid(cfg: RunConfig, per_node: int, nnodes: int) -> Layout | None:
    try:
        check_model(cfg, registry.get(cfg.model).config)
        return for_world(cfg, per_node, nnodes)
    except ConfigError:
        return None


def alternatives(cfg: RunConfig, per_node: int, nnodes: int, memory_per_rank: float,
                 fit: bool = True) -> list[tuple[RunConfig, Prediction]]:
    """Valid layouts differing from ``cfg`` in --tp/--ac/--parallel/--param-dtype that fit
    (``fit``) or do not, the fewest changed flags first, then the least TP, the least
    checkpointing and the least memory (fitting) or the least memory (not fitting: the
    nearest to fitting)."""
    found = []
    for changed, v in _variants(cfg, per_node):
        layout = _valid(v, per_node, nnodes)
        if layout is None:
            continue
        pred = predict(v, layout, memory_per_rank)
        if pred.fits == fit:
            found.append((changed, v.tp, AC_ORDER.index(v.ac), pred.total, v, pred))
    found.sort(key=lambda x: (x[0], x[1], x[2], x[3]) if fit else (x[0], x[3]))
    return [(v, pred) for *_, v, pred in found]


def refusal(cfg: RunConfig, pred: Prediction, per_node: int, nnodes: int,
            memory: Figure) -> str:
    """The one-line reason a layout that does not fit is refused, with where the memory per
    rank came from and what would fit."""
    need = (f"needs {pred.total / GIB:,.1f} GiB per rank of {pred.usable / GIB:,.1f} GiB "
            f"usable ({USABLE:.0%} of {memory.value / GIB:,.1f} GiB per rank, {memory.source})")
    fits = alternatives(cfg, per_node, nnodes, memory.value)
    if fits:
        fewest = fits[0][0]
        best = [flags(v, cfg) for v, _ in fits if _changes(v, cfg) == _changes(fewest, cfg)]
        return f"{need}: try {' or '.join(best[:2])}"
    nothing = (f"{need}; no --tp/--ac/--parallel/--param-dtype setting fits on "
               f"{per_node * nnodes} ranks")
    for more in (nnodes * 2**k for k in range(1, 11)):  # nodes like these
        fits = alternatives(cfg, per_node, more, memory.value)
        if fits:
            return f"{nothing}: try --nnodes {more} {flags(fits[0][0], cfg)}"
    return f"{nothing}: shorten --seq or --batch"


def _changes(v: RunConfig, cfg: RunConfig) -> int:
    return sum(getattr(v, f) != getattr(cfg, f) for f in ("tp", "ac", "parallel",
                                                          "param_dtype"))


def hardware_memory_per_rank(key: str) -> tuple[Figure, int]:
    """(memory per rank, ranks per node) of a known node, from the chip's datasheet memory, in
    the datasheet's unit: GiB for Trainium (96 GiB), decimal GB for GPUs (an H100's 80 GB; NVML
    reads 79.6 GiB on an H100 80GB HBM3, which is what ``trnbench run`` checks against)."""
    if key not in NODES:
        raise ConfigError("--hardware", f"unknown hardware {key!r}; accepted: "
                          f"{', '.join(NODES)}")
    per_node, per_chip, _ = NODES[key]
    chip = hardware.DEVICES[key].memory_bytes
    size = (f"{chip.value / GIB:,.4g} GiB" if chip.value % GIB == 0 else
            f"{chip.value / 1e9:,.4g} GB")
    over = f" / {per_chip} NeuronCores" if per_chip > 1 else ""
    return Figure(chip.value / per_chip, "B", chip.label,
                  f"{key} {chip.label}: {size} per chip{over}"), per_node


RANK_MEMORY_ENV = "TRNBENCH_RANK_MEMORY_GIB"


def rank_memory(backend: type[Backend], per_node: int) -> Figure:
    """The memory per rank of a run on ``backend`` with ``per_node`` ranks per node:
    ``TRNBENCH_RANK_MEMORY_GIB`` when set, else what the backend reads (MemoryUnknown)."""
    override = os.environ.get(RANK_MEMORY_ENV)
    if not override:
        return backend.rank_memory(per_node)
    try:
        gib = float(override)
    except ValueError:
        gib = 0.0
    if not (gib > 0 and math.isfinite(gib)):
        raise ConfigError(RANK_MEMORY_ENV, f"must be a number of GiB > 0, got {override!r}")
    return given_memory(gib, RANK_MEMORY_ENV)


def given_memory(gib: float, source: str) -> Figure:
    """Memory per rank that the user gave (a flag or the environment), labelled ``given``."""
    return Figure(gib * GIB, "B", "given", source)


def check_run(cfg: RunConfig, backend: type[Backend], per_node: int,
              nnodes: int) -> Prediction | None:
    """``trnbench run``'s check before anything starts: ConfigError("plan", ...) when the run
    cannot fit in the memory per rank (``rank_memory``), the prediction when it fits, None
    when the memory per rank is unknown (no check; one dim line on stderr says why)."""
    from rich.markup import escape

    from bench.report import console

    layout = for_world(cfg, per_node, nnodes)  # a layout error comes first, known memory or not
    try:
        memory = rank_memory(backend, per_node)
    except hardware.MemoryUnknown as e:
        console.stderr.print(f"[dim]memory not checked: {escape(str(e))}[/dim]")
        return None
    pred = predict(cfg, layout, memory.value)
    if not pred.fits:
        raise ConfigError("plan", refusal(cfg, pred, per_node, nnodes, memory))
    return pred


def record_block(cfg: RunConfig, layout: Layout) -> dict[str, Any]:
    """The record's predicted memory (per rank, without the usable limit): the peak and its
    parts, its phase and the model's basis."""
    pred = predict(cfg, layout, 0.0)
    return {"predicted_peak_bytes": round(pred.total),  # bytes: an integer, as typed
            "predicted": {"bytes": pred.parts, "peak_phase": pred.phase,
                          "basis": pred.basis[0]}}
