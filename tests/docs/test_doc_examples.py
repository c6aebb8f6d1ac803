"""The doc-test: every shell example of README.md and docs/ is checked, and every one that needs
no accelerator, Slurm or network runs, small, against a temporary results file
(tests/doc_examples.py says how; its own tests: tests/unit/test_doc_example_checks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke
from tests.doc_examples import DOCS, commands, run_page, workdir

PAGES = [doc for doc in DOCS if commands(doc)]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, cache_dir) -> Path:
    """The results file of one small CPU run, as a user has after the quick start: each page's
    results/local.jsonl starts as a copy of it."""
    path = tmp_path_factory.mktemp("doc-examples") / "local.jsonl"
    proc = invoke("run", "--backend", "cpu", "--model", "tiny", "--batch", "2", "--seq", "32",
                  "--steps", "2", "--warmup", "1", "--results", str(path), cwd=path.parent,
                  env={"TRNBENCH_CACHE_DIR": str(cache_dir)})
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.mark.parametrize("doc", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_runs_or_is_marked_hardware_only(doc: Path, tmp_path, cache_dir,
                                                       local_run):
    problems, _ = run_page(doc, workdir(tmp_path / "work", local_run),
                           {"TRNBENCH_CACHE_DIR": str(cache_dir)})
    assert not problems, "\n".join(problems)
