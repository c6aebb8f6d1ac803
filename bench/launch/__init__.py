"""Launching runs: the one launcher (subprocess or torchrun), sweeps, scaling series."""
