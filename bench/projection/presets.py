"""Projection presets as plain data: workloads, extra model shapes, nodes and clusters.

Every figure is a ``Figure`` with its unit, label and source (docs/methodology.md). Labels
beyond the hardware table's: ``assumption`` (a modelling choice of this projection, shown
so that it can be changed) and, at run time, ``user`` (given on the command line),
``measured`` (read from a stored run) and ``derived`` (computed from other inputs).
"""

from __future__ import annotations

from bench.backends.hardware import Figure

_EPOCH_MODELS = "Epoch AI, Notable AI Models (factor 2-3 uncertainty)"
_LLAMA3 = "Llama 3 Herd, arXiv:2407.21783"
_AWS_PUE = "AWS sustainability report 2024: fleet PUE 1.15"
_EPOCH_OVERHEAD = ("Epoch AI, frontier AI data centres: server 1.53 x accelerators, "
                   "IT 1.14 x servers (1.53 x 1.14)")

# Workloads: total training compute, and the model shape the memory plan assumes.
# ``shape`` names a registry model or an entry of SHAPES.
WORKLOADS: dict[str, dict] = {
    "claude-2": {
        "flops": Figure(3.87e24, "FLOP", "estimate", _EPOCH_MODELS),
        "title": "Claude-2-class", "shape": None},
    "claude-3-opus": {
        "flops": Figure(1.64e25, "FLOP", "estimate", _EPOCH_MODELS),
        "title": "Claude-3-Opus-class", "shape": None},
    "claude-3.5-sonnet": {
        "flops": Figure(4.98e25, "FLOP", "estimate", _EPOCH_MODELS),
        "title": "Claude-3.5-Sonnet-class", "shape": None},
    "frontier-1e26": {
        "flops": Figure(1e26, "FLOP", "assumption",
                        "a round frontier budget (frontier compute grows ~4-5x a year, Epoch AI)"),
        "title": "1e26-FLOP frontier", "shape": None},
    "frontier-1e27": {
        "flops": Figure(1e27, "FLOP", "assumption",
                        "a round frontier budget (frontier compute grows ~4-5x a year, Epoch AI)"),
        "title": "1e27-FLOP frontier", "shape": None},
    "gpt-3": {
        "flops": Figure(3.14e23, "FLOP", "paper", "Brown et al. 2020; Patterson et al. 2021"),
        "title": "GPT-3 175B", "shape": "gpt3-175b"},
    "llama-3.1-405b": {
        "flops": Figure(3.8e25, "FLOP", "paper", _LLAMA3),
        "title": "Llama 3.1 405B", "shape": "llama3-405b"},
}

# The shape assumed for a workload given only as FLOPs: a dense model of the largest
# published shape at Claude-class compute (Llama 3.1 405B was 3.8e25 FLOP).
DEFAULT_SHAPE = "llama3-405b"
DEFAULT_SHAPE_SOURCE = ("dense Llama 3.1 405B shape, the largest published shape at this "
                        "compute scale (Claude's shapes are not public); change with --shape")

# Shapes that are not runnable registry models (same fields as a registry config).
SHAPES: dict[str, dict] = {
    "gpt3-175b": {
        "params": 175e9, "matmul_params": 175e9, "n_layers": 96, "dim": 12288,
        "n_heads": 96, "head_dim": 128, "seq_len": 2048,
        "label": "paper", "source": "Brown et al. 2020, Table 2.1 (GPT-3 175B)"},
}

# Nodes: chips per node (the tensor-parallel domain), per-chip link bandwidth inside the
# node (one direction) and EFA bandwidth per node (one direction, line rate).
NODES: dict[str, dict] = {
    "trn2.48xlarge": {
        "chips": 16,
        "intra": Figure(640e9, "B/s", "assumption",
                        "NeuronLink-v3 1.28 TB/s per chip [datasheet, AWS Neuron docs, "
                        "trainium2.rst], taken as both directions: 640 GB/s each way"),
        "inter": Figure(3.2e12 / 8, "B/s", "datasheet",
                        "EFAv3 3.2 Tbps per trn2.48xlarge, AWS EC2 Trn2 instances"),
    },
    "trn1.32xlarge": {
        "chips": 16,
        "intra": None,  # AWS publishes no NeuronLink-v2 bandwidth figure
        "inter": Figure(800e9 / 8, "B/s", "datasheet",
                        "EFA 800 Gbps per trn1.32xlarge, AWS Neuron docs, trn1-arch.rst"),
    },
    "p5.48xlarge": {
        "chips": 8,
        "intra": Figure(450e9, "B/s", "datasheet",
                        "NVLink 4 900 GB/s per H100 (both directions), H100 whitepaper: "
                        "450 GB/s each way"),
        "inter": Figure(3.2e12 / 8, "B/s", "datasheet", "EFA 3,200 Gbps per p5.48xlarge, AWS"),
    },
    "p5e.48xlarge": {
        "chips": 8,
        "intra": Figure(450e9, "B/s", "datasheet",
                        "NVLink 4 900 GB/s per H200 (both directions): 450 GB/s each way"),
        "inter": Figure(3.2e12 / 8, "B/s", "datasheet", "EFA 3,200 Gbps per p5e.48xlarge, AWS"),
    },
    "p4de.24xlarge": {
        "chips": 8,
        "intra": Figure(300e9, "B/s", "datasheet",
                        "NVLink 3 600 GB/s per A100 (both directions), A100 datasheet: "
                        "300 GB/s each way"),
        "inter": Figure(400e9 / 8, "B/s", "datasheet", "EFA 400 Gbps per p4de.24xlarge, AWS"),
    },
    "p3dn.24xlarge": {
        "chips": 8,
        "intra": Figure(150e9, "B/s", "datasheet",
                        "NVLink 2 300 GB/s per V100 (both directions), V100 datasheet: "
                        "150 GB/s each way"),
        "inter": Figure(100e9 / 8, "B/s", "datasheet", "EFA 100 Gbps per p3dn.24xlarge, AWS"),
    },
}

# The node each hardware key runs in when no cluster preset names one (trn3: none published).
DEFAULT_NODE: dict[str, str] = {
    "trn2": "trn2.48xlarge", "trn1": "trn1.32xlarge", "h100": "p5.48xlarge",
    "h200": "p5e.48xlarge", "a100": "p4de.24xlarge", "v100": "p3dn.24xlarge",
}

_RAINIER_CAMPUS = Figure(2.2e9, "W", "report",
                         "New Carlisle, Indiana campus, >2.2 GW at full build (press, 2025); "
                         "the campus will also hold later chips")

CLUSTERS: dict[str, dict] = {
    "rainier": {
        "title": "Project Rainier, 500k-chip stage",
        "hardware": "trn2", "node": "trn2.48xlarge",
        "chips": Figure(500_000, "chips", "report",
                        "Project Rainier operational 29 Oct 2025 with nearly 500,000 Trainium2"),
        "power_cap": _RAINIER_CAMPUS,
    },
    "rainier-1m": {
        "title": "Project Rainier, 1M-chip stage",
        "hardware": "trn2", "node": "trn2.48xlarge",
        "chips": Figure(1_000_000, "chips", "report",
                        "Anthropic expected on more than 1 million Trainium2 by end of 2025"),
        "power_cap": _RAINIER_CAMPUS,
    },
    "trn2-ultracluster": {
        "title": "Trn2 UltraServers in an EC2 UltraCluster",
        "hardware": "trn2", "node": "trn2.48xlarge",
        "chips": Figure(100_000, "chips", "report",
                        "AWS, Nov 2023: Trn2 scales to 100,000 chips in EC2 UltraClusters "
                        "(64-chip UltraServers; their inter-instance NeuronLink is not "
                        "modelled, DP traffic goes over EFA)"),
        "power_cap": None,
    },
    "p5-16k": {
        "title": "H100 (p5.48xlarge) cluster at Llama 3 405B scale",
        "hardware": "h100", "node": "p5.48xlarge",
        "chips": Figure(16_384, "chips", "paper", _LLAMA3 + " (16,384 H100)"),
        "power_cap": None,
    },
}

# Defaults of the efficiency, power and plan inputs.
DEFAULTS: dict[str, Figure] = {
    "goodput": Figure(0.9, "", "paper", _LLAMA3 + ": >90% effective training time"),
    "global_batch_tokens": Figure(16 * 2**20, "tokens", "paper",
                                  _LLAMA3 + ", Table 4: 16M tokens per batch (405B)"),
    "micro_batch": Figure(1, "sequences", "assumption", "one sequence per micro-batch"),
    "vpp": Figure(1, "", "assumption", "non-interleaved 1F1B pipeline schedule"),
    "tp_overlap": Figure(0.0, "", "assumption",
                         "TP collectives sit between matmuls, on the critical path "
                         "(Megatron-LM, Narayanan et al. 2021)"),
    "dp_overlap": Figure(0.0, "", "assumption",
                         "worst case: no DP gradient/parameter traffic hidden behind compute"),
    "ep_overlap": Figure(0.0, "", "assumption",
                         "the experts wait for the dispatch all-to-all and the next layer for "
                         "the combine: on the critical path unless overlapped across "
                         "micro-batches"),
    "memory_usable": Figure(0.9, "", "assumption",
                            "share of chip memory for the model (runtime, buffers, "
                            "fragmentation take the rest)"),
    "pue": Figure(1.15, "", "report", _AWS_PUE),
    "server_overhead": Figure(1.53 * 1.14, "", "estimate", _EPOCH_OVERHEAD),
}

# The best MFU among the published runs the projection is calibrated against
# (tests/unit/test_projection.py): an implied node MFU above it is flagged.
BEST_NODE_MFU = Figure(0.43, "", "paper",
                       _LLAMA3 + ", Table 4: 43% on 8,192 H100 (TP 8, PP 16, DP 64)")


def _short(fig: Figure) -> str:
    value = (f"{fig.value:,.0f}" if fig.value == int(fig.value) else f"{fig.value:.4g}") + (
        f" {fig.unit}" if fig.unit else "")
    return f"{value} [{fig.label}: {fig.source}]".replace("%", "%%")


def default_help(key: str) -> str:
    """'default VALUE [label: source]' of DEFAULTS[key], for --help (argparse-escaped)."""
    return f"default {_short(DEFAULTS[key])}"


def chip_power_help() -> str:
    """Every chip's default power with its label, for --help."""
    from bench.backends.hardware import DEVICES

    return "; ".join(f"{k} {_short(d.power_w) if d.power_w else 'none published'}"
                     for k, d in DEVICES.items())


def cluster_help() -> str:
    """Every cluster preset's chips and power cap with their labels, for --help."""
    return "; ".join(f"{name}: {_short(c['chips'])}, cap "
                     + (_short(c["power_cap"]) if c["power_cap"] else "none")
                     for name, c in CLUSTERS.items())
