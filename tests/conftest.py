"""Shared fixtures: the CLI as a real subprocess, with results and caches in tmp dirs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# tests/xla is the XLA:CPU lane: it runs in .venv-xla (torch 2.9 + torch-xla 2.9), which
# `make test` runs as a second pytest session; the main environment has no torch_xla.
collect_ignore_glob = [] if importlib.util.find_spec("torch_xla") else ["xla/*"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One GEMM-peak cache for the whole session (the CPU peak is measured once)."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["TRNBENCH_CACHE_DIR"] = str(path)
    return path


@pytest.fixture
def cli(cache_dir, tmp_path):
    """Run `python -m bench ARGS` in a temporary cwd; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "TRNBENCH_CACHE_DIR": str(cache_dir), "COLUMNS": "200"}
        return subprocess.run(
            [sys.executable, "-m", "bench", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
        )

    return run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
