"""The chip, the node it sits in, and the cluster: count, network, power cap, PUE, overhead.

Power scopes: chip power x ``server_overhead`` = IT load per chip (servers, network and
storage around the accelerator); IT load x ``pue`` = facility power. A cluster preset's
power cap is a facility (grid) figure. Chip figures come from ``bench/backends/hardware.py``;
nodes and clusters from ``presets``; any of them can be overridden (label ``user``), and a
node's links by bandwidths measured with collectives (``--comm-from``, label ``measured``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.backends import hardware
from bench.backends.hardware import Figure
from bench.inputs import numbers
from bench.inputs.config import ConfigError
from bench.projection import presets

if TYPE_CHECKING:
    from bench.projection.measured import CommLinks


@dataclass(frozen=True)
class Chip:
    key: str
    name: str
    precision: str
    peak: Figure  # dense FLOP/s per chip
    memory: Figure  # bytes
    power: Figure | None  # watts per chip while training; None: not published
    hbm: Figure | None = None  # memory bandwidth, B/s; None: not known


@dataclass(frozen=True)
class Node:
    name: str
    chips: Figure  # chips per node: the tensor-parallel domain
    intra: Figure | None  # B/s per chip, one direction, inside the node
    inter: Figure | None  # B/s per node, one direction, EFA
    group: Figure | None = None  # chips of an UltraServer (nodes joined by NeuronLink)
    group_link: Figure | None = None  # B/s per chip, one direction, between its nodes
    runs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # intra/inter -> the
    # collectives records a measured link comes from


@dataclass(frozen=True)
class Cluster:
    title: str
    chip: Chip
    node: Node
    chips: Figure
    power_cap: Figure | None  # facility watts
    pue: Figure
    server_overhead: Figure


_AT_LEAST_ONE = numbers.Limits(low=1)  # a power ratio: facility >= IT >= chip


def check_number(value: float | None, field: str, limits: numbers.Limits = numbers.POSITIVE
                 ) -> None:
    """ConfigError naming ``field`` unless ``value`` is None or a number ``limits`` admits
    (``bench.inputs.numbers.check``: the flags' own parser, for values given by the API)."""
    if value is not None:
        numbers.check(value, field, limits)


def resolve_chip(hardware_key: str | None, *, precision: str | None = None,
                 peak_tflops: float | None = None, power_w: float | None = None,
                 memory_gb: float | None = None, hbm_tbs: float | None = None) -> Chip:
    """A chip from the hardware table with overrides, or a custom one from the flags."""
    check_number(peak_tflops, "--peak-tflops")
    check_number(power_w, "--chip-power-w")
    check_number(memory_gb, "--chip-memory-gb")
    check_number(hbm_tbs, "--chip-hbm-tbs")
    if hardware_key is None:
        if peak_tflops is None:
            raise ConfigError("--hardware", "required: one of "
                              f"{', '.join(hardware.DEVICES)}, a --cluster preset, or "
                              "--peak-tflops X --chip-memory-gb M [--chip-power-w W]")
        if memory_gb is None:
            raise ConfigError("--chip-memory-gb", "required with --peak-tflops for a chip "
                              "that is not in the hardware table")
        spec_peak, spec_mem, spec_power, spec_hbm = None, None, None, None
        name = "custom chip"
        precision = precision or "bf16"
    else:
        spec = hardware.DEVICES.get(hardware_key)
        if spec is None:
            raise ConfigError("--hardware", f"unknown hardware {hardware_key!r}; accepted: "
                              f"{', '.join(hardware.DEVICES)}")
        if precision is None:
            precision = next((p for p in ("bf16", "fp16") if p in spec.peak), next(iter(spec.peak)))
        if precision not in spec.peak and peak_tflops is None:
            raise ConfigError("--precision", f"{spec.name} has no {precision} peak; accepted: "
                              f"{', '.join(spec.peak)}")
        spec_peak, spec_mem, spec_power = spec.peak.get(precision), spec.memory_bytes, spec.power_w
        spec_hbm, name = spec.bandwidth, spec.name
    peak = (Figure(peak_tflops * 1e12, "FLOP/s", "user", "--peak-tflops")
            if peak_tflops is not None else spec_peak)
    memory = (Figure(memory_gb * 1e9, "B", "user", "--chip-memory-gb")
              if memory_gb is not None else spec_mem)
    power = Figure(power_w, "W", "user", "--chip-power-w") if power_w is not None else spec_power
    hbm = Figure(hbm_tbs * 1e12, "B/s", "user", "--chip-hbm-tbs") if hbm_tbs else spec_hbm
    return Chip(hardware_key or "custom", name, precision, peak, memory, power, hbm)


def resolve_node(chip: Chip, preset_node: str | None, *, chips_per_node: float | None = None,
                 intra_gbs: float | None = None, inter_gbps: float | None = None,
                 measured: CommLinks | None = None) -> Node:
    """The preset's node, else the chip's default node, else a bare one; flags override,
    and ``measured`` links replace the datasheet's (a link given twice is refused)."""
    check_number(chips_per_node, "--chips-per-node", numbers.COUNT)
    check_number(intra_gbs, "--intra-node-gbs")
    check_number(inter_gbps, "--inter-node-gbps")
    if measured is not None:
        for given, fig, flag in ((intra_gbs, measured.intra, "--intra-node-gbs"),
                                 (inter_gbps, measured.inter, "--inter-node-gbps")):
            if given is not None and fig is not None:
                raise ConfigError(flag, f"and --comm-from both give this link's bandwidth "
                                  f"(--comm-from: {fig.source}); give one")
    name = preset_node or presets.DEFAULT_NODE.get(chip.key)
    data = presets.NODES[name] if name else {"chips": 1, "intra": None, "inter": None}
    chips = (Figure(int(chips_per_node), "chips", "user", "--chips-per-node")
             if chips_per_node is not None else
             Figure(data["chips"], "chips", "datasheet" if name else "assumption",
                    f"{name}" if name else "no node known for this chip: one chip per node"))
    intra = (Figure(intra_gbs * 1e9, "B/s", "user", "--intra-node-gbs")
             if intra_gbs is not None else data["intra"])
    inter = (Figure(inter_gbps * 1e9 / 8, "B/s", "user", "--inter-node-gbps")
             if inter_gbps is not None else data["inter"])
    runs: dict[str, tuple[str, ...]] = {}
    if measured is not None:
        intra, inter = measured.intra or intra, measured.inter or inter
        runs = dict(measured.runs)
    return Node(name or f"{chip.name} node (none published)", chips, intra, inter,
                data.get("group"), data.get("group_link"), runs)


def resolve(*, cluster: str | None = None, hardware_key: str | None = None,
            chips: float | None = None, power_cap_mw: float | None = None,
            pue: float | None = None, server_overhead: float | None = None,
            precision: str | None = None, peak_tflops: float | None = None,
            chip_power_w: float | None = None, chip_memory_gb: float | None = None,
            chip_hbm_tbs: float | None = None, chips_per_node: float | None = None,
            intra_gbs: float | None = None, inter_gbps: float | None = None,
            measured: CommLinks | None = None) -> Cluster:
    """The cluster from a preset and/or flags (flags win; each keeps its label), its links
    ``measured`` by collectives where given. A preset of several chip pools (``pools``) is
    the pool of ``hardware_key`` (default: the preset's ``hardware``): a run trains on one
    chip type."""
    preset: dict = {}
    if cluster is not None:
        if cluster not in presets.CLUSTERS:
            raise ConfigError("--cluster", f"unknown cluster {cluster!r}; accepted: "
                              f"{', '.join(presets.CLUSTERS)}")
        preset = presets.CLUSTERS[cluster]
    pools = preset.get("pools", {})
    pool = hardware_key or preset.get("hardware")
    if pools and pool in pools:
        others = ", ".join(f"{c['chips'].value:,.0f} {k}" for k, c in pools.items() if k != pool)
        preset = {**preset, **pools[pool], "hardware": pool,
                  "title": f"{preset['title']}: its {pool} pool (besides {others})"}
    check_number(chips, "--chips", numbers.COUNT)
    check_number(power_cap_mw, "--power-cap-mw")
    check_number(pue, "--pue", _AT_LEAST_ONE)
    check_number(server_overhead, "--server-overhead", _AT_LEAST_ONE)
    key = hardware_key or (preset.get("hardware") if peak_tflops is None else None)
    chip = resolve_chip(key, precision=precision, peak_tflops=peak_tflops, power_w=chip_power_w,
                        memory_gb=chip_memory_gb, hbm_tbs=chip_hbm_tbs)
    same_chip = preset.get("hardware") == chip.key
    node = resolve_node(chip, preset.get("node") if same_chip else None,
                        chips_per_node=chips_per_node, intra_gbs=intra_gbs,
                        inter_gbps=inter_gbps, measured=measured)
    if chips is not None:
        count = Figure(int(chips), "chips", "user", "--chips")
    elif preset:
        count = preset["chips"]
    else:
        raise ConfigError("--chips", "required: a chip count, or a --cluster preset "
                          f"({', '.join(presets.CLUSTERS)})")
    cap = (Figure(power_cap_mw * 1e6, "W", "user", "--power-cap-mw")
           if power_cap_mw is not None else preset.get("power_cap"))
    d = presets.DEFAULTS
    title = preset.get("title", "custom cluster")
    if preset and not same_chip:
        title += f" sized, with {chip.name} chips"
    return Cluster(
        title, chip, node, count, cap,
        Figure(pue, "", "user", "--pue") if pue is not None else d["pue"],
        Figure(server_overhead, "", "user", "--server-overhead")
        if server_overhead is not None else d["server_overhead"])
