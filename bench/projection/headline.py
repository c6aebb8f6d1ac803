"""One line that puts a measured run in Rainier terms (printed after `trnbench run`)."""

from __future__ import annotations

from typing import Any

from bench import hardware
from bench.projection import measured, model, presets


def headline(record: dict[str, Any], results_path: str | None = None,
             workload: str = "claude-3.5-sonnet", cluster: str = "rainier") -> str | None:
    """Days for a Claude-class run on Rainier's chips at the run's MFU; None without an MFU.

    t = C / (chips x bf16 peak x MFU x goodput), the run's MFU taken as the MFU at scale:
    no communication model, no memory plan (``trnbench project`` does both).
    """
    mfu = record.get("mfu")
    if record.get("status") != "ok" or not mfu:
        return None
    w, c = presets.WORKLOADS[workload], presets.CLUSTERS[cluster]
    chip = hardware.DEVICES[c["hardware"]]
    chips = int(c["chips"].value)
    goodput = presets.DEFAULTS["goodput"].value
    days = model.training_seconds(w["flops"].value, chips, chip.peak["bf16"].value, mfu,
                                  goodput) / model.SECONDS_PER_DAY
    peak = record.get("peak") or {}
    device = (record.get("device") or {}).get("name", "this device")
    of = f"{device}'s {peak.get('label', '')} {peak.get('precision', '')} peak".replace("  ", " ")
    same = measured.device_key(record) == chip.key and peak.get("precision") == "bf16"
    carry = "" if same else ", assumed to carry over to the bf16 peak"
    flops = w["flops"]
    details = f" --from-results {results_path}" if results_path else ""
    return (f"Projection (not a measurement): if all {chips:,} {chip.name} chips "
            f"({c['title']}) sustained this run's MFU of {mfu:.1%} (of {of}{carry}) with "
            f"{goodput:.0%} goodput, a {w['title']} run ({flops.value:.3g} FLOP, "
            f"{flops.source.split(',')[0]} {flops.label}) would take {days:,.1f} days; "
            f"communication, batch and memory limits are modelled by: trnbench project"
            f"{details}")
