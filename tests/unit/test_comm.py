"""`trnbench comm` in this process: sizes and ops as given, the bytes each op moves, the
timing window's order of events, the check of a result on a one-rank gloo group, the record
of gathered ranks by hand arithmetic, and bad input refused before anything starts (the
real torchrun ranks: tests/integration/test_comm_processes.py)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.distributed as dist
from rich.console import Console

from bench.backends.cpu import CpuBackend
from bench.backends.cuda import CudaBackend
from bench.backends.selection import Selection
from bench.comm import collectives, config, summary, worker
from bench.inputs.errors import ConfigError
from bench.records.record import Record
from tests.device_fakes import FakeDeviceModule


def test_sizes_are_powers_of_two_from_min_to_max():
    assert config.parse_sizes("1K:4M") == [2**k for k in range(10, 23)]
    assert config.parse_sizes("8") == [8]
    assert config.parse_sizes("1kb:1MiB") == [2**k for k in range(10, 21)]
    assert config.parse_size("1G") == 2**30


@pytest.mark.parametrize(("spec", "why"), [
    ("3K:4M", "'3K' is not a power of two from 1 to 16G bytes"),
    ("1K:32G", "'32G' is not a power of two from 1 to 16G bytes"),
    ("0:4M", "'0' is not a power of two"),
    ("4M:1K", "MIN 4M is above MAX 1K"),
    ("1T", "expected a size like 1K, 4M or 1G (K = 1024), got '1T'"),
    ("", "expected a size like 1K")])
def test_sizes_out_of_range_name_the_flag(spec, why):
    with pytest.raises(ConfigError, match="^" + re.escape(f"--sizes: {why}")):
        config.parse_sizes(spec)


def test_ops_unknown_or_empty_are_refused():
    assert config.parse_ops("all_gather, all_reduce,all_gather") == ("all_gather", "all_reduce")
    with pytest.raises(ConfigError, match="^--ops: unknown op 'broadcast'; accepted: "
                                          "all_reduce, all_gather, reduce_scatter, all_to_all, "
                                          "send_recv"):
        config.parse_ops("all_reduce,broadcast")


def test_split_ops_move_whole_elements_per_rank():
    # 1 KiB of fp32 on 3 ranks: 256 elements, 85 per rank -> 255 elements, 1020 B
    assert config.point_bytes("all_gather", 1024, 3, 4) == (1020, 255)
    assert config.point_bytes("all_reduce", 1024, 3, 4) == (1024, 256)
    assert config.point_bytes("all_to_all", 8, 4, 4) == (0, 0)
    cfg = config.make("cpu", "all_reduce,all_to_all", "8:1K", "fp32", 1, 1, 10.0)
    config.check_world(cfg, 2)  # 8 B = one fp32 element per rank on 2 ranks
    with pytest.raises(ConfigError, match=r"^--sizes: 8 B is below one fp32 element per rank "
                                          r"for all_to_all on 4 ranks: the smallest size must "
                                          r"be >= 16 B"):
        config.check_world(cfg, 4)


def test_the_window_opens_after_sync_barrier_sync_and_closes_after_sync():
    events: list[str] = []
    ticks = iter([10.0, 10.5])

    def clock() -> float:
        events.append("clock")
        return next(ticks)

    seconds = collectives.window(lambda: events.append("op"), 3, lambda: events.append("sync"),
                                 lambda: events.append("barrier"), clock)
    assert seconds == 0.5
    assert events == ["sync", "barrier", "sync", "clock", "op", "op", "op", "sync", "clock"]


@pytest.fixture
def one_rank(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("op", [op for op in config.OPS if op != "send_recv"])  # to oneself
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_op_runs_and_checks_on_a_one_rank_group(one_rank, op, dtype):
    c = collectives.Collective(op, 64, 1, 0, dtype, torch.device("cpu"))
    seconds = collectives.window(c, 2, lambda: None, dist.barrier)
    assert seconds > 0 and c.wrong() == 0
    assert c.output.sum() == (64 if op in ("all_reduce", "reduce_scatter") else 0)


def test_the_record_takes_the_slowest_rank_by_hand(one_rank):
    cfg = config.make("cpu", "all_reduce,all_gather", "4K", "fp32", 1, 20, 10.0)
    sel = Selection(CpuBackend, "cpu as asked")
    start = Record.start(cfg.as_dict(), sel, {"host": "a"}, run_id="r1", world_size=4)
    # 4 ranks on 2 hosts; windows of 20 iterations
    gathered = [{"host": h, "points": [
        {"op": "all_reduce", "size_bytes": 4096, "count": 1024, "window_s": w, "wrong": 0},
        {"op": "all_gather", "size_bytes": 4096, "count": 1024, "window_s": w / 2, "wrong": 0}]}
        for h, w in (("a", 0.002), ("a", 0.004), ("b", 0.003), ("b", 0.001))]
    r = worker.assemble(cfg, start, CpuBackend(), gathered)
    assert (r.world_size, r.nodes, r.comm.ranks, r.comm.nodes, r.comm.one_node) == (4, 2, 4, 2,
                                                                                    False)
    ar, ag = r.comm.points
    # slowest all_reduce window 0.004 s / 20 = 200 us; 4096 B / 200 us = 0.02048 GB/s
    assert ar.time_us == pytest.approx(200.0) and ar.rank_time_us == pytest.approx(
        [100.0, 200.0, 150.0, 50.0])
    assert ar.algbw_gbs == pytest.approx(0.02048)
    assert ar.busbw_gbs == pytest.approx(0.02048 * 2 * 3 / 4)
    assert ag.time_us == pytest.approx(100.0) and ag.busbw_gbs == pytest.approx(0.04096 * 3 / 4)
    assert r.comm.api == {"all_reduce": "all_reduce",
                          "all_gather": collectives.ALL_GATHER.__name__}
    assert r.comm.reference is None and r.device.devices_used == 4
    assert Record.from_json(r.to_json()) == r


def test_a_wrong_result_flags_the_record(one_rank):
    cfg = config.make("cpu", "all_reduce", "4K", "fp32", 1, 1, 10.0)
    start = Record.start(cfg.as_dict(), Selection(CpuBackend, ""), {"host": "a"})
    gathered = [{"host": "a", "points": [{"op": "all_reduce", "size_bytes": 4096, "count": 1024,
                                          "window_s": 0.001, "wrong": w}]} for w in (0, 3)]
    r = worker.assemble(cfg, start, CpuBackend(), gathered)
    assert r.comm.points[0].wrong == 3
    assert r.flags == ["1 point(s) gave a wrong result in the check after the window: "
                       "all_reduce 4 KiB"]


def _refused(cli_main, tmp_path, *args: str, env: dict | None = None) -> str:
    results = tmp_path / "r.jsonl"
    proc = cli_main("comm", *args, "--results", str(results))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and not results.exists()
    return proc.stderr.removeprefix("trnbench: error: ").strip()


@pytest.mark.parametrize(("args", "why"), [
    (("--ops", "all_reduce,bcast"), "--ops: unknown op 'bcast'"),
    (("--sizes", "1K:3M"), "--sizes: '3M' is not a power of two"),
    (("--nproc", "1"), "--nproc: collectives need at least 2 ranks (--nproc x --nnodes), got 1"),
    (("--nproc", "0"), "--nproc: must be an integer >= 1"),
    (("--dtype", "fp16"), "--dtype: invalid choice: 'fp16'"),
    (("--backend", "neuron-xla"), "--backend: invalid choice: 'neuron-xla'"),
    (("--nnodes", "2"), "--rdzv-endpoint: is required with --nnodes > 1"),
    (("--nproc", "4", "--ops", "all_gather", "--sizes", "8:1K"),
     "--sizes: 8 B is below one fp32 element per rank for all_gather on 4 ranks")])
def test_bad_input_is_one_line_and_nothing_starts(cli_main, tmp_path, args, why):
    assert _refused(cli_main, tmp_path, *args).startswith(why)


def test_a_largest_size_over_a_ranks_memory_is_refused(cli_main, tmp_path, monkeypatch):
    monkeypatch.setenv("TRNBENCH_RANK_MEMORY_GIB", "0.5")
    why = _refused(cli_main, tmp_path, "--sizes", "1K:256M")
    assert why.startswith("--sizes: MAX needs 3 x 268,435,456 B = 0.75 GiB per rank, above the "
                          "0.5 GiB a rank has with 2 per node")


def test_more_ranks_than_devices_is_refused(cli_main, tmp_path, monkeypatch):
    fake = FakeDeviceModule("torch.cuda (stand-in)", "NVIDIA H100 80GB HBM3", count=8)
    monkeypatch.setattr(CudaBackend, "probe", classmethod(lambda cls: type(
        "P", (), {"name": "cuda", "available": True, "reason": "8 stand-in GPUs"})()))
    real = torch.get_device_module
    monkeypatch.setattr(torch, "get_device_module",
                        lambda kind=None: fake if kind == "cuda" else real(kind))
    why = _refused(cli_main, tmp_path, "--backend", "cuda", "--nproc", "9")
    assert why == "--nproc: 9 ranks per node, but this host has 8 cuda device(s): one rank per " \
                  "device"


def test_the_summary_shows_every_point_and_each_plateau(one_rank):
    cfg = config.make("cpu", "all_reduce", "1K:4K", "fp32", 1, 10, 10.0)
    start = Record.start(cfg.as_dict(), Selection(CpuBackend, "cpu as asked"), {"host": "a"},
                         run_id="abc")
    gathered = [{"host": "a", "points": [
        {"op": "all_reduce", "size_bytes": s, "count": s // 4, "window_s": 0.001, "wrong": 0}
        for s in (1024, 2048, 4096)]} for _ in range(2)]
    r = worker.assemble(cfg, start, CpuBackend(), gathered)
    console = Console(width=200, record=True)
    console.print(summary.points_table(r))
    console.print(summary.summary_table(r, "r.jsonl"))
    text = console.export_text()
    # 4 KiB in 100 us (0.001 s / 10): 0.04096 GB/s x 2(2-1)/2; the median of the 3 sizes
    assert "all_reduce plateau │ 0.02048 GB/s busbw (median of 1 KiB..4 KiB)" in text
    assert "0.04096" in text and "100.00" in text
    assert summary.finished_line(r) == ("comm abc ok: 3 points on 2 ranks; busbw plateau "
                                        "all_reduce 0.0205 GB/s")


def test_the_bar_draws_through_a_pipe_as_on_a_terminal(capsys):
    with summary.progress(True) as update:
        update(1, 4, "all_reduce 1 KiB: busbw 0.1 GB/s (rank 0)")
    err = capsys.readouterr().err
    assert "1/4" in err and "all_reduce 1 KiB" in err and "\x1b[" in err  # terminal codes
    with summary.progress(False) as none:
        assert none is None
