"""Collective benchmarks: `trnbench comm` on the run's process group, and the parsers of
nccl-tests and nccom-test output (docs/cli/comm.md)."""
