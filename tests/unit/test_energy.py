"""Energy meters: real sysfs file formats in fake trees, a pynvml stand-in, real runs."""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

import pytest

from bench.backends import hardware
from bench.energy import meters, neuron
from bench.energy.base import integrate
from bench.energy.modelled import ModelledMeter
from bench.energy.neuron import NeuronMeter, parse_raw, parse_utilization
from bench.energy.null import NoMeter
from bench.energy.nvml import GpuRef, NvmlMeter
from bench.energy.rapl import RaplMeter
from bench.records.record import Energy
from tests.conftest import rapl_zone, ticking_counter, write_atomic
from tests.device_fakes import FakeGpu, fake_pynvml

TRN2_MAX = hardware.DEVICES["trn2"].power_w



def _window(meter, during=None, seconds: float = 0.0) -> Energy:
    meter.open()
    if during:
        during()
    time.sleep(seconds)
    return meter.close()


# --- the reading and its derived figures -------------------------------------------------

def test_record_block_derives_per_token_per_kwh_and_power():
    block = Energy(method="rapl", joules=7.2e6, interval_s=3600.0).with_tokens(1000).to_json()
    assert block["j_per_token"] == pytest.approx(7200)
    assert block["tokens_per_kwh"] == pytest.approx(500)  # 1000 tokens / 2 kWh
    assert block["avg_power_w"] == pytest.approx(2000)
    null = Energy(method="nvml", joules=None, reason="no GPU").with_tokens(1000).to_json()
    assert null["joules"] is None and null["reason"] == "no GPU"
    assert null["j_per_token"] is None and null["tokens_per_kwh"] is None


def test_integrate_counts_only_spans_with_two_valid_ends():
    joules, covered = integrate([(0.0, 100.0), (1.0, 200.0), (2.0, None), (3.0, 50.0)])
    assert (joules, covered) == (150.0, 1.0)


# --- RAPL ----------------------------------------------------------------------------------


def test_rapl_adds_each_package_once_and_no_subzone(tmp_path):
    pkg0 = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    pkg1 = rapl_zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    core = rapl_zone(tmp_path, "intel-rapl:0:0", "core", 0)  # also a top-level link in sysfs
    dram = rapl_zone(tmp_path / "intel-rapl:0", "intel-rapl:0:2", "dram", 0)
    psys = rapl_zone(tmp_path, "intel-rapl:2", "psys", 0)  # platform: contains the packages

    def work():
        for path, uj in ((pkg0, 4_000_000), (pkg1, 6_500_000), (core, 9e9), (dram, 9e9),
                         (psys, 9e9)):
            write_atomic(path, f"{int(uj)}\n")

    reading = _window(RaplMeter(tmp_path), work)
    assert reading.method == "rapl" and reading.reason is None
    assert reading.device_joules == {"package-0": 3.0, "package-1": 1.5}
    assert reading.joules == pytest.approx(4.5)
    assert reading.coverage == 1.0 and reading.scope.startswith("cpu-package (all processes)")


def test_a_rapl_zone_name_that_is_not_utf8_is_read(tmp_path):
    """The name is a label: a byte that is not UTF-8 is replaced, and the run is metered."""
    pkg = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    (tmp_path / "intel-rapl:0" / "name").write_bytes(b"package-\xff\n")
    reading = _window(RaplMeter(tmp_path), lambda: write_atomic(pkg, "3000000\n"))
    assert reading.reason is None and reading.device_joules == {"package-\ufffd": 2.0}


def test_rapl_counter_wraps_at_max_energy_range(tmp_path):
    pkg = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 900, max_uj=1000)
    # wraps once between two wrap-guard reads, and once more before the window closes
    meter = RaplMeter(tmp_path, wrap_guard_s=0.01)

    def work():
        write_atomic(pkg, "100\n")
        time.sleep(0.5)  # the guard reads 100 many times
        write_atomic(pkg, "600\n")
        time.sleep(0.5)
        write_atomic(pkg, "300\n")

    reading = _window(meter, work)
    assert reading.joules == pytest.approx((200 + 500 + 700) / 1e6)


@pytest.mark.parametrize("case", ["missing", "directory", "garbage", "no-package"])
def test_rapl_absent_or_unreadable_is_null_with_reason(tmp_path, case):
    root = tmp_path / "powercap"
    if case != "missing":
        rapl_zone(root, "intel-rapl:0:0", "core", 1)
    if case in ("directory", "garbage"):
        energy_file = rapl_zone(root, "intel-rapl:0", "package-0", 1)
        energy_file.unlink()
        if case == "directory":  # tests run as root: chmod would not make it unreadable
            energy_file.mkdir()
        else:
            energy_file.write_text("not a number\n")
    reading = _window(RaplMeter(root))
    expected = {"missing": "no RAPL powercap tree", "directory": "cannot read",
                "garbage": "cannot read", "no-package": "no RAPL package zone"}[case]
    assert reading.joules is None and expected in reading.reason
    assert reading.warnings == [f"energy is null: {reading.reason}"]


# --- Neuron ---------------------------------------------------------------------------------

def _power_node(root: Path, device: int, sub: str = "stats/power") -> Path:
    node = root / f"neuron{device}" / sub
    node.mkdir(parents=True)
    (root / f"neuron{device}" / "power").mkdir()  # the kernel's runtime-PM directory
    return node


def test_parse_the_driver_formats():
    agg = parse_utilization("POWER_STATUS_VALID,1781370720,1.50,3.50,2.00\n")
    assert (agg.status, agg.timestamp, agg.avg) == ("POWER_STATUS_VALID", 1781370720, 0.02)
    assert parse_raw("die,util_bips,counter\n0,4000,17\n1,5000,17\n") == 0.5
    assert parse_raw("die,util_bips,counter\n0,4000,17\n1,unavailable\n") is None
    assert parse_raw("die,util_bips,counter\n0,read_error\n") is None
    assert parse_raw("die,util_bips,counter\n0,bogus(12000),3\n") is None
    for bad in ("", "garbage", "die,util_bips,counter\n"):
        with pytest.raises(ValueError):
            parse_raw(bad)
    with pytest.raises(ValueError):
        parse_utilization("POWER_STATUS_VALID,1,2\n")


def test_neuron_raw_per_die_is_integrated_over_the_window(tmp_path):
    for dev in (0, 1):
        node = _power_node(tmp_path, dev)
        write_atomic(node / "utilization", "POWER_STATUS_NO_DATA,0,0.00,0.00,0.00\n")
        write_atomic(node / "utilization_raw", "die,util_bips,counter\n0,4000,1\n1,5000,1\n")
    reading = _window(NeuronMeter(TRN2_MAX, chips_used=2, root=tmp_path), seconds=0.6)
    assert reading.method == "neuron-power-utilization" and reading.reason is None
    assert reading.coverage == pytest.approx(1.0)
    # largest die: 50 % of the estimated 500 W per chip, two chips
    assert reading.joules == pytest.approx(2 * 250 * reading.interval_s, rel=0.05)
    assert set(reading.device_joules) == {"neuron0", "neuron1"}
    assert "estimated maximum power 500 W" in reading.scope and "estimate" in reading.scope
    assert reading.details["source"] == "utilization_raw"
    assert reading.sampling_period_s == 0.5 and reading.warnings == []


def _wait_until(condition, timeout_s: float = 60.0) -> None:
    """Wait for the meter's sampler thread to reach ``condition`` (no fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the sampler made no progress"
        time.sleep(0.005)


def test_neuron_raw_gap_lowers_coverage(tmp_path, monkeypatch):
    raw = _power_node(tmp_path, 0) / "utilization_raw"
    write_atomic(raw.with_name("utilization"), "POWER_STATUS_NO_DATA,0,0.00,0.00,0.00\n")
    write_atomic(raw, "die,util_bips,counter\n0,2000,1\n")
    monkeypatch.setattr(neuron, "RAW_POLL_S", 0.02)  # the driver's file; the poll is ours
    meter = NeuronMeter(TRN2_MAX, chips_used=1, root=tmp_path)

    def work():  # about half the samples valid, then a gap to the window's end
        samples = meter._raw_samples["neuron0"]
        _wait_until(lambda: len(samples) >= 10)
        write_atomic(raw, "die,util_bips,counter\n0,unavailable\n")
        gap_from = len(samples)
        _wait_until(lambda: len(samples) >= gap_from + 10)

    reading = _window(meter, work)
    assert 0 < reading.coverage < 0.9
    assert reading.joules == pytest.approx(100 * reading.interval_s, rel=0.05)
    assert any("covers" in w and "filled with the mean" in w for w in reading.warnings)


def test_neuron_aggregate_short_window_warns_with_coverage(tmp_path):
    util = _power_node(tmp_path, 0) / "utilization"
    now = int(time.time())
    write_atomic(util, f"POWER_STATUS_VALID,{now - 120},1.00,9.00,5.00\n")  # an older minute

    # an aggregate whose minute holds the whole window (its timestamp is the minute's end)
    reading = _window(NeuronMeter(TRN2_MAX, chips_used=1, root=tmp_path),
                      lambda: write_atomic(util,
                                           f"POWER_STATUS_VALID,{now + 30},10.0,30.0,20.0\n"),
                      seconds=0.3)
    assert reading.coverage == pytest.approx(1.0)
    assert reading.joules == pytest.approx(0.20 * 500 * reading.interval_s, rel=0.05)
    assert reading.sampling_period_s == 60 and reading.details["source"] == "utilization"
    assert any("shorter than the 60 s aggregation period" in w and "coverage 100%" in w
               for w in reading.warnings)


def test_neuron_aggregate_partly_covering_the_window(tmp_path):
    util = _power_node(tmp_path, 0) / "utilization"
    write_atomic(util, "POWER_STATUS_NO_DATA,0,0.00,0.00,0.00\n")
    meter = NeuronMeter(TRN2_MAX, chips_used=1, root=tmp_path)
    meter.open()
    ends = int(time.time()) + 1  # the minute ending within the window's first second
    write_atomic(util, f"POWER_STATUS_VALID,{ends},10.0,30.0,20.0\n")
    time.sleep(2.2)
    reading = meter.close()
    assert 0 < reading.coverage < 0.6
    assert reading.joules == pytest.approx(0.20 * 500 * reading.interval_s, rel=0.05)
    assert any(f"coverage {reading.coverage:.0%}" in w for w in reading.warnings)


@pytest.mark.parametrize("status", ["POWER_STATUS_VALID", "POWER_STATUS_NO_DATA"])
def test_neuron_no_aggregate_for_the_window_is_null_not_silent(tmp_path, status):
    util = _power_node(tmp_path, 0) / "utilization"
    stamp = int(time.time()) + (30 if status != "POWER_STATUS_VALID" else -120)
    write_atomic(util, f"{status},{stamp},0.00,0.00,0.00\n")
    reading = _window(NeuronMeter(TRN2_MAX, chips_used=1, root=tmp_path), seconds=0.1)
    assert reading.joules is None and reading.coverage == 0.0
    assert "no valid per-minute power aggregate covers the window" in reading.reason
    assert any("shorter than the 60 s aggregation period" in w for w in reading.warnings)
    if status != "POWER_STATUS_VALID":
        assert any("were not POWER_STATUS_VALID" in w for w in reading.warnings)


def test_neuron_moved_layout_under_a_configured_root(tmp_path, monkeypatch):
    # Neuron 2.33 moved the sysfs paths: the root comes from the environment and the power
    # node is searched for when it is not at stats/power
    root = tmp_path / "moved"
    node = _power_node(root, 0, sub="metrics/device/power")
    write_atomic(node / "utilization_raw", "die,util_bips,counter\n0,10000,5\n")
    write_atomic(node / "utilization", "POWER_STATUS_NO_DATA,0,0.00,0.00,0.00\n")
    _power_node(root, 1, sub="metrics/device/power")
    power = root / "neuron1/metrics/device/power"
    write_atomic(power / "utilization_raw", "die,util_bips,counter\n0,0,5\n")
    write_atomic(power / "utilization", "POWER_STATUS_NO_DATA,0,0,0,0\n")
    monkeypatch.setenv("TRNBENCH_NEURON_SYSFS", str(root))
    reading = _window(NeuronMeter(TRN2_MAX, chips_used=0.25), seconds=0.3)
    assert reading.details["root"] == str(root)
    assert reading.device_joules["neuron1"] == 0.0
    assert reading.joules == pytest.approx(500 * reading.interval_s, rel=0.05)
    assert any("measures all 2 Neuron device(s)" in w and "0.25 chip(s)" in w
               for w in reading.warnings)


@pytest.mark.parametrize("case", ["missing", "no-devices", "no-node", "directory", "garbage",
                                  "no-max-power"])
def test_neuron_absent_or_unreadable_is_null_with_reason(tmp_path, case):
    root = tmp_path / "neuron_device"
    if case != "missing":
        root.mkdir()
    if case not in ("missing", "no-devices"):
        node = _power_node(root, 0) if case != "no-node" else root / "neuron0"
        node.mkdir(parents=True, exist_ok=True)
        if case == "directory":
            (node / "utilization").mkdir()
        elif case == "garbage":
            write_atomic(node / "utilization", "\x00\x01 not the driver's format\n")
        elif case == "no-max-power":
            write_atomic(node / "utilization", "POWER_STATUS_VALID,1,0,0,0\n")
    max_power = None if case == "no-max-power" else TRN2_MAX
    reading = _window(NeuronMeter(max_power, chips_used=1, root=root))
    expected = {"missing": "no Neuron sysfs", "no-devices": "no neuronN device directories",
                "no-node": "no power node", "directory": "cannot read",
                "garbage": "cannot read", "no-max-power": "no maximum chip power"}[case]
    assert reading.joules is None and expected in reading.reason
    assert reading.method == "neuron-power-utilization"


# --- NVML through a stand-in that follows pynvml's API --------------------------------------

GPUS = [("GPU-aaaa", "00000000:1B:00.0", 100.0), ("GPU-bbbb", "00000000:3B:00.0", 300.0)]


@pytest.fixture
def nvml(monkeypatch):
    def install(counter: bool = True, init_error: int | None = None,
                legacy: bool = False) -> types.ModuleType:
        module = fake_pynvml([FakeGpu(u, p, w, counter) for u, p, w in GPUS], init_error,
                             legacy)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    return install


def test_nvml_counter_with_polling_alongside_on_the_runs_gpu(nvml):
    module = nvml()
    # torch's cuda:0 is NVML's second GPU: the UUID finds it whatever the numbering
    # 1 s: a thread descheduled between a counter read and its timestamp on a loaded host
    # (tens of ms) stays within the 5% the figures are held to
    reading = _window(NvmlMeter([GpuRef(0, uuid="GPU-bbbb")], poll_s=0.02), seconds=1.0)
    assert reading.method == "nvml-energy-counter" and reading.coverage == 1.0
    assert reading.joules == pytest.approx(300 * reading.interval_s, rel=0.05)
    assert list(reading.device_joules) == ["GPU-bbbb"]  # unique across ranks and hosts
    assert "cuda:0 = GPU-bbbb" in reading.scope
    polled = reading.details["nvml-power-polling"]
    assert polled["joules"] == pytest.approx(reading.joules, rel=0.05)
    assert reading.details["difference_j"] == pytest.approx(reading.joules - polled["joules"])
    assert reading.details["nvml-energy-counter"]["joules"] == reading.joules
    assert module.state["init"] == 0  # nvmlShutdown after the window
    assert reading.warnings == []


def test_nvml_labels_boards_by_uuid_text_from_older_nvidia_ml_py(nvml):
    nvml(legacy=True)  # nvmlDeviceGetUUID returns bytes
    reading = _window(NvmlMeter([GpuRef(0, uuid="GPU-aaaa")], poll_s=0.02), seconds=0.1)
    assert list(reading.device_joules) == ["GPU-aaaa"] and "cuda:0 = GPU-aaaa" in reading.scope


def test_nvml_unsupported_counter_falls_back_to_polling(nvml):
    nvml(counter=False)
    reading = _window(NvmlMeter([GpuRef(1, pci_bus_id="00000000:1B:00.0")], poll_s=0.02),
                      seconds=0.4)
    assert reading.method == "nvml-power-polling"
    assert reading.sampling_period_s == 0.02 and reading.coverage == pytest.approx(1.0)
    assert reading.joules == pytest.approx(100 * reading.interval_s, rel=0.05)
    assert reading.details["nvml-energy-counter"]["joules"] is None
    assert reading.details["difference_j"] is None
    assert any("energy counter is not supported" in w for w in reading.warnings)
    assert any("shorter than NVML's ~1 s power averaging" in w for w in reading.warnings)


def test_nvml_counter_going_backwards_falls_back_to_polling_with_a_warning(nvml):
    module = nvml()
    gpu = module.gpus[1]

    def driver_reload():
        gpu.base_mj = 0  # the cumulative counter restarts below its value at the window's start

    reading = _window(NvmlMeter([GpuRef(0, uuid="GPU-bbbb")], poll_s=0.02), during=driver_reload,
                      seconds=0.4)
    assert reading.method == "nvml-power-polling"
    assert reading.joules == pytest.approx(300 * reading.interval_s, rel=0.05)
    assert reading.details["nvml-energy-counter"]["joules"] is None
    assert any(w.startswith("the NVML energy counter went backwards over the window on "
                            "GPU-bbbb") and "polled every 0.02 s" in w for w in reading.warnings)
    record = reading.with_tokens(100).to_json()
    assert record["warnings"] == reading.warnings and record["j_per_token"] > 0


def test_nvml_maps_through_cuda_visible_devices(nvml, monkeypatch):
    nvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    # which GPU was read (300 W or 100 W) is the point: 25% leaves room for a thread
    # descheduled for tens of ms in a 0.2 s window on a loaded host, and tells 3x apart
    reading = _window(NvmlMeter([GpuRef(0)], poll_s=0.05), seconds=0.2)
    assert reading.joules == pytest.approx(300 * reading.interval_s, rel=0.25)
    assert any("NVML index 1" in w and "CUDA_DEVICE_ORDER" in w for w in reading.warnings)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,GPU-bbbb")
    reading = _window(NvmlMeter([GpuRef(0, uuid="GPU-gone")], poll_s=0.05), seconds=0.2)
    assert reading.joules == pytest.approx(100 * reading.interval_s, rel=0.25)
    assert reading.warnings == []


def test_nvml_unavailable_is_null_with_reason(nvml, monkeypatch):
    reading = _window(NvmlMeter([]))
    assert reading.joules is None and "no CUDA device" in reading.reason
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed
    reading = _window(NvmlMeter([GpuRef(0)]))
    assert "nvidia-ml-py is not installed" in reading.reason
    nvml(init_error=12)
    reading = _window(NvmlMeter([GpuRef(0)]))
    assert reading.reason == "NVML could not start: NVML Shared Library Not Found"
    module = nvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    reading = _window(NvmlMeter([GpuRef(0)]))
    assert reading.method == "nvml" and "no NVML device found for cuda:0" in reading.reason
    assert module.state["init"] == 0


# --- modelled, none, and the choice of meter -------------------------------------------------

def test_modelled_is_table_power_times_chips_times_time_and_says_so():
    reading = _window(ModelledMeter("h100", chips=2), seconds=0.1)
    assert reading.method == "modelled" and reading.scope.startswith("modelled: 700 W x 2")
    assert "not measured" in reading.scope and "datasheet" in reading.scope
    assert reading.joules == pytest.approx(1400 * reading.interval_s)
    cpu = _window(ModelledMeter("cpu", chips=1))
    assert cpu.joules is None and "the CPU has none" in cpu.reason


def test_none_is_null_without_a_warning():
    reading = _window(NoMeter("not measured (--energy none)", warn=False))
    assert reading.joules is None and reading.warnings == [] and reading.method == "none"


def test_auto_takes_the_backends_sensor_and_never_models():
    from bench.records.record import Device

    device = Device(name="x", kind="trn2", device_count=1, devices_used=1, chips=1)
    picks = {}
    for name in ("cuda", "neuron", "neuron-xla", "cpu", "xla", "tpu"):
        backend = types.SimpleNamespace(name=name, device=types.SimpleNamespace(type="cpu"))
        picks[name] = type(meters.make_meter("auto", backend, device)).__name__
    assert picks == {"cuda": "NvmlMeter", "neuron": "NeuronMeter", "neuron-xla": "NeuronMeter",
                     "cpu": "RaplMeter", "xla": "RaplMeter", "tpu": "NoMeter"}


# --- real benchmark runs of the tiny model ----------------------------------------------------

RUN = ("run", "--model", "tiny", "--steps", "3", "--warmup", "1", "--json")


def test_run_with_rapl_from_a_fake_tree(cli_main, tmp_path, monkeypatch):
    root = tmp_path / "powercap"
    counter = rapl_zone(root, "intel-rapl:0", "package-0", 0)
    rapl_zone(root, "intel-rapl:0:0", "core", 0)
    monkeypatch.setenv("TRNBENCH_RAPL_ROOT", str(root))
    with ticking_counter(counter, 500_000):  # ~50 W
        proc = cli_main(*RUN, "--energy", "rapl", "--results", "r.jsonl")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    e = record["energy"]
    assert e["method"] == "rapl" and e["joules"] > 0 and e["reason"] is None
    assert e["j_per_token"] == pytest.approx(e["joules"] / record["tokens"])
    assert e["tokens_per_kwh"] == pytest.approx(record["tokens"] / (e["joules"] / 3.6e6))
    assert e["avg_power_w"] == pytest.approx(e["joules"] / e["interval_s"])
    assert e["interval_s"] == pytest.approx(record["window_s"], rel=0.2, abs=0.01)
    assert list(e["device_joules"]) == ["package-0"] and e["coverage"] == 1.0
    assert e["scope"].startswith("cpu-package (all processes): 1 RAPL package zone(s)")
    assert record["config"]["energy"] == "rapl"


def test_run_with_modelled_none_and_unavailable_sensors(cli_main):
    for choice, method, reason in (
        ("modelled", "modelled", "no table power for device kind 'cpu'"),
        ("none", "none", "not measured"),
        ("nvml", "nvml", "no CUDA device"),
        ("neuron", "neuron-power-utilization", "no Neuron sysfs"),
    ):
        proc = cli_main(*RUN, "--energy", choice, "--results", "r.jsonl")
        assert proc.returncode == 0, proc.stderr
        e = json.loads(proc.stdout)["energy"]
        assert (e["method"], e["joules"], e["j_per_token"]) == (method, None, None)
        assert reason in e["reason"]
        assert bool(e["warnings"]) == (choice != "none")


def test_summary_shows_energy_and_its_warning(cli_main, tmp_path, monkeypatch):
    monkeypatch.setenv("TRNBENCH_RAPL_ROOT", str(tmp_path / "absent"))
    (tmp_path / "run.toml").write_text('[run]\nmodel = "tiny"\nsteps = 2\nwarmup = 1\n'
                                       'energy = "rapl"\n')
    proc = cli_main("run", "--config", "run.toml", "--results", "r.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "energy" in proc.stdout and "null (rapl: no RAPL powercap tree" in proc.stdout
    assert proc.stdout.count("no RAPL powercap tree") == 1  # said once, in the energy row


@pytest.mark.parametrize("source", ["flag", "toml"])
def test_bad_energy_choice_is_bad_input(cli_main, tmp_path, source):
    (tmp_path / "bad.toml").write_text('[run]\nenergy = "joulemeter"\n')
    args = ("--energy", "joulemeter") if source == "flag" else ("--config", "bad.toml")
    proc = cli_main("run", "--model", "tiny", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--energy" in lines[0] and "modelled" in lines[0]
    assert not (tmp_path / "results").exists()
