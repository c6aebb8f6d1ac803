"""Execution of one run: the runner, data, torch.distributed workers, profiling."""
