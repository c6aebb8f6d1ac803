"""`trnbench run --profile [--profile-steps N]`: a trace of N training steps run AFTER the
timed window (never inside it: the window's figures are those of an unprofiled run).

- CPU, CUDA, XLA: ``torch.profiler`` (https://pytorch.org/docs/stable/profiler.html) records
  the N steps with operator shapes and, where the device supports it, memory (CPU and CUDA
  allocations), and ``export_chrome_trace`` writes a Chrome trace JSON next to the results
  file: ``<results stem>-<run id>.trace.json``. Open it in https://ui.perfetto.dev or
  chrome://tracing.
- Neuron: the Neuron runtime's own capture (Neuron Explorer environment variables,
  https://awsdocs-neuron.readthedocs-hosted.com/en/latest/tools/neuron-explorer/environment-variables.html).
  The runtime reads them when it starts, and they must not be combined with torch.profiler, so
  ``neuron_env`` sets them in the command's environment before any device work:
  ``NEURON_RT_INSPECT_ENABLE=1``, a device profile (``NEURON_RT_INSPECT_DEVICE_PROFILE=1``) of
  the first execution after ``NEURON_RT_INSPECT_DEVICE_PROFILE_NUM_WARMUP`` = warm-up + timed
  steps, i.e. the first step after the window, no system profile during the run
  (``NEURON_RT_INSPECT_SYSTEM_PROFILE=0``), written under ``NEURON_RT_INSPECT_OUTPUT_DIR`` =
  ``<results stem>-<run id>.neuron-inspect/`` (NEFF + NTFF files, for ``neuron-profile view``
  or Neuron Explorer).

The record's ``profile`` block names the method, the steps, and the file or directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.train.runner import Training

NEURON_BACKENDS = ("neuron", "neuron-xla")


def trace_path(results: Path, run_id: str, suffix: str = ".trace.json") -> Path:
    """Where a run's trace goes: beside its results file, named by the run."""
    return results.with_name(f"{results.stem}-{run_id}{suffix}")


def neuron_env(results: Path, run_id: str, warmup: int, steps: int) -> dict[str, str]:
    """The Neuron runtime inspection variables that capture the first step after the window."""
    return {"NEURON_RT_INSPECT_ENABLE": "1", "NEURON_RT_INSPECT_SYSTEM_PROFILE": "0",
            "NEURON_RT_INSPECT_DEVICE_PROFILE": "1",
            "NEURON_RT_INSPECT_DEVICE_PROFILE_NUM_WARMUP": str(warmup + steps),
            "NEURON_RT_INSPECT_OUTPUT_DIR": str(trace_path(results, run_id, ".neuron-inspect"))}


def _steps(t: Training, first_step: int, steps: int) -> None:
    """``steps`` training steps from ``first_step``, synchronised; their losses (and routing
    statistics) dropped: nothing after the window is a figure of the run."""
    for i in range(steps):
        t.step(first_step + i)
    t.backend.synchronize()
    t.losses.clear()
    t.routing.clear()


def trace(t: Training, first_step: int, steps: int, path: Path | None) -> dict[str, Any]:
    """Run ``steps`` more training steps from ``first_step`` (after the window) under the
    profiler and describe the result for the record; a profiler failure is reported in the
    block, never fails the measured run."""
    block: dict[str, Any] = {"steps": steps, "after_window": True, "error": None}
    if t.backend.name in NEURON_BACKENDS:
        _steps(t, first_step, steps)
        return block | {"method": "neuron runtime inspect (NEURON_RT_INSPECT_*), device "
                                  "profile of the first step after the window",
                        "trace": os.environ.get("NEURON_RT_INSPECT_OUTPUT_DIR")}
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if t.backend.name == "cuda":
        activities.append(ProfilerActivity.CUDA)
    memory = t.backend.name in ("cpu", "cuda")
    block |= {"method": f"torch.profiler {torch.__version__} (activities: "
                        f"{', '.join(a.name for a in activities)}; memory: "
                        f"{'yes' if memory else 'no'}), Chrome trace JSON", "trace": None}
    try:
        with profile(activities=activities, record_shapes=True, profile_memory=memory) as prof:
            _steps(t, first_step, steps)
        if path is not None:
            prof.export_chrome_trace(str(path))
            json.loads(path.read_text())  # a trace that does not parse is no trace
            block["trace"] = str(path)
    except Exception as e:  # noqa: BLE001 - the measured run stands; the block says why
        block["error"] = f"{type(e).__name__}: {e}"
    return block
