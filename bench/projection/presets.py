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
        "n_heads": 96, "head_dim": 128, "seq_len": 2048, "vocab": 50257,
        "label": "paper", "source": "Brown et al. 2020, Table 2.1 (GPT-3 175B; the GPT-2 "
        "vocabulary of 50,257 tokens)"},
}

# Nodes: chips per node (the tensor-parallel domain), per-chip link bandwidth inside the
# node (one direction), EFA bandwidth per node (one direction, line rate) and, for an
# UltraServer, the chips it joins and their per-chip NeuronLink between its instances.
_TRN2_ARCH = "AWS Neuron docs, Amazon EC2 Trn2 architecture (trn2-arch.rst)"
_TRN3_ARCH = "AWS Neuron docs, Amazon EC2 Trn3 architecture (trn3-arch.rst)"
_NO_DIRECTION = ("; the page does not say whether this is one direction or both: taken as one "
                 "direction (assumption; --intra-node-gbs to change)")
NODES: dict[str, dict] = {
    "trn2.48xlarge": {
        "chips": 16,
        "intra": Figure(1024e9, "B/s", "assumption",
                        f"{_TRN2_ARCH}: intra-instance NeuronLink-v3 1,024 GB/sec/chip "
                        "[datasheet]; with the 256 inter-instance it makes the 1.28 TB/s of "
                        "trainium2.rst" + _NO_DIRECTION),
        "inter": Figure(3.2e12 / 8, "B/s", "datasheet",
                        "EFAv3 3.2 Tbps per trn2.48xlarge, AWS EC2 Trn2 instances"),
    },
    "trn2-ultraserver": {
        "chips": 16,
        "intra": Figure(1024e9, "B/s", "assumption",
                        f"{_TRN2_ARCH}: intra-instance NeuronLink-v3 1,024 GB/sec/chip "
                        "[datasheet]" + _NO_DIRECTION),
        "inter": Figure(3.2e12 / 8, "B/s", "datasheet",
                        "EFAv3 3.2 Tbps per trn2.48xlarge, AWS EC2 Trn2 instances"),
        "group": Figure(64, "chips", "datasheet",
                        f"{_TRN2_ARCH}: a Trn2 UltraServer joins four trn2 instances"),
        "group_link": Figure(256e9, "B/s", "assumption",
                             f"{_TRN2_ARCH}: inter-instance NeuronLink-v3 256 GB/sec/chip in a "
                             "Trn2 UltraServer [datasheet]" + _NO_DIRECTION),
    },
    "trn1.32xlarge": {
        "chips": 16,
        "intra": Figure(384 * 2**30, "B/s", "assumption",
                        "AWS Neuron docs, Trn1 architecture (trn1-arch.rst): NeuronLink-v2 "
                        "384 GiB/sec/device for trn1.32xlarge [datasheet; the column header "
                        "was dropped from the table in Dec 2024, the value kept; trainium2.rst "
                        "gives 384 GB/sec/chip]" + _NO_DIRECTION),
        "inter": Figure(800e9 / 8, "B/s", "datasheet",
                        "EFA 800 Gbps per trn1.32xlarge, AWS Neuron docs, trn1-arch.rst"),
    },
    "trn3-ultraserver-gen2": {
        "chips": 144,
        "intra": Figure(2048 * 2**30, "B/s", "assumption",
                        f"{_TRN3_ARCH}: NeuronLink-v4 2,048 GiB/sec/device, all-to-all through "
                        "NeuronSwitch-v1 in a 144-chip Gen2 UltraServer [datasheet; trainium3.rst "
                        "says 2.56 TB/s per device and the PCIe section sums to 704 GB/s: the "
                        "docs conflict (aws-neuron-sdk issue 1396)]" + _NO_DIRECTION),
        "inter": Figure(28_800e9 / 8, "B/s", "datasheet",
                        f"{_TRN3_ARCH}: EFA 28,800 Gbps per Gen2 UltraServer"),
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

# The node each hardware key runs in when no cluster preset names one.
DEFAULT_NODE: dict[str, str] = {
    "trn2": "trn2.48xlarge", "trn1": "trn1.32xlarge", "trn3": "trn3-ultraserver-gen2",
    "h100": "p5.48xlarge", "h200": "p5e.48xlarge", "a100": "p4de.24xlarge",
    "v100": "p3dn.24xlarge",
}

_RAINIER_CHIPS = ("AWS, 29 Oct 2025 (aboutamazon.com, 'AWS activates Project Rainier'): "
                  "nearly half a million Trainium2 in use")
_RAINIER_1M = ("AWS, 29 Oct 2025 (aboutamazon.com): Claude expected on more than 1 million "
               "Trainium2 by the end of 2025")
_RAINIER_POWER = Figure(1e9, "W", "report",
                        "press: Semafor, 29 Oct 2025, 'roughly a gigawatt of power', quoting "
                        "AWS distinguished engineer Ron Diamant (the Indiana campus was "
                        "reported at up to 2.2 GW at full build, The Register, Jul 2025)")
_ANTHROPIC_2026 = ("press: Axios, 21 Apr 2026, and secondary summaries of Anthropic's post "
                   "(anthropic.com/news/anthropic-amazon-compute, not retrieved): nearly 1 GW "
                   "of Trainium2 and Trainium3 capacity online by the end of 2026")
_SPLIT = ("the split is not published: half of the ~1 GW to each generation, at the chip "
          "power, server overhead and PUE defaults (trn2 500 W, trn3 1 kW: estimates)")

CLUSTERS: dict[str, dict] = {
    "rainier": {
        "title": "Project Rainier, 500k-chip stage",
        "hardware": "trn2", "node": "trn2-ultraserver",
        "chips": Figure(500_000, "chips", "report", _RAINIER_CHIPS),
        "power_cap": _RAINIER_POWER,
    },
    "rainier-1m": {
        "title": "Project Rainier, 1M-chip stage",
        "hardware": "trn2", "node": "trn2-ultraserver",
        "chips": Figure(1_000_000, "chips", "report", _RAINIER_1M),
        "power_cap": _RAINIER_POWER,
    },
    "trainium-2026": {
        "title": "Trainium2 and Trainium3 site, ~1 GW (end of 2026)",
        "hardware": "trn3",
        "pools": {
            "trn3": {"node": "trn3-ultraserver-gen2",
                     "chips": Figure(249_000, "chips", "assumption",
                                     f"{_SPLIT}: 0.5 GW / (1 kW x 1.744 x 1.15)")},
            "trn2": {"node": "trn2-ultraserver",
                     "chips": Figure(498_000, "chips", "assumption",
                                     f"{_SPLIT}: 0.5 GW / (500 W x 1.744 x 1.15)")},
        },
        "power_cap": Figure(1e9, "W", "report", _ANTHROPIC_2026),
    },
    "trn2-ultracluster": {
        "title": "Trn2 UltraServers in an EC2 UltraCluster",
        "hardware": "trn2", "node": "trn2-ultraserver",
        "chips": Figure(100_000, "chips", "report",
                        "AWS, Nov 2023: Trn2 scales to 100,000 chips in EC2 UltraClusters"),
        "power_cap": None,
    },
    "p5-16k": {
        "title": "H100 (p5.48xlarge) cluster at Llama 3 405B scale",
        "hardware": "h100", "node": "p5.48xlarge",
        "chips": Figure(16_384, "chips", "paper", _LLAMA3 + " (16,384 H100)"),
        "power_cap": None,
    },
}

# Defaults of the efficiency, power and plan inputs (the step model's fitted constants are
# in ``calibration.DEFAULTS``).
DEFAULTS: dict[str, Figure] = {
    "goodput": Figure(0.9, "", "paper", _LLAMA3 + ": >90% effective training time"),
    "global_batch_tokens": Figure(16 * 2**20, "tokens", "paper",
                                  _LLAMA3 + ", Table 4: 16M tokens per batch (405B)"),
    "micro_batch": Figure(1, "sequences", "assumption", "one sequence per micro-batch"),
    "tp_overlap": Figure(0.0, "", "assumption",
                         "TP collectives sit between matmuls, on the critical path "
                         "(Megatron-LM, Narayanan et al. 2021); the calibration holds it at 0"),
    "ep_overlap": Figure(0.0, "", "assumption",
                         "the experts wait for the dispatch all-to-all and the next layer for "
                         "the combine: on the critical path unless overlapped across "
                         "micro-batches"),
    "memory_usable": Figure(0.9, "", "assumption",
                            "share of chip memory for the model (runtime, buffers, "
                            "fragmentation take the rest)"),
    "grad_reduce": Figure(4, "bytes", "assumption",
                          "fp32 gradients in the DP reduction, as Megatron-LM does for bf16 "
                          "training (megatron/arguments.py) and Llama 3 405B did; "
                          "--grad-reduce bf16 halves them"),
    "cp_min_tokens": Figure(8192, "tokens", "assumption",
                            "context parallelism is searched while each rank keeps at least "
                            "this many tokens of a sequence (Llama 3 405B at 128K: CP 16, "
                            "8K tokens per rank)"),
    "pue": Figure(1.15, "", "report", _AWS_PUE),
    "server_overhead": Figure(1.53 * 1.14, "", "estimate", _EPOCH_OVERHEAD),
}


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
    def chips(c: dict) -> str:
        if "pools" not in c:
            return _short(c["chips"])
        return " + ".join(f"{k} {_short(p['chips'])}" for k, p in c["pools"].items())

    return "; ".join(f"{name}: {chips(c)}, cap "
                     + (_short(c["power_cap"]) if c["power_cap"] else "none")
                     for name, c in CLUSTERS.items())
