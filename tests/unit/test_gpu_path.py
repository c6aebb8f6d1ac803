"""The GPU path, as far as it runs without a GPU and in this process: the bare-loop comparison
script's input checks, --compile's scope, the SDPA kernel choice and its enforcement, the
record's precision/optimizer/attention blocks, the H100 sweep file, a whole run of the cuda
backend through a device module of the torch.cuda shape (tests/device_fakes.py), and the memory
check before a run through a pynvml stand-in. The script and the runbook run for real, and a
compiled run's accounting, in tests/integration/test_gpu_path_processes.py.

CPU stand-ins take the cuda backend's policies (fused AdamW, FlashAttention only in bf16) onto
CPU kernels: PyTorch has a CPU FlashAttention kernel and a CPU fused AdamW.
"""

from __future__ import annotations

import runpy
import sys
import time

import pytest
import torch
from rich.console import Console
from torch.nn.attention import SDPBackend
from torch.profiler import profile

from bench.backends.accelerator import DeviceEventTimer
from bench.backends.base import Probe
from bench.backends.cpu import CpuBackend
from bench.backends.cuda import CudaBackend, flash_kernels
from bench.backends.hardware import MemoryUnknown
from bench.backends.selection import Selection
from bench.energy.null import NoMeter
from bench.inputs import config
from bench.launch import sweep
from bench.parallel import memory_plan
from bench.records import metrics, store
from bench.report import build as report_pkg
from bench.report import cells
from bench.report.console import summary_table
from bench.train import runner
from models import registry
from tests.conftest import ROOT, read_jsonl
from tests.device_fakes import (
    H100_NAME,
    H100_NVML_TOTAL,
    FakeDeviceModule,
    FakeGpu,
    fake_pynvml,
    kernel_backend,
    tiny_cfg,
)

H100_CAPABILITY = (9, 0)  # what torch.cuda.get_device_capability() returns on an H100


class CudaPolicyOnCpu(CpuBackend):
    """The cuda backend's choices (fused AdamW; in bf16 FlashAttention only, as on an H100)
    on CPU kernels."""

    optimizer_options = CudaBackend.optimizer_options

    def sdpa_backends(self, precision):
        return flash_kernels(precision, H100_CAPABILITY, "NVIDIA H100 80GB HBM3 (stand-in)")


# --- the SDPA kernel choice -------------------------------------------------------------------

def test_cuda_runs_flash_only_in_bf16_and_lets_torch_choose_in_fp32():
    assert flash_kernels("bf16", (9, 0), "H100") == (SDPBackend.FLASH_ATTENTION,)
    assert flash_kernels("bf16", (8, 0), "A100") == (SDPBackend.FLASH_ATTENTION,)
    assert flash_kernels("fp32", (9, 0), "H100") is None
    assert flash_kernels("fp32", (7, 0), "V100") is None


def test_bf16_on_a_gpu_without_flash_fails_with_the_reason():
    with pytest.raises(RuntimeError, match=r"Tesla T4 has 7\.5.*--precision fp32"):
        flash_kernels("bf16", (7, 5), "Tesla T4")


@pytest.mark.parametrize(("kernel", "op", "absent"), [
    (SDPBackend.FLASH_ATTENTION, "aten::_scaled_dot_product_flash_attention_for_cpu",
     "aten::_scaled_dot_product_attention_math"),
    (SDPBackend.MATH, "aten::_scaled_dot_product_attention_math",
     "aten::_scaled_dot_product_flash_attention_for_cpu"),
])
def test_train_step_runs_attention_on_the_backends_kernel(kernel, op, absent):
    torch.manual_seed(0)
    model = registry.build(registry.get("tiny"))
    optimizer = torch.optim.AdamW(model.parameters())
    step = runner.make_train_step(model, optimizer, kernel_backend(kernel)(), "bf16")
    tokens = torch.randint(0, 512, (2, 17))
    with profile() as prof:
        step(tokens[:, :-1], tokens[:, 1:])
    names = {e.name for e in prof.events()}
    assert op in names and absent not in names


@pytest.mark.parametrize("compiled", [False, True])
def test_a_kernel_that_cannot_run_fails_the_run_instead_of_falling_back(compiled, cache_dir,
                                                                       tmp_path):
    """The CPU has no memory-efficient attention: restricted to it, the run fails (eager: at the
    first step; compiled: while the graph is traced) and is stored as failed."""
    results = tmp_path / "r.jsonl"
    backend = kernel_backend(SDPBackend.EFFICIENT_ATTENTION)
    record = runner.execute(tiny_cfg(compile=compiled), Selection(backend, "stand-in"),
                            results).to_json()
    assert record["status"] == "failed" and "RuntimeError" in record["error"]
    assert [r["status"] for r in read_jsonl(results)] == ["failed"]


# --- the record's blocks ---------------------------------------------------------------------

def test_cuda_policy_record_names_fused_adamw_flash_and_autocast(cache_dir):
    r = runner.measure(tiny_cfg(precision="bf16"), CudaPolicyOnCpu()).to_json()
    assert r["precision"] == {
        "mode": "autocast bf16 compute, fp32 parameters and optimizer states",
        "param_dtypes": ["float32"], "compute_dtype": "bfloat16",
        "optimizer_state_dtypes": ["float32"], "master_copy": False}
    assert r["optimizer"]["implementation"] == "fused"
    assert r["optimizer"]["betas"] == [0.9, 0.95] and r["optimizer"]["lr"] == 3e-4
    assert r["attention"] == {"sdpa_backends": ["FLASH_ATTENTION"], "enforced": True}
    assert r["compile"] is None and r["compilation"] is None


def test_cpu_record_in_fp32_leaves_attention_to_torch(cache_dir):
    r = runner.measure(tiny_cfg(), CpuBackend()).to_json()
    assert r["precision"]["mode"] == "fp32 parameters and compute"
    assert r["precision"]["compute_dtype"] == "float32"
    assert r["optimizer"]["implementation"] == "for-loop"  # torch's default on CPU tensors
    assert r["attention"] == {"sdpa_backends": None, "enforced": False}


def test_compile_leaves_a_fused_optimizer_eager_and_compiles_another():
    params = [torch.nn.Parameter(torch.ones(3))]
    be = CpuBackend()
    assert not be.compiles_optimizer_step(torch.optim.AdamW(params, fused=True))
    assert be.compiles_optimizer_step(torch.optim.AdamW(params))
    assert be.compiles_optimizer_step(torch.optim.AdamW(params, foreach=True))


# --- scripts/gpu ------------------------------------------------------------------------------

def test_bare_loop_script_rejects_bad_input(capsys):
    """The script's ``main`` in-process (test_gpu_path_processes.py starts the script)."""
    main = runpy.run_path(str(ROOT / "scripts/gpu/bare_loop.py"), run_name="bare_loop")["main"]
    assert main(["--device", "cpu", "--model", "tiny", "--rounds", "0"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip().splitlines() == ["bare_loop: error: --rounds: must be >= 1, got 0"]


def test_h100_sweep_file_resolves_to_its_grid(monkeypatch, tmp_path):
    """The sweep file through the real loader; the cuda probe is a stand-in (no GPU here)."""
    monkeypatch.setattr(CudaBackend, "probe",
                        classmethod(lambda cls: Probe("cuda", True, "stand-in: no GPU here")))
    s = sweep.load(ROOT / "scripts/gpu/sweep-h100.toml", tmp_path / "r.jsonl")
    assert len(s.points) == 80 and s.repeats == 3
    cfgs = [p.config for p in s.points]
    assert {c.model for c in cfgs} == {"125m", "350m", "1b", "3b"}
    assert {c.compile for c in cfgs} == {False, True}
    assert {(c.backend, c.precision) for c in cfgs} == {("cuda", "bf16")}
    assert ("1b", 2048) in {(c.model, c.seq) for c in cfgs}



# --- the accelerator path, whole, through a device module of the torch.cuda shape -------------

GIB = 1 << 30


class CudaShapedOnCpu(CudaBackend):
    """The cuda backend, unchanged, driving ``tests.device_fakes.FakeDeviceModule`` (the
    torch.cuda API) instead of torch.cuda; its tensors live on the CPU."""

    device_type = "cpu"
    fake: FakeDeviceModule

    @property
    def module(self) -> FakeDeviceModule:
        return self.fake


def _h100_module() -> FakeDeviceModule:
    fake = FakeDeviceModule("torch.cuda (stand-in)", "NVIDIA H100 80GB HBM3", count=8)
    fake.allocate(8 * GIB)  # a peak left from before the run, which must not be reported
    fake.free(6 * GIB)
    return fake


def test_accelerator_run_on_a_cuda_shaped_module_stores_event_times_and_peak(cache_dir,
                                                                            tmp_path):
    fake = _h100_module()
    backend = type("H100OnCpu", (CudaShapedOnCpu,), {"fake": fake})
    results = tmp_path / "r.jsonl"
    cfg = config.resolve("cuda", {"model": "tiny", "steps": 4, "warmup": 1, "precision": "fp32",
                                  "energy": "none"})
    record = runner.execute(cfg, Selection(backend, "stand-in"), results).to_json()
    assert record["status"] == "ok", record.get("error")
    assert read_jsonl(results)[0]["run_id"] == record["run_id"]
    # per-step times from the module's events, read after the closing synchronize
    assert record["step_time"]["method"] == "device-events"
    times = record["step_times_s"]
    assert len(times) == 4 and min(times) > 0 and sum(times) <= record["window_s"]
    assert record["step_time"]["p90_s"] is not None and record["step_time"]["cv"] is not None
    # peak memory: the allocator's peak since the reset before warm-up, not the stale 8 GiB
    memory = dict(record["memory"])
    assert {k: memory.pop(k) for k in ("peak_bytes", "method")} == {
        "peak_bytes": 2 * GIB, "method": "torch.cuda (stand-in).max_memory_allocated (peak since "
                                         "the reset before warm-up)"}
    assert set(memory) == {"predicted", "predicted_peak_bytes"}  # the plan's estimate
    names = fake.names()
    assert names[0] == "set_device" and fake.calls[0][1] == 0
    assert names.index("reset_peak_memory_stats") < names.index("max_memory_allocated")
    assert names[names.index("max_memory_allocated") - 1] == "synchronize"
    # the device, peak and MFU through the module's name
    assert record["device"]["name"] == "NVIDIA H100 80GB HBM3"
    assert record["device"]["kind"] == "h100" and record["device"]["device_count"] == 8
    assert record["peak"]["label"] == "datasheet" and 0 < record["mfu"] < 1
    assert record["optimizer"]["implementation"] == "fused"


def test_device_events_cannot_be_read_before_the_closing_synchronize():
    fake = _h100_module()
    timer = DeviceEventTimer(fake, torch.device("cpu"), steps=2)
    timer.start()
    timer.mark()
    timer.mark()
    with pytest.raises(RuntimeError, match="not completed"):
        timer.step_times()
    fake.synchronize()
    assert len(timer.step_times()) == 2


class NoTimingEvents(FakeDeviceModule):
    """A device module whose events cannot time (``enable_timing`` unsupported)."""

    def Event(self, enable_timing: bool = False):  # noqa: N802 - torch's name
        raise RuntimeError("timing events are not supported on this device")


class SlowClosingMeter(NoMeter):
    """An energy meter whose shutdown takes 0.3 s (NVML's shutdown, a sampler thread's join)."""

    def _close(self, interval_s):
        time.sleep(0.3)
        return super()._close(interval_s)


def test_window_average_without_device_events_excludes_the_meters_shutdown(cache_dir,
                                                                          monkeypatch):
    """per-step time = window seconds / steps, both taken at the closing synchronisation,
    before the meter closes; one averaged figure has no p90 or CV, and the summary says so."""
    fake = NoTimingEvents("torch.cuda (stand-in)", "NVIDIA H100 80GB HBM3")
    backend = type("NoEventsOnCpu", (CudaShapedOnCpu,), {"fake": fake})
    monkeypatch.setattr(runner.meters, "make_meter",
                        lambda *a: SlowClosingMeter("slow stand-in", warn=False))
    cfg = config.resolve("cuda", {"model": "tiny", "steps": 4, "warmup": 1, "precision": "fp32"})
    stored = runner.execute(cfg, Selection(backend, "stand-in"), None)
    record = stored.to_json()
    assert record["status"] == "ok", record.get("error")
    st = record["step_time"]
    assert st["method"] == "window-average" and st["n"] == 4
    assert len(set(record["step_times_s"])) == 1
    assert sum(record["step_times_s"]) == pytest.approx(record["window_s"], rel=0.02)
    assert st["p90_s"] is None and st["cv"] is None and "p90 and CV" in st["spread_reason"]
    console = Console(width=200, record=True)
    console.print(summary_table(stored, "not stored"))
    text = console.export_text()
    step_line = next(line for line in text.splitlines() if "step time" in line)
    assert "window average" in step_line and "CV" not in step_line and "p90" not in step_line
    # the report's p90 cell of such a row: n/a, with the reason as its footnote
    stored = ROOT / "results" / "cpu" / "2026-11-25.jsonl"
    row = report_pkg.build(store.load(stored), [str(stored)], metrics.CV_FLAG).table.iloc[[0]]
    row = row.assign(step_p90_s=float("nan"), step_time_method="window-average")
    table = cells.results(row.reset_index(drop=True))
    reason = "window-average: no per-step spread"
    assert table.frame["step p90 ms"][0] == f"n/a [{table.footnotes.index(reason) + 1}]"


# --- the memory check before a run: NVML's memory of the GPUs the ranks use ------------------

H200_NVML_TOTAL = 143_771 * 2**20  # 140.40 GiB (the same source as H100_NVML_TOTAL)


@pytest.fixture
def cuda_here(monkeypatch) -> None:
    """The cuda backend available (its probe a stand-in), no memory override; NVML numbers
    the GPUs as CUDA does."""
    monkeypatch.delenv("TRNBENCH_RANK_MEMORY_GIB", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    monkeypatch.setattr(CudaBackend, "probe",
                        classmethod(lambda cls: Probe("cuda", True, "stand-in: no GPU here")))


def _nvml(monkeypatch, *totals: tuple[str, int], mig: bool | None = None):
    gpus = [FakeGpu(f"GPU-{i}", f"00000000:{i:02X}:00.0", 100.0, name=name, memory_total=total,
                    mig=mig)
            for i, (name, total) in enumerate(totals)]
    module = fake_pynvml(gpus)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return module


def test_nvml_refuses_llama3_70b_on_one_h100_before_anything_starts(cuda_here, monkeypatch,
                                                                   cli_main, launches):
    nvml = _nvml(monkeypatch, (H100_NAME, H100_NVML_TOTAL))
    run = cli_main("run", "--backend", "cuda", "--model", "llama3-70b", "--nproc", "1")
    assert run.returncode == 2 and not launches
    assert run.stderr == (
        "trnbench: error: plan: needs 1,240.8 GiB per rank of 71.7 GiB usable (90% of 79.6 GiB "
        "per rank, NVML: NVIDIA H100 80GB HBM3); no --tp/--ac/--parallel/--param-dtype setting "
        "fits on 1 ranks: try --nnodes 32 --parallel fsdp --param-dtype bf16 --ac full\n")
    assert nvml.state["init"] == 0  # NVML shut down again


def test_nvml_memory_of_the_smallest_gpu_the_ranks_use(cuda_here, monkeypatch):
    _nvml(monkeypatch, (H100_NAME, H100_NVML_TOTAL), ("NVIDIA H200", H200_NVML_TOTAL))
    both = CudaBackend.rank_memory(per_node=2)
    assert (both.value, both.source) == (H100_NVML_TOTAL, f"NVML: {H100_NAME}, the smallest "
                                                          "of 2 GPUs")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # cuda:0 is NVML's GPU 1
    h200 = CudaBackend.rank_memory(per_node=1)
    assert (h200.value, h200.source) == (H200_NVML_TOTAL, "NVML: NVIDIA H200")
    with pytest.raises(MemoryUnknown, match=r"^no NVML device found for cuda:1 \(tried "
                       r"nothing; CUDA_VISIBLE_DEVICES=1\)$"):
        CudaBackend.rank_memory(per_node=2)  # no second GPU for rank 1


def test_nvml_memory_in_an_uncertain_order_is_the_smallest_of_the_host(cuda_here, monkeypatch):
    """CUDA numbers GPUs fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID: its cuda:0 may be
    NVML's GPU 1 or 0, so on unlike GPUs the check takes the smallest of the host's."""
    monkeypatch.delenv("CUDA_DEVICE_ORDER")
    _nvml(monkeypatch, (H100_NAME, H100_NVML_TOTAL), ("NVIDIA H200", H200_NVML_TOTAL))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    bound = CudaBackend.rank_memory(per_node=1)
    assert (bound.value, bound.source) == (
        H100_NVML_TOTAL, f"NVML: {H100_NAME}, the smallest of the host's 2 GPUs (a lower bound: "
        "CUDA may number them otherwise than NVML; CUDA_DEVICE_ORDER=PCI_BUS_ID)")
    _nvml(monkeypatch, ("NVIDIA H200", H200_NVML_TOTAL), ("NVIDIA H200", H200_NVML_TOTAL))
    alike = CudaBackend.rank_memory(per_node=1)  # either order gives the same memory
    assert (alike.value, alike.source) == (H200_NVML_TOTAL, "NVML: NVIDIA H200")


@pytest.mark.parametrize("visible", [None, "0"])
def test_a_gpu_in_mig_mode_taken_by_index_is_not_checked(visible, cuda_here, monkeypatch,
                                                         cli_main, launches):
    """NVML's handle by index is the parent board, not the MIG instance CUDA runs on."""
    if visible:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    _nvml(monkeypatch, (H100_NAME, H100_NVML_TOTAL), mig=True)
    run = cli_main("run", "--backend", "cuda", "--model", "llama3-70b", "--nproc", "1")
    assert run.returncode == 0 and len(launches) == 1, run.stderr
    assert ("memory not checked: a GPU taken by NVML index is in MIG mode: its memory is the "
            "whole board's, not a MIG instance's") in run.stderr.splitlines()
    _nvml(monkeypatch, (H100_NAME, H100_NVML_TOTAL), mig=False)
    assert CudaBackend.rank_memory(per_node=1).value == H100_NVML_TOTAL


@pytest.mark.parametrize(("nvml", "why"), [
    ("not installed", "nvidia-ml-py is not installed (pip install 'trnbench[gpu]')"),
    ("no driver", "NVML could not start: NVML Shared Library Not Found"),
])
def test_without_nvml_the_run_is_not_checked(nvml, why, cuda_here, monkeypatch, cli_main,
                                             launches):
    if nvml == "not installed":
        monkeypatch.setitem(sys.modules, "pynvml", None)
    else:
        module = fake_pynvml([], init_error=12)  # NVML_ERROR_LIBRARY_NOT_FOUND
        monkeypatch.setitem(sys.modules, "pynvml", module)
    run = cli_main("run", "--backend", "cuda", "--model", "llama3-70b", "--nproc", "1")
    assert run.returncode == 0 and len(launches) == 1, run.stderr
    assert f"memory not checked: {why}" in run.stderr.splitlines()
    assert memory_plan.check_run(launches[0], CudaBackend, 1, 1) is None
