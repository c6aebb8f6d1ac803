"""Bad input over every verb: exit 2, one line on stderr naming the field, no traceback, and
the results file byte for byte as it was. In-process (``bench.cli.main``), so the table costs
seconds; tests/integration/test_bad_input_entry_point.py keeps a few cases on the real
``python -m bench``."""

from __future__ import annotations

import os

import pytest

from bench import cli
from bench.records import store
from bench.records.record import Device, Record
from tests.conftest import OK_CONFIG, bench_json

BAD_UTF8 = b"[run]\nmodel = \"tiny\"\n# caf\xe9\n"
# files the cases refer to, created in the case's working directory
FILES = {
    "bad-utf8.toml": BAD_UTF8,
    "inf-batch.toml": b"[run]\nbatch = inf\n",
    "nan-lr.toml": b"[run]\nlr = nan\n",
    "str-batch.toml": b"[run]\nbatch = \"8\"\n",
    "unknown.toml": b"[run]\nbatches = 8\n",
    "malformed.toml": b"[run\nbatch = 8\n",
    "big-seed.toml": b"[run]\nseed = 99999999999999999999\n",
    "s-timeout-inf.toml": b"[sweep]\nmodel = \"tiny\"\ntimeout_s = inf\n",
    "s-timeout-0.toml": b"[sweep]\nmodel = \"tiny\"\ntimeout_s = 0\n",
    "s-repeats-0.toml": b"[sweep]\nmodel = \"tiny\"\nrepeats = 0\n",
    "s-repeats-frac.toml": b"[sweep]\nmodel = \"tiny\"\nrepeats = 1.5\n",
    "s-batch-nan.toml": b"[sweep]\nmodel = \"tiny\"\nbatch = [1, nan]\n",
    "s-lr-inf.toml": b"[sweep]\nmodel = \"tiny\"\nlr = inf\n",
    "s-seq-big.toml": b"[sweep]\nmodel = \"tiny\"\nseq = 1e23\n",
    "s-unknown.toml": b"[sweep]\nmodel = \"tiny\"\nfoo = 1\n",
    "s-utf8.toml": b"[sweep]\nmodel = \"tiny\" # \xff\n",
    "p-nan.toml": b"[prices.\"trn2.48xlarge\"]\nusd_per_hour = nan\ndate = \"2026-01-01\"\n",
    "p-inf.toml": b"[prices.\"trn2.48xlarge\"]\nusd_per_hour = inf\ndate = \"2026-01-01\"\n",
    "p-str.toml": b"[prices.\"trn2.48xlarge\"]\nusd_per_hour = \"9\"\ndate = \"2026-01-01\"\n",
    "p-chips.toml": b"[prices.\"x.large\"]\nusd_per_hour = 9\ndate = \"2026-01-01\"\n"
                    b"chips = 1e300\ndevice = \"trn2\"\n",
    "p-utf8.toml": b"[prices.\"trn2.48xlarge\"] # \xfe\n",
    "plan-str.toml": b"[run]\nmodel = \"1b\"\n[plan]\nhardware = \"trn2\"\nnproc = \"4\"\n",
    "i-str.json": bench_json(tokens_per_s="fast").encode(),
    "i-energy.json": bench_json(energy=None).encode(),
    "i-nan.json": bench_json(window_s=float("nan")).encode(),
    "i-utf8.json": b"{\"benchmarks\": [\"\xff\"]}",
    "i-nested-nan.json": bench_json(step_time={"median_s": float("nan")}).encode(),
    "i-inf-joules.json": bench_json(energy={"method": "rapl", "joules": float("inf")}).encode(),
    "i-deep.json": b"[" * 100_000 + b"]" * 100_000,
    "i-twice.json": (lambda b: b.replace('"benchmarks": [', '"benchmarks": [' + b[
        b.index('{"name"'):-2] + ", "))(bench_json()).encode(),
    "s-grid.toml": b"[sweep]\nmodel = \"tiny\"\nbatch = " + str(list(range(1, 1001))).encode()
                   + b"\nseq = " + str(list(range(1, 1001))).encode() + b"\n",
    "s-fsdp.toml": b"[sweep]\nmodel = \"tiny\"\nparallel = \"fsdp\"\n",
    "victim.md": b"not to be overwritten\n",
}
# symbolic links the cases refer to: dangling, a loop, to a file an output must not replace
LINKS = {"dangling.jsonl": "nowhere/r.jsonl", "loop.jsonl": "loop.jsonl",
         "link.png": "victim.md", "linked/report.md": "../victim.md",
         "linked/compare.md": "../victim.md"}
RUN = ["run", "--model", "tiny", "--backend", "cpu"]
PROJECT = ["project", "--workload", "claude-2", "--cluster", "rainier", "--mfu", "0.4"]
CMP = ["compare", "--baseline", "device=cpu", "--target", "device=cpu"]

CASES = [
    # run: numbers
    ([*RUN, "--batch", "0"], "--batch"),
    ([*RUN, "--batch", "1e23"], "--batch"),
    ([*RUN, "--batch", "2.5"], "--batch"),
    ([*RUN, "--batch", "nan"], "--batch"),
    ([*RUN, "--seq", "nan"], "--seq"),
    ([*RUN, "--seq", "-1"], "--seq"),
    ([*RUN, "--seq", "100000"], "--seq"),
    ([*RUN, "--steps", "inf"], "--steps"),
    ([*RUN, "--steps", "true"], "--steps"),
    ([*RUN, "--warmup", "-1"], "--warmup"),
    ([*RUN, "--lr", "inf"], "--lr"),
    ([*RUN, "--lr", "nan"], "--lr"),
    ([*RUN, "--lr", "0"], "--lr"),
    ([*RUN, "--lr", "abc"], "--lr"),
    ([*RUN, "--seed", "-1"], "--seed"),
    ([*RUN, "--seed", "1.5"], "--seed"),
    ([*RUN, "--dist-timeout", "inf"], "--dist-timeout"),
    ([*RUN, "--dist-timeout", "0"], "--dist-timeout"),
    ([*RUN, "--nproc", "0"], "--nproc"),
    ([*RUN, "--nproc", "1e300"], "--nproc"),
    ([*RUN, "--nnodes", "0"], "--nnodes"),
    ([*RUN, "--node-rank", "-1"], "--node-rank"),
    # run: names and files
    (["run", "--model", "nope"], "--model"),
    ([*RUN, "--precision", "fp8"], "--precision"),
    (["run", "--backend", "nope"], "--backend"),
    ([*RUN, "--energy", "nope"], "--energy"),
    ([*RUN, "--parallel", "nope"], "--parallel"),
    ([*RUN, "--tag", "bad"], "--tag"),
    ([*RUN, "--config", "missing.toml"], "--config"),
    ([*RUN, "--config", "bad-utf8.toml"], "--config"),
    ([*RUN, "--config", "fifo"], "--config"),
    ([*RUN, "--config", "inf-batch.toml"], "--batch"),
    ([*RUN, "--config", "nan-lr.toml"], "--lr"),
    ([*RUN, "--config", "str-batch.toml"], "--batch"),
    ([*RUN, "--config", "unknown.toml"], "--config"),
    ([*RUN, "--config", "malformed.toml"], "--config"),
    ([*RUN, "--config", "big-seed.toml"], "--seed"),
    ([*RUN, "--results", ""], "--results"),
    ([*RUN, "--results", "fifo"], "--results"),
    ([*RUN, "--results", "."], "--results"),
    ([*RUN, "--results", "dangling.jsonl"], "--results"),
    ([*RUN, "--results", "loop.jsonl"], "--results"),
    # run: torchrun's flags
    ([*RUN, "--nproc", "2147483647"], "--nproc"),
    ([*RUN, "--nproc", "1", "--nnodes", "2", "--node-rank", "5", "--rdzv-endpoint", "h:1"],
     "--node-rank"),
    ([*RUN, "--node-rank", "1"], "--node-rank"),
    ([*RUN, "--nnodes", "2"], "--nnodes"),
    ([*RUN, "--rdzv-endpoint", "h:1"], "--rdzv-endpoint"),
    ([*RUN, "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", "h"], "--rdzv-endpoint"),
    ([*RUN, "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", "h:99999"], "--rdzv-endpoint"),
    ([*RUN, "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", "a b:1"], "--rdzv-endpoint"),
    ([*RUN, "--parallel", "fsdp"], "--parallel"),
    # scaling
    (["scaling", "--model", "tiny", "--nproc", "0"], "--nproc"),
    (["scaling", "--model", "tiny", "--nproc", "2,1"], "--nproc"),
    (["scaling", "--model", "tiny", "--nproc", "1,x"], "--nproc"),
    (["scaling", "--model", "tiny", "--nproc", "1,1e300"], "--nproc"),
    (["scaling", "--model", "tiny", "--nproc", "1", "--lr", "inf"], "--lr"),
    # sweep
    (["sweep", "s-timeout-inf.toml"], "timeout_s"),
    (["sweep", "s-timeout-0.toml"], "timeout_s"),
    (["sweep", "s-repeats-0.toml"], "repeats"),
    (["sweep", "s-repeats-frac.toml"], "repeats"),
    (["sweep", "s-batch-nan.toml"], "batch"),
    (["sweep", "s-lr-inf.toml"], "lr"),
    (["sweep", "s-seq-big.toml"], "seq"),
    (["sweep", "s-unknown.toml"], "foo"),
    (["sweep", "s-utf8.toml"], "s-utf8.toml"),
    (["sweep", "fifo"], "fifo"),
    (["sweep", "s-lr-inf.toml", "--results", ""], "--results"),
    (["sweep", "s-grid.toml"], "the grid has 1,000,000 points"),
    (["sweep", "s-fsdp.toml"], "parallel"),
    # project
    ([*PROJECT, "--micro-batch", "nan"], "--micro-batch"),
    ([*PROJECT, "--micro-batch", "inf"], "--micro-batch"),
    ([*PROJECT, "--vpp", "inf"], "--vpp"),
    ([*PROJECT, "--global-batch-tokens", "inf"], "--global-batch-tokens"),
    ([*PROJECT, "--seq", "nan"], "--seq"),
    ([*PROJECT, "--chips", "1e300"], "--chips"),
    ([*PROJECT, "--tp", "0.5"], "--tp"),
    (["project", "--workload", "claude-2", "--cluster", "rainier", "--mfu", "2"], "--mfu"),
    ([*PROJECT, "--plot", "."], "--plot"),
    ([*PROJECT, "--plot", "plots"], "--plot"),
    ([*PROJECT, "--plot", "x.txt"], "--plot"),
    ([*PROJECT, "--plot", "/proc/plot.png"], "--plot"),
    ([*PROJECT, "--plot", "x.png/"], "--plot"),
    ([*PROJECT, "--plot", "link.png"], "--plot"),
    ([*PROJECT, "--pue", "1e300"], "--pue"),
    ([*PROJECT, "--chip-power-w", "1e300"], "--chip-power-w"),
    ([*PROJECT, "--peak-tflops", "1e300", "--chip-memory-gb", "80"], "--peak-tflops"),
    (["project", "--workload", "claude-2", "--cluster", "rainier", "--mfu", "1e-300"], "--mfu"),
    ([*PROJECT, "--sweep-chips", "1e400"], "--sweep-chips"),
    # report
    (["report", "--cv-threshold", "nan"], "--cv-threshold"),
    (["report", "--cv-threshold", "-1"], "--cv-threshold"),
    (["report", "--results", "missing.jsonl"], "--results"),
    (["report", "."], "--results"),
    (["report", "fifo"], "--results"),
    (["report", "--results", ""], "--results"),
    (["report", "--out", ""], "--out"),
    (["report", "--out", "/proc/rep"], "--out"),
    (["report", "--out", "linked"], "--out"),
    (["report", "--baseline", ""], "--baseline"),
    # compare
    ([*CMP, "--prices", "p-nan.toml"], "usd_per_hour"),
    ([*CMP, "--prices", "p-inf.toml"], "usd_per_hour"),
    ([*CMP, "--prices", "p-str.toml"], "usd_per_hour"),
    ([*CMP, "--prices", "p-chips.toml"], "chips"),
    ([*CMP, "--prices", "p-utf8.toml"], "--prices"),
    ([*CMP, "--results", ""], "--results"),
    ([*CMP, "--results", "fifo"], "--results"),
    (["compare", "--baseline", "nope=1", "--target", "device=cpu"], "--baseline"),
    (["compare", "--baseline", "", "--target", "device=cpu"], "--baseline"),
    ([*CMP, "--out", "victim.md"], "--out"),
    ([*CMP, "--out", "/proc/cmp"], "--out"),
    ([*CMP, "--out", "linked"], "--out"),
    # plan
    (["plan", "--model", "1b", "--hardware", "trn2", "--nproc", "0"], "--nproc"),
    (["plan", "--model", "1b", "--memory-gib", "inf"], "--memory-gib"),
    (["plan", "--config", "plan-str.toml"], "--nproc"),
    (["plan", "--model", "1b", "--hardware", "trn2", "--nproc", "2147483647"], "--nproc"),
    # ingest
    (["ingest", "i-str.json"], "tokens_per_s"),
    (["ingest", "i-energy.json"], "energy"),
    (["ingest", "i-nan.json"], "window_s"),
    (["ingest", "i-utf8.json"], "i-utf8.json"),
    (["ingest", "i-nested-nan.json"], "step_time.median_s must be a finite number"),
    (["ingest", "i-inf-joules.json"], "energy.joules must be a finite number"),
    (["ingest", "i-deep.json"], "nested too deeply"),
    (["ingest", "missing.json"], "missing.json"),
    (["ingest", "i-str.json", "--results", ""], "--results"),
    (["ingest", "i-twice.json"], "appears 2 times in the file"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch, cache_dir):
    """A working directory with the cases' files and a results file holding one record (the
    default results file, $TRNBENCH_RESULTS)."""
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "linked").mkdir()
    for name, target in LINKS.items():
        (tmp_path / name).symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    results = tmp_path / "results.jsonl"
    store.append(results, Record.new(OK_CONFIG, {"host": "h"}, tokens_per_s=1.0,
                                     device=Device(kind="cpu", name="cpu"),
                                     tokens_per_s_per_chip=1.0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRNBENCH_RESULTS", str(results))
    return results


@pytest.mark.parametrize(("argv", "field"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input(workdir, capsys, argv, field):
    before = workdir.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("trnbench: error: ") and field in err, err
    assert "Traceback" not in err
    assert workdir.read_bytes() == before
    assert (workdir.parent / "victim.md").read_bytes() == FILES["victim.md"]
    assert sorted(p.name for p in workdir.parent.iterdir()) == sorted(
        [*FILES, *(n for n in LINKS if "/" not in n), "linked", "fifo", "results.jsonl"])
    assert sorted(p.name for p in (workdir.parent / "linked").iterdir()) == [
        "compare.md", "report.md"]


def test_an_empty_results_variable_is_refused(workdir, capsys, monkeypatch):
    """TRNBENCH_RESULTS= (set, empty) is a mistake, not a request for the default file."""
    monkeypatch.setenv("TRNBENCH_RESULTS", "")
    for argv in (RUN, ["report"], CMP, ["ingest", "i-str.json"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(list(argv))
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith(
            "trnbench: error: TRNBENCH_RESULTS: is set but empty"), err
    assert not (workdir.parent / "results").exists()


def test_there_are_enough_cases():
    assert len(CASES) >= 60 and len({tuple(c[0]) for c in CASES}) == len(CASES)
