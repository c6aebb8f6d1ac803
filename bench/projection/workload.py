"""The workload: total training FLOPs and the model shape the memory plan works with.

Derivation: docs/projection.md, "Training FLOPs"."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.backends.hardware import Figure
from bench.inputs.config import ConfigError
from bench.projection import presets


@dataclass(frozen=True)
class Shape:
    """What the plan and the communication model need to know about a model."""

    name: str
    params: float  # all parameters (memory)
    matmul_params: float  # N of 6N+12LHQT (active per token)
    n_layers: int
    dim: int
    n_heads: int
    head_dim: int
    seq_len: int  # default sequence length
    label: str
    source: str
    n_experts: int = 1  # > 1: a mixture of experts (params counts all, matmul_params the active)
    top_k: int = 1  # experts per token
    expert_params: float = 0.0  # of params: all experts of all layers, L E 3 D F
    n_kv_heads: int = 0  # 0: as many as n_heads
    ffn_dim: int = 0  # the MLP's width; 0: 4 D
    gated: bool = False  # a gated MLP (SwiGLU: three D x F matrices) or a plain one (two)

    @property
    def dense_params(self) -> float:
        """Parameters that every rank of a DP group holds: all but the experts."""
        return self.params - self.expert_params

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def ffn(self) -> int:
        return self.ffn_dim or 4 * self.dim

    def flops_per_token(self, seq_len: int) -> float:
        """6 N + 12 L H Q T (PaLM appendix B)."""
        return 6 * self.matmul_params + 12 * self.n_layers * self.n_heads * self.head_dim * seq_len


@dataclass(frozen=True)
class Workload:
    title: str
    flops: Figure
    tokens: Figure
    seq_len: Figure
    shape: Shape
    shape_label: str  # how the shape was chosen: registry, paper, user, assumption
    shape_source: str
    attention_counted: bool

    @property
    def flops_per_token(self) -> float:
        return self.flops.value / self.tokens.value


def shape_names() -> list[str]:
    from models import registry

    return [*registry.names(), *presets.SHAPES]


def get_shape(name: str, field: str) -> Shape:
    """A registry model or a projection shape preset; ConfigError naming ``field`` if unknown."""
    if name in presets.SHAPES:
        s = presets.SHAPES[name]
        return Shape(name, s["params"], s["matmul_params"], s["n_layers"], s["dim"],
                     s["n_heads"], s["head_dim"], s["seq_len"], s["label"], s["source"])
    from models import flops, registry

    try:
        spec = registry.get(name)
    except registry.UnknownModelError:
        raise ConfigError(field, f"unknown model {name!r}; accepted: "
                          f"{', '.join(shape_names())}") from None
    c = spec.config
    experts, top_k = getattr(c, "n_experts", 1), getattr(c, "top_k", 1)
    return Shape(name, flops.param_count(c), flops.matmul_param_count(c), c.n_layers, c.dim,
                 c.n_heads, c.head_dim, spec.seq_len, "registry",
                 f"models/registry.py: {spec.description}, exact counts", experts, top_k,
                 c.n_layers * experts * 3 * c.dim * c.ffn_dim if experts > 1 else 0.0,
                 n_kv_heads=c.n_kv_heads, ffn_dim=c.ffn_dim, gated=True)


def _positive(value: float | None, field: str) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(field, f"must be a number > 0, got {value}")
    return value


def _seq(seq: float | None, shape: Shape) -> Figure:
    if seq is None:
        return Figure(shape.seq_len, "tokens", shape.label, f"{shape.name} default")
    if seq != int(seq) or seq < 1:
        raise ConfigError("--seq", f"must be an integer >= 1, got {seq}")
    return Figure(int(seq), "tokens", "user", "--seq")


def _nearest_shape(params: float) -> str:
    """The registry/preset shape closest to ``params`` in log scale."""
    return min(shape_names(), key=lambda n: abs(math.log(get_shape(n, "--shape").params / params)))


def resolve(*, model: str | None = None, workload: str | None = None,
            params: float | None = None, flops: float | None = None,
            tokens: float | None = None, seq: float | None = None,
            shape: str | None = None) -> Workload:
    """The workload from exactly one of ``model``, ``workload``, ``params`` or ``flops``."""
    for value, field in ((params, "--params"), (flops, "--flops"), (tokens, "--tokens")):
        _positive(value, field)
    given = [f for f, v in (("--model", model), ("--workload", workload), ("--params", params),
                            ("--flops", flops)) if v is not None]
    if len(given) != 1:
        raise ConfigError("--workload", "give exactly one of --model NAME --tokens D, "
                          "--params N --tokens D, --flops C or --workload NAME (presets: "
                          f"{', '.join(presets.WORKLOADS)})" + (f"; got {', '.join(given)}"
                                                                if given else ""))
    if model is not None:
        if shape is not None:
            raise ConfigError("--shape", "applies to --flops, --params and --workload; "
                              "--model already fixes the shape")
        if tokens is None:
            raise ConfigError("--tokens", "required with --model (training tokens D)")
        s = get_shape(model, "--model")
        t = _seq(seq, s)
        fpt = s.flops_per_token(t.value)
        return Workload(
            f"{model}, {tokens:.3g} tokens",
            Figure(fpt * tokens, "FLOP", "derived", f"(6N + 12LHQT) x D, N={s.matmul_params:,.0f}"),
            Figure(tokens, "tokens", "user", "--tokens"), t, s, s.label, s.source, True)
    if params is not None:
        if tokens is None:
            raise ConfigError("--tokens", "required with --params (training tokens D)")
        name = shape or _nearest_shape(params)
        s = get_shape(name, "--shape")
        note = ("--shape" if shape else "assumption: nearest shape to N in the registry") + \
            "; sets layers, width and heads for activations and TP traffic, N sets the weights"
        s = Shape(s.name, params, params, s.n_layers, s.dim, s.n_heads, s.head_dim, s.seq_len,
                  "user", note, n_kv_heads=s.n_kv_heads, ffn_dim=s.ffn_dim, gated=s.gated)
        t = _seq(seq, s)
        return Workload(
            f"N={params:.3g}, {tokens:.3g} tokens",
            Figure(6 * params * tokens, "FLOP", "derived", "6 N D"),
            Figure(tokens, "tokens", "user", "--tokens"), t, s,
            "user" if shape else "assumption", note, False)
    if tokens is not None:
        raise ConfigError("--tokens", "applies to --model and --params; with --flops or "
                          "--workload D follows from C and the shape")
    if workload is not None:
        try:
            w = presets.WORKLOADS[workload]
        except KeyError:
            raise ConfigError("--workload", f"unknown workload {workload!r}; accepted: "
                              f"{', '.join(presets.WORKLOADS)}") from None
        c, title, preset_shape = w["flops"], w["title"], w["shape"]
    else:
        c, title, preset_shape = Figure(flops, "FLOP", "user", "--flops"), f"{flops:.3g} FLOP", None
    if shape is not None:
        s = get_shape(shape, "--shape")
        label, source = "user", f"--shape ({s.source})"
    elif preset_shape is not None:
        s = get_shape(preset_shape, "--shape")
        label, source = s.label, s.source
    else:
        s = get_shape(presets.DEFAULT_SHAPE, "--shape")
        label, source = "assumption", presets.DEFAULT_SHAPE_SOURCE
    t = _seq(seq, s)
    d = c.value / s.flops_per_token(t.value)
    return Workload(title, c, Figure(d, "tokens", "derived", "C / (6N + 12LHQT) of the shape"),
                    t, s, label, source, True)
