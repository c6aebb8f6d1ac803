"""Stand-ins for accelerator device modules, so the accelerator paths run whole on the CPU.

``FakeDeviceModule`` has the shape of ``torch.cuda`` (PyTorch docs, "torch.cuda":
https://docs.pytorch.org/docs/stable/cuda.html, and "CUDA semantics: asynchronous execution"):
``set_device``, ``current_device``, ``device_count``, ``is_available``, ``get_device_name``,
``get_device_capability``, ``synchronize``, ``Event(enable_timing=...)`` with ``record()`` and
``elapsed_time(end)`` in milliseconds, and the caching allocator's ``memory_allocated``,
``max_memory_allocated`` and ``reset_peak_memory_stats``. TorchNeuron's ``torch.neuron`` has
the same role and names ("torch.neuron and torch.accelerator reference",
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/torch/reference/api/torch-neuron-module.html:
device, stream, event and memory functions; its memory guide asks for ``synchronize()`` before
any memory statistic is read).

As on a device, work is asynchronous: an event recorded after a step is complete only after
the next ``synchronize``, and ``elapsed_time`` of an incomplete event raises, as CUDA does.
The CPU computes synchronously, so an event's time is the host clock at ``record()``: the
per-step times it gives are the real times of the steps. The allocator is a ledger the test
drives (``allocate``/``free``): its peak is what ``max_memory_allocated`` reports.

``fake_pynvml`` stands in for nvidia-ml-py's ``pynvml`` (NVML API Reference): GPUs by UUID,
PCI bus id or index, their names, total memory, energy counter and power.

``fake_neuron_ls`` is an executable ``neuron-ls`` printing the JSON example of the Neuron LS
User Guide, Neuron 2.29
(https://awsdocs-neuron.readthedocs-hosted.com/en/v2.29.0/tools/neuron-sys-tools/neuron-ls.html,
``neuron-ls -j`` on a trn2n.48xlarge at LNC=2): the first and the last device entry as printed
there (the page elides the 14 between them), nothing added.

``kernel_backend`` is the CPU backend with attention restricted to one SDPA kernel, as a device
that has that kernel alone; ``tiny_cfg`` the `tiny` run those tests train.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import stat
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch
from torch.nn.attention import SDPBackend
from torch.utils._python_dispatch import TorchDispatchMode

from bench.backends.cpu import CpuBackend
from bench.inputs import config


class FakeEvent:
    """``torch.cuda.Event``: ``record()`` on the current stream, ``elapsed_time(end)`` in ms."""

    def __init__(self, module: FakeDeviceModule, enable_timing: bool = False):
        self.module = module
        self.enable_timing = enable_timing
        self.stamp: float | None = None
        self.completed = False

    def record(self, stream: Any = None) -> None:
        self.stamp = time.perf_counter()
        self.completed = False
        self.module.pending.append(self)

    def query(self) -> bool:
        return self.completed

    def elapsed_time(self, end: FakeEvent) -> float:
        if not (self.enable_timing and end.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self.stamp is None or end.stamp is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        if not (self.completed and end.completed):
            raise RuntimeError("device not ready: events not completed (no synchronize yet)")
        return (end.stamp - self.stamp) * 1e3


class FakeDeviceModule(types.ModuleType):
    """A device module of the ``torch.cuda`` shape; ``calls`` logs what the harness called."""

    def __init__(self, name: str, device_name: str, count: int = 1,
                 capability: tuple[int, int] = (9, 0)):
        super().__init__(name)
        self.device_name = device_name
        self.count = count
        self.capability = capability
        self.current = 0
        self.pending: list[FakeEvent] = []
        self.allocated = self.peak = 0
        self.calls: list[tuple[str, Any]] = []

    # device
    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return self.count

    def set_device(self, device: Any) -> None:
        self.calls.append(("set_device", device))
        self.current = int(getattr(device, "index", device) or 0)

    def current_device(self) -> int:
        return self.current

    def get_device_name(self, device: Any = None) -> str:
        return self.device_name

    def get_device_capability(self, device: Any = None) -> tuple[int, int]:
        return self.capability

    def synchronize(self, device: Any = None) -> None:
        self.calls.append(("synchronize", device))
        for event in self.pending:
            event.completed = True
        self.pending.clear()

    def Event(self, enable_timing: bool = False) -> FakeEvent:  # noqa: N802 - torch's name
        return FakeEvent(self, enable_timing)

    # caching allocator
    def allocate(self, nbytes: int) -> None:
        self.allocated += nbytes
        self.peak = max(self.peak, self.allocated)

    def free(self, nbytes: int) -> None:
        self.allocated -= nbytes

    def memory_allocated(self, device: Any = None) -> int:
        return self.allocated

    def max_memory_allocated(self, device: Any = None) -> int:
        self.calls.append(("max_memory_allocated", device))
        return self.peak

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        self.calls.append(("reset_peak_memory_stats", device))
        self.peak = self.allocated

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


# --- NVML (pynvml) -------------------------------------------------------------------------

H100_NAME = "NVIDIA H100 80GB HBM3"
# an H100 80GB's total memory as NVML reports it: 81,559 MiB, 79.65 GiB (Modal, "Why does
# an NVIDIA H100 80GB card offer 85.52 GB?",
# https://thundergolfer.com/blog/nvidia-gpu-memory-capacity)
H100_NVML_TOTAL = 81_559 * 2**20


class FakeGpu:
    """One board as NVML shows it (an H100 80GB HBM3 unless told otherwise). ``mig``: None for
    a GPU without MIG, else whether MIG mode is on."""

    def __init__(self, uuid: str, pci: str, watts: float, counter: bool = True,
                 name: str = H100_NAME, memory_total: int = H100_NVML_TOTAL,
                 mig: bool | None = None):
        self.uuid, self.pci, self.watts, self.counter = uuid, pci, watts, counter
        self.name, self.memory_total, self.mig = name, memory_total, mig
        self.t0 = time.perf_counter()
        self.base_mj = 10**9  # the counter's value at t0 (a driver reload restarts it lower)


def fake_pynvml(gpus: list[FakeGpu], init_error: int | None = None,
                legacy: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's ``pynvml``: same names, arguments, units and errors (NVML
    API Reference, https://docs.nvidia.com/deploy/nvml-api/): ``nvmlDeviceGetMemoryInfo``
    returns a ``c_nvmlMemory_t`` whose ``total``, ``free`` and ``used`` are bytes;
    ``nvmlDeviceGetMigMode`` returns [current, pending] (NVML_DEVICE_MIG_ENABLE = 1), and
    NVML_ERROR_NOT_SUPPORTED on a GPU without MIG. ``legacy``: names and UUIDs as bytes, as
    nvidia-ml-py releases before 11.515 returned them."""
    m = types.ModuleType("pynvml")
    m.NVML_DEVICE_MIG_DISABLE = 0
    m.NVML_DEVICE_MIG_ENABLE = 1
    m.NVML_ERROR_UNINITIALIZED = 1
    m.NVML_ERROR_INVALID_ARGUMENT = 2
    m.NVML_ERROR_NOT_SUPPORTED = 3
    m.NVML_ERROR_NOT_FOUND = 6
    m.NVML_ERROR_LIBRARY_NOT_FOUND = 12
    strings = {1: "Uninitialized", 2: "Invalid Argument", 3: "Not Supported", 6: "Not Found",
               12: "NVML Shared Library Not Found"}

    class NVMLError(Exception):
        def __init__(self, value: int):
            super().__init__(value)
            self.value = value

        def __str__(self) -> str:
            return strings[self.value]

    m.NVMLError = NVMLError
    state = {"init": 0}

    def need_init():
        if not state["init"]:
            raise NVMLError(m.NVML_ERROR_UNINITIALIZED)

    def init():
        if init_error is not None:
            raise NVMLError(init_error)
        state["init"] += 1

    def shutdown():
        need_init()
        state["init"] -= 1

    def by(predicate):
        need_init()
        for gpu in gpus:
            if predicate(gpu):
                return gpu
        raise NVMLError(m.NVML_ERROR_NOT_FOUND)

    def by_index(index: int):
        need_init()
        if not 0 <= index < len(gpus):
            raise NVMLError(m.NVML_ERROR_INVALID_ARGUMENT)
        return gpus[index]

    def energy_mj(handle: FakeGpu) -> int:
        need_init()
        if not handle.counter:
            raise NVMLError(m.NVML_ERROR_NOT_SUPPORTED)
        return handle.base_mj + int(handle.watts * (time.perf_counter() - handle.t0) * 1000)

    def power_mw(handle: FakeGpu) -> int:
        need_init()
        return int(handle.watts * 1000)

    def mig_mode(handle: FakeGpu) -> list[int]:
        need_init()
        if handle.mig is None:
            raise NVMLError(m.NVML_ERROR_NOT_SUPPORTED)
        mode = m.NVML_DEVICE_MIG_ENABLE if handle.mig else m.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def text(value: str) -> str | bytes:
        need_init()
        return value.encode() if legacy else value

    m.nvmlInit = init
    m.nvmlShutdown = shutdown
    m.nvmlDeviceGetCount = lambda: (need_init(), len(gpus))[1]
    m.nvmlDeviceGetHandleByIndex = by_index
    m.nvmlDeviceGetHandleByUUID = lambda uuid: by(lambda g: g.uuid == uuid)
    m.nvmlDeviceGetHandleByPciBusId = lambda bus: by(lambda g: g.pci == bus)
    m.nvmlDeviceGetUUID = lambda h: text(h.uuid)
    m.nvmlDeviceGetTotalEnergyConsumption = energy_mj
    m.nvmlDeviceGetPowerUsage = power_mw
    m.nvmlDeviceGetName = lambda h: text(h.name)
    m.nvmlDeviceGetMigMode = mig_mode
    m.nvmlDeviceGetMemoryInfo = lambda h: (need_init(), types.SimpleNamespace(
        total=h.memory_total, free=h.memory_total, used=0))[1]
    m.state = state
    m.gpus = gpus
    return m



# --- neuron-ls -----------------------------------------------------------------------------

_PROCESSES = [{"pid": 113985, "command": "neuron-bench exec --run-as-cc-neff --...",
               "neuron_runtime_version": "2.0.0"}]
TRN2_LNC2 = [  # neuron-ls -j, Neuron LS User Guide (Neuron 2.29), devices 0 and 15
    {"neuron_device": 0, "bdf": "cc:00.0", "cpu_affinity": "48-95,144-191", "numa_node": "1",
     "connected_to": [12, 3, 4, 1], "nc_count": 4, "logical_neuroncore_config": 2,
     "memory_size": 103079215104, "neuroncore_ids": [0, 1, 2, 3],
     "neuron_processes": _PROCESSES},
    {"neuron_device": 15, "bdf": "f7:00.0", "cpu_affinity": "48-95,144-191", "numa_node": "1",
     "connected_to": [11, 14, 3, 12], "nc_count": 4, "logical_neuroncore_config": 2,
     "memory_size": 103079215104, "neuroncore_ids": [60, 61, 62, 63],
     "neuron_processes": _PROCESSES},
]


def trn2_lnc1() -> list[dict]:
    """The same devices at LNC=1 (the page shows LNC=2 only): ``nc_count`` counts the cores a
    device shows, 8 per Trainium2 at LNC=1 (field definitions of the same page)."""
    devices = copy.deepcopy(TRN2_LNC2)
    for d in devices:
        first = d["neuroncore_ids"][0] * 2
        d.update(nc_count=8, logical_neuroncore_config=1,
                 neuroncore_ids=list(range(first, first + 8)))
    return devices


def fake_neuron_ls(bin_dir: Path, devices: list[dict], release: str,
                   top: dict | None = None) -> Path:
    """An executable ``neuron-ls``: ``new`` (Neuron >= 2.34) knows only ``--output-format json``
    (and prints an object, with the instance-wide fields ``top`` beside the devices), ``old``
    only ``--json-output``; an unknown flag exits 2, as argparse-style tools do. Without
    arguments it prints the text table's header (the guide's columns). Each call is logged to
    ``calls.log``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    payload = {**(top or {}), "unpublished_key": devices} if release == "new" else devices
    (bin_dir / "payload.json").write_text(json.dumps(payload))
    accepted = ["--output-format", "json"] if release == "new" else ["--json-output"]
    exe = bin_dir / "neuron-ls"
    exe.write_text(f"""#!{sys.executable}
import sys
from pathlib import Path
here = Path(__file__).parent
with open(here / "calls.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if not sys.argv[1:]:
    print("| NEURON DEVICE | NEURON CORES | NEURON CORE IDS | NEURON MEMORY | CONNECTED DEVICES "
          "| PCI BDF | CPU AFFINITY | NUMA NODE |")
    sys.exit(0)
if sys.argv[1:] != {accepted!r}:
    sys.stderr.write("neuron-ls: error: unrecognized arguments: " + " ".join(sys.argv[1:]) + "\\n")
    sys.exit(2)
print((here / "payload.json").read_text())
""")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return bin_dir


# --- torch_neuronx (TorchNeuron eager mode) -------------------------------------------------

class _EagerCompiler(TorchDispatchMode):
    """Sees every ATen operator call, as TorchNeuron's dispatcher does."""

    def __init__(self, owner: FakeTorchNeuronx):
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.owner.dispatch(func._schema.name, args, kwargs or {})
        return func(*args, **(kwargs or {}))


class FakeTorchNeuronx(types.ModuleType):
    """``torch_neuronx`` of TorchNeuron's eager mode (module docstring); ``compiling()`` is the
    context in which operator calls are seen."""

    def __init__(self, cpu_fallback: tuple[str, ...] = ()):
        super().__init__("torch_neuronx")
        self.cpu_fallback = set(cpu_fallback)
        self.executed: list[str] = []
        self.fallback: list[str] = []
        self.memory_cache: set[str] = set()
        self.stats = {"persistent_hits": 0, "persistent_misses": 0, "total_entries": 0}
        self._C = types.SimpleNamespace(
            _get_compilation_cache_stats=lambda: dict(self.stats),
            _get_fallback_ops=lambda: list(self.fallback))

    def compiling(self) -> TorchDispatchMode:
        return _EagerCompiler(self)

    def dispatch(self, name: str, args: tuple, kwargs: dict) -> None:
        if name in self.cpu_fallback:
            self.fallback.append(name)
            return
        self.executed.append(name)
        shapes = [(tuple(a.shape), str(a.dtype)) for a in (*args, *kwargs.values())
                  if isinstance(a, torch.Tensor)]
        key = hashlib.sha256(f"{name}{shapes}".encode()).hexdigest()
        if key in self.memory_cache:
            return
        self.memory_cache.add(key)
        self.stats["total_entries"] += 1
        counted = os.environ.get("TORCH_NEURONX_METRICS_ENABLED") == "1"
        root = os.environ.get("TORCH_NEURONX_NEFF_CACHE_DIR")
        if root is None:
            return
        neff = Path(root, key[:2], key[2:4], f"{key}.neff")
        if neff.exists():
            self.stats["persistent_hits"] += counted
        else:
            neff.parent.mkdir(parents=True, exist_ok=True)
            neff.write_bytes(b"NEFF stand-in")
            self.stats["persistent_misses"] += counted

    def clear_op_tracking(self) -> None:
        self.executed.clear()
        self.fallback.clear()

    def get_fallback_ops(self) -> list[str]:
        return list(self.fallback)

    def get_executed_ops(self) -> list[str]:
        return list(self.executed)


def neuron_on_cpu(device_module: FakeDeviceModule) -> type:
    """``NeuronBackend``, unchanged, driving ``device_module`` in the role of ``torch.neuron``;
    its tensors live on the CPU."""
    from bench.backends.neuron import NeuronBackend

    return type("NeuronOnCpu", (NeuronBackend,),
                {"device_type": "cpu", "module": property(lambda self: device_module)})


class OnlyKernel(CpuBackend):
    """The CPU backend with SDPA restricted to one kernel."""

    kernel: SDPBackend

    def sdpa_backends(self, precision):
        return (self.kernel,)


def kernel_backend(kernel: SDPBackend) -> type[CpuBackend]:
    return type(f"Only{kernel.name.title()}", (OnlyKernel,), {"kernel": kernel})


def tiny_cfg(**kw):
    """A `tiny` CPU run of 2 timed steps after 1 warm-up step, with ``kw`` set."""
    return config.resolve("cpu", {"model": "tiny", "steps": 2, "warmup": 1, **kw})
