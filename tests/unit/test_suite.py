"""`trnbench suite`, in this process: the suite both runbooks run (scripts/suite.toml) as the
memory plan lays it out on a trn2.48xlarge and on an 8-GPU H100 node, its dry run, the batch
search, the repeats and ``--resume`` with the runs themselves stood in for (each returns a
record as the launcher would, with tokens/s growing with the batch), and the file's checks.
The suite run for real on stand-ins, through scripts/trn2/run-node.sh:
tests/integration/test_trn2_suite.py."""

from __future__ import annotations

import json

import pytest

from bench.backends.base import Probe
from bench.backends.cuda import CudaBackend
from bench.backends.neuron import NeuronBackend
from bench.inputs.errors import ConfigError
from bench.launch import launcher
from bench.launch import suite as suites
from bench.parallel import memory_plan
from bench.parallel.layout import for_world
from bench.records import record as rec
from bench.records import store
from tests.conftest import ROOT

SUITE = ROOT / "scripts/suite.toml"


@pytest.fixture
def no_device_memory(monkeypatch, tmp_path):
    """Memory per rank from the datasheet (no neuron-ls, no NVML here)."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("TRNBENCH_RANK_MEMORY_GIB", raising=False)


@pytest.mark.parametrize(("hardware", "expected"), [
    ("trn2", {"chip-1b": (4, 1, "--parallel fsdp"), "node-8b": (64, 1, "--ac full"),
              "nodes-70b": (64, 4, "--tp 2 --ac full")}),
    ("h100", {"chip-1b": (1, 1, ""), "node-8b": (8, 1, "--ac selective"),
              "nodes-70b": (8, 4, "--ac full")}),
])
def test_the_shared_suite_in_the_layout_the_plan_chooses(hardware, expected, no_device_memory):
    """One file, both machines: one chip (4 logical NeuronCores, 1 GPU), one node, 4 nodes; at
    least 3 repeats; each case in the layout that fits there."""
    suite = suites.load(SUITE)
    assert suite.repeats >= 3
    m = suites.machine(hardware, None, None)
    planned, memory = suites.plans(suite, m)
    assert memory.source.startswith(f"{hardware} datasheet")
    assert {p.case.name: (p.nproc, p.nnodes, p.change) for p in planned} == expected
    for p in planned:
        pred = memory_plan.predict(p.config, for_world(p.config, p.nproc, p.nnodes), memory.value)
        assert pred.fits, p.case.name
    models = {p.case.name: (p.config.model, p.config.seq) for p in planned}
    assert models == {"chip-1b": ("1b", 2048), "node-8b": ("llama3-8b", 8192),
                      "nodes-70b": ("llama3-70b", 8192)}
    assert all(p.config.compile == (hardware == "h100") for p in planned)  # [backend.cuda]


def test_dry_run_prints_every_run_the_plan_allows(cli_main, no_device_memory):
    proc = cli_main("suite", str(SUITE), "--hardware", "trn2", "--dry-run", "--results",
                    "r.jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    runs = [line for line in lines if line.startswith("+ ")]
    assert [r.split("--batch ")[1].split()[0] for r in runs] == ["1", "2", "BEST", "1", "BEST"]
    assert all("torch.distributed.run --nproc-per-node=" in r for r in runs)
    assert any(line.startswith("# batch 4 refused by the memory plan: needs 35.2 GiB per rank")
               for line in lines)
    assert runs[2].endswith("# x3, repeat=0..2, at the batch with the most tokens/s")
    assert any(line.startswith("NPROC_PER_NODE=64 TRNBENCH_ARGS=") and
               "sbatch --nodes=4 scripts/slurm/trn2.sbatch" in line for line in lines)


class StandInRuns:
    """``launcher.run`` in place: each run's record (tokens/s = 1000 x batch, a cold first step
    for a search run, a warm one for a repeat) stored as the launcher would; ``fail_at``: the
    batch whose run fails out of memory."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.launched: list[tuple[str, int, int | None]] = []

    def __call__(self, cfg, selection, results, tags, *, torchrun=None, timeout_s=None):
        self.launched.append((tags["case"], cfg.batch, torchrun and torchrun.nproc))
        record = rec.Record.new(cfg.as_dict(), {"host": suites.socket.gethostname()}, tags)
        if cfg.batch == self.fail_at:
            record = record.failed("RuntimeError: out of memory")
        else:
            search = tags["phase"] == "search"
            record = rec.Record(
                **{**record.__dict__, "device": rec.Device(name="stand-in", kind="trn2"),
                   "tokens_per_s": 1000.0 * cfg.batch,
                   "warmup": rec.Warmup(steps=cfg.warmup, first_step_s=60.0 if search else 2.0),
                   "compile_cache": rec.CompileCache(first_step="cold" if search else "warm")})
        store.append(results, record)
        return launcher.Outcome(record, 0 if record.status == "ok" else 1, "")


@pytest.fixture
def devices_here(monkeypatch):
    for cls, name in ((NeuronBackend, "neuron"), (CudaBackend, "cuda")):
        monkeypatch.setattr(cls, "probe", classmethod(
            lambda c, n=name: Probe(n, True, "stand-in")))


def test_search_stops_where_the_plan_refuses_then_three_repeats(
        cli_main, tmp_path, monkeypatch, no_device_memory, devices_here):
    runs = StandInRuns()
    monkeypatch.setattr(suites.launcher, "run", runs)
    proc = cli_main("suite", str(SUITE), "--hardware", "trn2", "--results", "r.jsonl",
                    "--summary", "day-suite.json")
    assert proc.returncode == 0, proc.stderr
    assert runs.launched == [("chip-1b", 1, 4), ("chip-1b", 2, 4), *[("chip-1b", 2, 4)] * 3,
                             ("node-8b", 1, 64), *[("node-8b", 1, 64)] * 3]
    summary = json.loads((tmp_path / "day-suite.json").read_text())
    chip, node, nodes = summary["cases"]
    assert [(s["batch"], s["status"]) for s in chip["search"]] == [(1, "ok"), (2, "ok"),
                                                                   (4, "refused")]
    assert chip["best_batch"] == 2 and chip["layout_change"] == "--parallel fsdp"
    assert [(r["first_step"], r["first_step_s"]) for r in chip["repeats"]] == [("warm", 2.0)] * 3
    assert chip["search"][1]["first_step"] == "cold"
    assert node["config"]["ac"] == "full" and nodes["reason"] == "4 nodes: run on the cluster"
    assert "chip-1b: batch 4 refused by the memory plan (nothing stored)" in proc.stderr
    tags = [r.tags for r in store.read(tmp_path / "r.jsonl")]
    assert {t["suite_id"] for t in tags} == {summary["suite_id"]}
    assert [t.get("repeat") for t in tags if t["case"] == "chip-1b"] == [None, None, "0", "1",
                                                                         "2"]

    # --resume: everything is stored, nothing runs again
    runs.launched.clear()
    again = cli_main("suite", str(SUITE), "--hardware", "trn2", "--results", "r.jsonl",
                     "--resume")
    assert again.returncode == 0 and runs.launched == []


def test_a_failed_run_ends_the_search_and_the_best_ok_batch_is_repeated(
        cli_main, monkeypatch, no_device_memory, devices_here):
    """On one H100 (--nproc-per-node 1): batch 4 fails out of memory, 2 is repeated; the node
    and multi-node cases do not fit one GPU and are skipped with the plan's reason."""
    runs = StandInRuns(fail_at=4)
    monkeypatch.setattr(suites.launcher, "run", runs)
    proc = cli_main("suite", str(SUITE), "--hardware", "h100", "--nproc-per-node", "1",
                    "--results", "r.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert runs.launched == [("chip-1b", 1, None), ("chip-1b", 2, None), ("chip-1b", 4, None),
                             *[("chip-1b", 2, None)] * 3]
    assert "chip-1b: batch 4 failed (stored): RuntimeError: out of memory; the search ends" \
        in proc.stderr
    assert "node-8b: refused by the memory plan: needs " in proc.stderr


def test_a_failed_repeat_is_exit_code_1(cli_main, monkeypatch, no_device_memory, devices_here):
    runs = StandInRuns()
    monkeypatch.setattr(suites, "_describe", lambda r: {"run_id": r.run_id, "status": "failed",
                                                        "tokens_per_s": None})
    monkeypatch.setattr(suites.launcher, "run", runs)
    proc = cli_main("suite", str(SUITE), "--hardware", "h100", "--nproc-per-node", "1",
                    "--results", "r.jsonl")
    assert proc.returncode == 1


@pytest.mark.parametrize(("text", "message"), [
    ('[suite]\nrepeats = 2\n[[case]]\nname="a"\nscope="chip"\nmodel="tiny"\nbatch=1\n',
     "[suite] repeats: must be an integer >= 3"),
    ('[[case]]\nname="a"\nscope="rack"\nmodel="tiny"\nbatch=1\n',
     "[[case]] a scope: unknown scope 'rack'; accepted: chip, node, nodes"),
    ('[[case]]\nname="a"\nscope="nodes"\nmodel="tiny"\nbatch=1\n',
     "[[case]] a nnodes: a case of scope nodes needs nnodes > 1"),
    ('[[case]]\nname="a"\nscope="chip"\nmodel="tiny"\nbatch=[4, 2]\n',
     "[[case]] a batch: a search takes batches in ascending order, got [4, 2]"),
    ('[[case]]\nname="a"\nscope="chip"\nmodel="tiny"\nbatch=1\nbackend="cpu"\n',
     "[[case]] a backend: unknown field; accepted: name, scope, nnodes, batch, model, "),
    ('[defaults]\nprecision="fp8"\n[[case]]\nname="a"\nscope="chip"\nmodel="tiny"\nbatch=1\n',
     "[defaults] precision: unknown precision 'fp8'; accepted: fp32, bf16"),
    ('[sweep]\nmodel="tiny"\n', "sweep: unknown table; accepted: suite, defaults, backend, "
                                "case"),
    ('[suite]\nname="x"\n', "[[case]]: at least one case"),
])
def test_a_bad_suite_file_is_one_line_naming_the_field(text, message, tmp_path, cli_main):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        suites.load(path)
    assert str(e.value).startswith(f"{path}: {message}")
    proc = cli_main("suite", str(path), "--hardware", "trn2", "--dry-run")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and not proc.stdout
