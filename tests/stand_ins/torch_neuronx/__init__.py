"""A stand-in ``torch_neuronx`` for the processes a test starts (``trnbench suite``'s runs, put
on their path by tests/integration/test_trn2_suite.py with the dist-info beside it, which says
torch-neuronx 2.14.3.0: TorchNeuron). Importing it, as the neuron backend's probe does,
installs the stand-ins of tests/device_fakes.py in this process: ``torch.neuron`` of the
torch.cuda shape and this module as ``FakeTorchNeuronx``, whose eager mode sees every ATen call
from here on (NEFFs in ``TORCH_NEURONX_NEFF_CACHE_DIR``, CPU fallbacks of the operators named in
``FAKE_NEURON_CPU_FALLBACK``, comma separated). The neuron backend then runs its own code on
CPU tensors, with gloo for a process group, as ``tests.device_fakes.neuron_on_cpu`` does in
one process."""

import os
import sys

import torch

from bench.backends.neuron import NeuronBackend
from tests.device_fakes import FakeDeviceModule, FakeTorchNeuronx

_fake = FakeTorchNeuronx(tuple(op for op in os.environ.get("FAKE_NEURON_CPU_FALLBACK",
                                                           "").split(",") if op))
_device = FakeDeviceModule("torch.neuron (stand-in)", "an unpublished device name", count=64)
torch.neuron = _device
NeuronBackend.device_type = "cpu"
NeuronBackend.dist_backend = "gloo"
NeuronBackend.module = property(lambda self: _device)
_fake.compiling().__enter__()  # for the rest of the process, as the device would be
sys.modules[__name__] = _fake
