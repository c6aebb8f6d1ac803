"""The workload: total training FLOPs and the model shape the memory plan works with.

Derivation: docs/projection.md, "Training FLOPs"."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
    head_params: float = 0.0  # of matmul_params: the output head, V D (0: not known)
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

    def layer_flops(self, seq_len: int) -> float:
        """Training FLOPs per token of one layer: the model's less the head, over L."""
        return (self.flops_per_token(seq_len) - self.head_flops) / self.n_layers

    @property
    def head_flops(self) -> float:
        """Training FLOPs per token of the output head, 6 V D (on the last pipeline stage)."""
        return 6 * self.head_params

    def attention_forward_flops(self, seq_len: int) -> float:
        """Forward FLOPs per token of one layer's QK^T and AV, 4 H Q T: what selective
        recompute computes again."""
        return 4 * self.n_heads * self.head_dim * seq_len


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


MLPS = {"swiglu": 3, "geglu": 3, "gelu": 2, "relu": 2, "squared-relu": 2}  # matrices D x F
SHAPE_KEYS = ("layers", "dim", "heads", "kv_heads", "ffn", "vocab", "mlp", "seq")
CUSTOM_SEQ = 8192  # a custom shape's sequence length unless seq= or --seq gives one


def llama_ffn(dim: int) -> int:
    """The SwiGLU width of Llama's reference code: 2/3 of 4 D, rounded up to a multiple of
    256 (``multiple_of``; Touvron et al. 2023, arXiv:2302.13971)."""
    hidden = 8 * dim // 3
    return -(-hidden // 256) * 256


def custom_shape(spec: str, field: str = "--shape", *, name: str = "custom",
                 label: str = "user", source: str | None = None) -> Shape:
    """A shape from ``layers=L,dim=D,heads=H[,kv_heads=K,ffn=F,vocab=V,mlp=M,seq=T]``:
    kv_heads defaults to heads, mlp to swiglu, ffn to 4 D (plain MLP) or the Llama rule
    (gated), vocab to 0 (no head counted), seq to CUSTOM_SEQ; untied embeddings."""
    values: dict[str, str] = {}
    for part in spec.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in SHAPE_KEYS or key in values:
            raise ConfigError(field, f"expected key=value pairs of {', '.join(SHAPE_KEYS)} "
                              f"(layers, dim, heads required), got {part.strip()!r}")
        values[key] = value.strip()
    mlp = values.pop("mlp", "swiglu")
    if mlp not in MLPS:
        raise ConfigError(field, f"mlp must be one of {', '.join(MLPS)}, got {mlp!r}")
    sizes: dict[str, int] = {}
    for key, value in values.items():
        try:
            number = float(value)
        except ValueError:
            number = 0.0
        if number != int(number) or number < (0 if key == "vocab" else 1):
            raise ConfigError(field, f"{key} must be a whole number >= "
                              f"{0 if key == 'vocab' else 1}, got {value!r}")
        sizes[key] = int(number)
    missing = [k for k in ("layers", "dim", "heads") if k not in sizes]
    if missing:
        raise ConfigError(field, f"needs {', '.join(missing)} (layers=L,dim=D,heads=H)")
    d, h = sizes["dim"], sizes["heads"]
    kv = sizes.get("kv_heads", h)
    if d % h or h % kv:
        raise ConfigError(field, f"heads must divide dim and kv_heads must divide heads, got "
                          f"dim={d}, heads={h}, kv_heads={kv}")
    gated = MLPS[mlp] == 3
    ffn = sizes.get("ffn", llama_ffn(d) if gated else 4 * d)
    q = d // h
    layer = 2 * d * h * q + 2 * d * kv * q + MLPS[mlp] * d * ffn
    vocab, layers = sizes.get("vocab", 0), sizes["layers"]
    matmul = layers * layer + vocab * d
    params = matmul + vocab * d + layers * 2 * d + d  # embedding, norms
    text = f"layers={layers},dim={d},heads={h},kv_heads={kv},ffn={ffn},vocab={vocab},mlp={mlp}"
    if "seq" in sizes:
        text += f",seq={sizes['seq']}"
    return Shape(name, params, matmul, layers, d, h, q, sizes.get("seq", CUSTOM_SEQ), label,
                 source or f"{field} {text}", n_kv_heads=kv, head_params=vocab * d,
                 ffn_dim=ffn, gated=gated)


def get_shape(name: str, field: str) -> Shape:
    """A registry model, a projection shape preset or a custom ``key=value`` shape;
    ConfigError naming ``field`` if unknown."""
    if "=" in name:
        return custom_shape(name, field)
    if name in presets.SHAPES:
        s = presets.SHAPES[name]
        return Shape(name, s["params"], s["matmul_params"], s["n_layers"], s["dim"],
                     s["n_heads"], s["head_dim"], s["seq_len"], s["label"], s["source"],
                     n_kv_heads=s["n_heads"], head_params=s["vocab"] * s["dim"])
    from models import flops, registry

    try:
        spec = registry.get(name)
    except registry.UnknownModelError:
        raise ConfigError(field, f"unknown model {name!r}; accepted: "
                          f"{', '.join(shape_names())}, or layers=L,dim=D,heads=H[,kv_heads=K,"
                          "ffn=F,vocab=V,mlp=gelu|swiglu]") from None
    c = spec.config
    experts, top_k = getattr(c, "n_experts", 1), getattr(c, "top_k", 1)
    return Shape(name, flops.param_count(c), flops.matmul_param_count(c), c.n_layers, c.dim,
                 c.n_heads, c.head_dim, spec.seq_len, "registry",
                 f"models/registry.py: {spec.description}, exact counts", experts, top_k,
                 c.n_layers * experts * 3 * c.dim * c.ffn_dim if experts > 1 else 0.0,
                 n_kv_heads=c.n_kv_heads, head_params=c.vocab_size * c.dim,
                 ffn_dim=c.ffn_dim, gated=True)


def _positive(value: float | None, field: str) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(field, f"must be a number > 0, got {value}")
    return value


def _seq(seq: float | None, shape: Shape) -> Figure:
    if seq is None:
        if shape.name == "custom" and "seq=" not in shape.source:
            return Figure(shape.seq_len, "tokens", "assumption",
                          "a custom shape's default (give seq= in --shape, or --seq)")
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
        s = replace(s, params=params, matmul_params=params, label="user", source=note)
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
