"""The doc-test's reading and checking of shell examples (tests/doc_examples.py), on pages
written here: each kind of broken example is found. The doc-test over README.md and docs/ runs
in tests/docs/test_doc_examples.py."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.doc_examples import check, commands, run_page, shrink, workdir

PAGE = ROOT / "docs" / "page.md"  # where a page written here pretends to be


def _commands(block: str) -> list:
    return commands(PAGE, f"# A page\n\n```sh\n{block}```\n")


def test_a_line_goes_on_after_a_backslash_as_in_bash():
    (cmd,) = _commands("trnbench project --shape layers=2,\\\ndim=64 \\\n    --json  # note\n")
    assert cmd.tokens == ["trnbench", "project", "--shape", "layers=2,dim=64", "--json"]
    assert cmd.line == 4 and cmd.hardware is None and cmd.exit == 0


def test_marks_a_comment_gives_its_command_or_the_commands_under_it():
    cmds = _commands("trnbench env\n"
                     "# hardware-only: a trn2.48xlarge\n"
                     "trnbench run --backend neuron\n"
                     "trnbench env  # what it says there\n"
                     "# any machine\n"
                     "trnbench models\n"
                     "trnbench run --backend cuda   # one GPU (hardware-only: an NVIDIA GPU)\n"
                     "trnbench plan --model llama3-8b --hardware trn2  # refused (exit 1)\n")
    assert [c.hardware for c in cmds] == [None, "a trn2.48xlarge", "a trn2.48xlarge", None,
                                          "an NVIDIA GPU", None]
    assert [c.exit for c in cmds] == [0, 0, 0, 0, 0, 1]


def test_a_loop_over_lines_is_one_command_that_runs_its_first_word_small(tmp_path):
    (loop, after) = _commands("for m in tiny moe-tiny; do for s in 0 1; do  # each\n"
                              "  trnbench run --model $m --seed $s --steps 30 \\\n"
                              "      --results r.jsonl\n"
                              "done; done\n"
                              "trnbench report --results r.jsonl\n")
    assert loop.line == 4 and after.line == 8 and loop.text.count("\n") == 2
    assert check(loop) == []  # $m parses when it runs
    assert shrink(loop, tmp_path).split("\n") == [
        "for m in tiny; do for s in 0; do",
        "  trnbench run --model $m --seed $s --steps 30       --results r.jsonl --steps 2 "
        "--warmup 1 --model tiny",
        "done; done"]


@pytest.mark.parametrize(("line", "problem"), [
    ("trnbench run --model tiny --stepz 2", "unrecognized arguments: --stepz"),
    ("trnbench sweep scripts/cpu/no-such.toml", "no such file: scripts/cpu/no-such.toml"),
    ("trnbench scaling --model 8b --nproc 1,2", "--model: unknown model '8b'"),
    ("trnbench env [--json]", "unrecognized arguments: [--json]"),
    ("make benchmark", "no make target 'benchmark' in the Makefile"),
    ("trnbench compare ... --json", "a placeholder in an example that runs"),
    ("scontrol show job <id>", "a placeholder in an example that runs"),
    ("trnbench run --backend cuda  # (hardware-only: )", "hardware-only without a reason"),
    ("TRNBENCH_ARGS='--model nope' sbatch scripts/slurm/gpu.sbatch  # hardware-only: Slurm",
     "--model: unknown model 'nope'"),
    ("git clone x && trnbench run --nproc  # hardware-only: network", "--nproc: expected one"),
])
def test_a_broken_example_is_found_without_running_it(line, problem):
    (cmd,) = _commands(line + "\n")
    found = check(cmd)
    assert any(problem in p for p in found), found


def test_a_marked_example_with_a_placeholder_passes():
    (cmd,) = _commands("scontrol show job <id>   # hardware-only: Slurm\n")
    assert check(cmd) == []


def test_a_page_runs_in_order_with_its_files_and_fails_on_a_wrong_exit_code(tmp_path,
                                                                          cache_dir):
    local = tmp_path / "local.jsonl"
    local.write_text("")
    text = ("```toml\n# file: plans/big.toml\n[run]\nmodel = \"llama3-8b\"\n[plan]\n"
            "hardware = \"trn2\"\nnproc = 64\n```\n\n```sh\n"
            "trnbench plan --config plans/big.toml            # refused (exit 1)\n"
            "trnbench plan --config plans/big.toml --json\n"
            "trnbench plan --config plans/big.toml            # refused (exit 1)\n"
            "trnbench plan --hardware h100 --backend cuda --nproc 1\n```\n")
    env = {"TRNBENCH_CACHE_DIR": str(cache_dir)}
    problems, ran = run_page(PAGE, workdir(tmp_path / "work", local), env, text)
    assert ran == 3  # the repeated line runs once
    (problem,) = problems
    assert problem.startswith("docs/page.md:12: `trnbench plan --config plans/big.toml --json`: "
                              "exit 1 running")
