"""Configuration and input: the run config, its defaults, numbers, paths, errors."""
