"""nccl-tests and nccom-test output as collectives records (``trnbench ingest``).

Each test of a file becomes one record: its rows are the points, their algbw and busbw
recomputed from S and the time with trnbench's own formulas (bench.records.bandwidth), the
tool's figures kept beside them (``tool_algbw_gbs``, ``tool_busbw_gbs``), and the record
labelled by the tool (``comm.tool``, tag ``source``). What the file does not say (nccom-test
names no op, ranks, nodes or device) comes from flags; a flag that contradicts the file is
refused. The record's time is the file's modification time: neither tool's text says when
it ran. Ingesting a file again stores nothing twice (same tool, content and test).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.backends import hardware
from bench.comm import nccl_tests, nccom_test, result
from bench.inputs.config import read_text
from bench.inputs.errors import ConfigError
from bench.records.bandwidth import SPLIT_OPS
from bench.records.record import COMM_KIND, Backend, Device, Record

FORMATS = ("nccl-tests", "nccom-test")
CROSS_CHECK = 0.01  # the tool's busbw may differ from S / t x factor by its rounding only
CROSS_CHECK_FROM_GBS = 1.0  # below, two printed decimals are more than 1%
METHODS = {
    "nccl-tests": "nccl-tests: out-of-place time per op, a host clock around its iterations "
                  "closed by a stream synchronisation; with MPI, the mean over its processes "
                  "(its -a 1 default), not the slowest rank's",
    "nccom-test": "nccom-test: the mean duration of its iterations (time:avg), as its report "
                  "gives it"}


@dataclass(frozen=True)
class Given:
    """What the flags say about the measurement (None: not given)."""

    op: str | None = None
    ranks: int | None = None
    nodes: int | None = None
    device: str | None = None


def detect(text: str, where: str) -> str:
    """The format of a file to ingest: pytest-benchmark, nccl-tests or nccom-test."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigError(where, "not valid JSON (nested too deeply)") from None
    except ValueError as e:
        if text.lstrip().startswith(("{", "[")):
            raise ConfigError(where, f"not valid JSON ({e})") from None
        data = None
    if isinstance(data, dict):
        if "benchmarks" in data:
            return "pytest-benchmark"
        if "results" in data and "nccl_version" in data:
            raise ConfigError(where, "nccl-tests' -J JSON is not read: ingest its stdout (the "
                              "text table)")
        if "results" in data:
            return "nccom-test"
    if any(line.startswith("# nThread") for line in text.splitlines()):
        return "nccl-tests"
    raise ConfigError(where, "not a pytest-benchmark JSON file, nccl-tests output or an "
                      "nccom-test report; --format names it: pytest-benchmark, "
                      f"{', '.join(FORMATS)}")


def _device(name: str | None, versions: dict[str, str]) -> Device:
    spec = hardware.lookup(name) if name else None
    return Device(name=spec.name if spec and spec.key == name.lower() else name,
                  kind=spec.key if spec else "unknown", versions=versions)


def _dtype(types: list[str | None]) -> str | None:
    """The one element type of a test's rows (None when they differ)."""
    return types[0] if len(set(types)) == 1 else None


def _agree(flag: str, given: Any, found: Any, what: str) -> Any:
    """The file's value, else the flag's; ConfigError when both are there and differ, or
    when neither is."""
    if given is not None and found is not None and given != found:
        raise ConfigError(flag, f"{given} given, but the file says {found} ({what})")
    if found is None and given is None:
        raise ConfigError(flag, f"the file does not say {what}: give {flag}")
    return found if found is not None else given


def _cross_check(points: list[Any], tool: str) -> list[str]:
    """A warning when the tool's own busbw differs from the recomputed one beyond rounding."""
    worst = max((abs(p.tool_busbw_gbs / p.busbw_gbs - 1) for p in points
                 if p.tool_busbw_gbs and p.tool_busbw_gbs >= CROSS_CHECK_FROM_GBS), default=0.0)
    if worst <= CROSS_CHECK:
        return []
    return [f"{tool}'s own busbw differs from S / time x factor by up to {worst:.1%} (its "
            "units: nccom-test's older releases print GiB/s); the recomputed figures are the "
            "record's"]


def _record(path: Path, digest: str, index: int, fmt: str, given: Given, *, op: str,
            ranks: int, nodes: int, device: Device, dtype: str | None, points: list[Any],
            hosts: list[str], **comm: Any) -> Record:
    when = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    config = {"kind": COMM_KIND, "tool": fmt, "file": str(path), "sha256": digest,
              "test": index, "op": op, "ranks": ranks, "nodes": nodes, "device": given.device}
    part = result.part(tool=fmt, method=METHODS[fmt], dtype=dtype, ranks=ranks, nodes=nodes,
                       points=points, device_kind=device.kind, source_file=str(path), **comm)
    backend = Backend(name="cuda" if fmt == "nccl-tests" else "neuron",
                      reason=f"measured by {fmt}, ingested from {path}",
                      dist_backend="nccl" if fmt == "nccl-tests" else None)
    notes = _cross_check(points, fmt)
    if fmt == "nccom-test":
        notes.append("nccom-test's report names no op, ranks, nodes or device: they are "
                     "trnbench ingest's --op, --ranks, --nodes and --device")
    return Record.new(config, {"hosts": hosts} if hosts else {}, {"source": fmt},
                      time=when.isoformat(timespec="seconds"), backend=backend,
                      world_size=ranks, nodes=nodes, device=replace(device, devices_used=ranks),
                      comm=part, warnings=notes, flags=[])


def _nccl_tests(text: str, path: Path, digest: str, given: Given) -> list[Record]:
    out = []
    for index, test in enumerate(nccl_tests.parse(text, str(path))):
        op = _agree("--op", given.op, test.op, "which collective it ran (no '# Collective "
                    "test starting' line)")
        ranks = _agree("--ranks", given.ranks, len(test.ranks) or None,
                       "its ranks (no '#  Rank ...' device lines)")
        hosts = sorted({host for host, _ in test.ranks.values()})
        nodes = _agree("--nodes", given.nodes, len(hosts) or None, "its hosts (no '#  Rank "
                       "... on HOST' device lines)")
        names = list(dict.fromkeys(name for _, name in test.ranks.values()))
        versions = {k: v for k, v in (("nccl-tests", test.version), ("nccl", test.nccl)) if v}
        device = _device(given.device or (names[0] if names else None), versions)
        if device.name is None:
            raise ConfigError("--device", "the file names no device: give --device (a "
                              f"hardware key: {', '.join(hardware.DEVICES)}, or a name)")
        per = ranks if op in SPLIT_OPS else 1  # its count column is per rank for these
        points = []
        for r in test.rows:
            if r.time_us <= 0:
                raise ConfigError(str(path), f"{op} at {r.size} B: time {r.time_us} us")
            points.append(result.point(op, ranks, r.size, r.count * per, r.time_us,
                                       wrong=r.wrong, in_place_time_us=r.in_place_time_us,
                                       tool_algbw_gbs=r.algbw, tool_busbw_gbs=r.busbw))
        out.append(_record(path, digest, index, "nccl-tests", given, op=op, ranks=ranks,
                           nodes=nodes, device=device, points=points, hosts=hosts,
                           dtype=_dtype([nccl_tests.TYPES.get(r.type, r.type)
                                         for r in test.rows]),
                           warmup=test.warmup, iters=test.iters, tool_version=test.version,
                           tool_avg_busbw_gbs=test.avg_busbw))
    return out


def _nccom_test(text: str, path: Path, digest: str, given: Given) -> list[Record]:
    rows = nccom_test.parse(json.loads(text), str(path))
    if given.op is None or given.op not in nccom_test.OPS:
        raise ConfigError("--op", f"{'unknown op ' + repr(given.op) if given.op else 'required'}"
                          f" for an nccom-test report (it names none); accepted: "
                          f"{', '.join(nccom_test.OPS)}")
    if given.ranks is None:
        raise ConfigError("--ranks", "required for an nccom-test report (its -r, which the "
                          "report does not hold)")
    if given.device is None:
        raise ConfigError("--device", "required for an nccom-test report (it names no "
                          f"device): a hardware key ({', '.join(hardware.DEVICES)}) or a name")
    op, ranks = nccom_test.OPS[given.op], given.ranks
    points = [result.point(op, ranks, r.size, r.count, r.time_us, tool_algbw_gbs=r.algbw,
                           tool_busbw_gbs=r.busbw) for r in rows]
    return [_record(path, digest, 0, "nccom-test", given, op=op, ranks=ranks,
                    nodes=given.nodes or 1, device=_device(given.device, {}), points=points,
                    hosts=[], dtype=_dtype([r.type for r in rows]))]


def records(path: str | Path, fmt: str, given: Given) -> list[Record]:
    """Every test of ``path`` (``fmt``: nccl-tests or nccom-test) as a record, all checked
    before any is stored; ConfigError naming the file or the flag."""
    path = Path(path)
    text = read_text(path, "FILE")
    digest = hashlib.sha256(text.encode()).hexdigest()
    if fmt == "nccl-tests":
        return _nccl_tests(text, path, digest, given)
    try:
        json.loads(text)
    except ValueError as e:
        raise ConfigError(str(path), f"not valid JSON ({e})") from None
    return _nccom_test(text, path, digest, given)


def key(record: Record) -> tuple:
    """An ingested test's identity: the tool, the file's content and the test's index."""
    c = record.config
    return (c.get("tool"), c.get("sha256"), c.get("test")) if c.get("sha256") else ()
