"""Start-up time of the `trnbench` verbs that do not run a model (a benchmark, not a test).

Each command runs ``--repeats`` times as ``python -m bench ...`` in a fresh interpreter; the
figures are the median and minimum wall time from process start to exit, the median CPU time
of the process (user + system, ``resource.getrusage(RUSAGE_CHILDREN)``: what the start-up
costs, much less disturbed than wall time on a shared machine), and whether torch was
imported (``-X importtime`` lists every module the process imported). Usage:

    python scripts/startup_bench.py [--repeats 5] [--markdown]

Run from the repository root (or with it on PYTHONPATH). Timings on a loaded machine are
noisy: compare medians from the same machine and load.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ["--help"],
    *[[verb, "--help"] for verb in ("project", "report", "compare", "models", "ingest",
                                    "sweep", "scaling", "env")],
    ["models"],
    ["project", "--workload", "claude-3.5-sonnet", "--cluster", "rainier", "--node-mfu", "0.4"],
]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(args: list[str], repeats: int) -> tuple[float, float, float, bool]:
    """(median wall s, min wall s, median CPU s, torch imported) of ``python -m bench ARGS``
    over ``repeats`` runs."""
    times, cpu = [], []
    imported_torch = False
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), _cpu()
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bench", *args],
                              capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        cpu.append(_cpu() - cpu_start)
        if done.returncode != 0:
            raise SystemExit(f"trnbench {' '.join(args)} failed: {done.stderr[-500:]}")
        imported_torch |= any(line.rsplit("|", 1)[-1].strip() == "torch" for line in
                              done.stderr.splitlines())
    return statistics.median(times), min(times), statistics.median(cpu), imported_torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--markdown", action="store_true", help="a Markdown table for the README")
    a = p.parse_args()
    rows = [(" ".join(args), *measure(args, a.repeats)) for args in COMMANDS]
    if a.markdown:
        print("| command | wall s, median | wall s, min | CPU s, median | imports torch |\n"
              "|---|--:|--:|--:|---|")
        for cmd, med, lo, cpu, torch in rows:
            print(f"| `trnbench {cmd}` | {med:.2f} | {lo:.2f} | {cpu:.2f} | "
                  f"{'yes' if torch else 'no'} |")
        return
    for cmd, med, lo, cpu, torch in rows:
        print(f"{med:6.2f} s median  {lo:6.2f} s min  {cpu:6.2f} s CPU  torch "
              f"{'yes' if torch else 'no ':3}  trnbench {cmd}")


if __name__ == "__main__":
    main()
