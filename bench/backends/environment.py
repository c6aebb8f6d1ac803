"""Where a run was measured: host, CPU, OS, Python, torch, git commit of the checkout."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo (``cpuinfo``: its text, default read), or the
    platform's processor string. A name without a model number (a hypervisor's "AMD EPYC")
    gets the CPUID family, model and stepping that identify it."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():  # the first processor
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine()
    ids = [fields.get(k) for k in ("cpu family", "model", "stepping")]
    if not any(c.isdigit() for c in name) and all(ids):
        return f"{name} (family {ids[0]}, model {ids[1]}, stepping {ids[2]})"
    return name


def host_memory_bytes() -> float:
    """This host's RAM (``MemTotal`` of /proc/meminfo)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024
    raise OSError("MemTotal missing from /proc/meminfo")


def git_commit(path: Path = PACKAGE_ROOT) -> str | None:
    """HEAD of the checkout trnbench runs from, with '-dirty' if tracked files changed."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def trnbench_version() -> str:
    try:
        return metadata.version("trnbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def capture() -> dict[str, Any]:
    """The host part of a record's environment (the backend adds its device)."""
    return {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "trnbench": trnbench_version(),
        "git_commit": git_commit(),
    }
