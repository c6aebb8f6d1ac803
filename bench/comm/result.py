"""The ``comm`` part of a record, from points measured here or by an ingested tool: the
bandwidths of each point (bench.records.bandwidth) and the datasheet bandwidth of the link
the ranks crossed (bench.projection.presets), the report's reference line."""

from __future__ import annotations

from typing import Any

from bench.projection import presets
from bench.records import bandwidth
from bench.records.record import Comm, CommPoint, LinkReference

INTRA, INTER = "intra-node", "inter-node"


def reference(device_kind: str | None, one_node: bool) -> LinkReference | None:
    """The datasheet bandwidth of the link of ``device_kind``'s node: per chip inside it, per
    node across nodes (busbw across nodes is what a node's NICs carry: docs/cli/comm.md);
    None for a device without a published node (a CPU host)."""
    node = presets.DEFAULT_NODE.get(device_kind or "")
    figure = presets.NODES[node]["intra" if one_node else "inter"] if node else None
    if figure is None:
        return None
    return LinkReference(link=INTRA if one_node else INTER, gbs=figure.value / bandwidth.GB,
                         label=figure.label, source=f"{node}: {figure.source}")


def point(op: str, ranks: int, size_bytes: int, count: int, time_us: float,
          **fields: Any) -> CommPoint:
    """One point with its algbw and busbw computed from S and the time."""
    return CommPoint(op=op, size_bytes=size_bytes, count=count, time_us=time_us,
                     algbw_gbs=bandwidth.algbw_gbs(size_bytes, time_us),
                     busbw_gbs=bandwidth.busbw_gbs(op, ranks, size_bytes, time_us), **fields)


def part(*, tool: str, method: str, dtype: str, ranks: int, nodes: int,
         points: list[CommPoint], device_kind: str | None, **fields: Any) -> Comm:
    """The ``comm`` part: ``points`` and the link they crossed (one node or several)."""
    one_node = nodes == 1
    return Comm(tool=tool, method=method, dtype=dtype, ranks=ranks, nodes=nodes,
                one_node=one_node, ops=list(dict.fromkeys(p.op for p in points)),
                points=points, reference=reference(device_kind, one_node), **fields)
