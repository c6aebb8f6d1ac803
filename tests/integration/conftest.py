"""Fixtures of the integration tests only: the report's records, real runs made once per
session (tests/integration/test_report.py and test_report_browser.py share them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import invoke, rapl_zone, ticking_counter

REPORT_RUN = ("run", "--model", "tiny", "--seq", "16", "--steps", "3", "--warmup", "1", "--json")
REPORT_RUNS = {  # name -> extra flags; a name ending in "fail" is expected to fail
    "rep1": ("--batch", "2", "--tag", "scaling=s1"),
    "rep2": ("--batch", "2"),
    "rep3": ("--batch", "2"),
    "ranks2": ("--batch", "2", "--nproc", "2", "--tag", "scaling=s1"),
    "modelled": ("--batch", "2", "--energy", "modelled"),
    "none": ("--batch", "4", "--energy", "none"),
    "lr-fail": ("--batch", "2", "--lr", "1e6"),
}


@pytest.fixture(scope="session")
def report_records(tmp_path_factory, cache_dir) -> Path:
    """The results file of ``REPORT_RUNS``: repeats of one configuration, a 2-rank run and its
    1-rank partner tagged as a scaling series, ``--energy modelled`` and ``none``, and a run
    that fails (lr 1e6). Each run is ``trnbench run`` in-process; the 2-rank run's ranks are
    real torchrun processes. The CPU package energy comes from a fake RAPL tree whose counter
    ticks in the background, the stand-in for a sensor this machine does not expose."""
    work = tmp_path_factory.mktemp("report-records")
    counter = rapl_zone(work / "powercap", "intel-rapl:0", "package-0", 0)
    env = {"TRNBENCH_CACHE_DIR": str(cache_dir), "TRNBENCH_RAPL_ROOT": str(work / "powercap")}
    results = work / "results.jsonl"
    with ticking_counter(counter, 500_000):  # ~50 W
        for name, flags in REPORT_RUNS.items():
            proc = invoke(*REPORT_RUN, *flags, "--results", str(results), cwd=work, env=env)
            assert proc.returncode == (1 if name.endswith("fail") else 0), proc.stderr
    return results


@pytest.fixture(scope="session")
def report_generated(report_records, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``trnbench report`` of ``report_records`` (in-process): its output folder and result."""
    out = tmp_path_factory.mktemp("report") / "out"
    proc = invoke("report", "--results", str(report_records), "--out", str(out), cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return out, proc
