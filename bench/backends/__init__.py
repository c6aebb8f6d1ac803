"""Devices: one backend class per device family (base, cpu, cuda, neuron, xla), their
datasheet figures, the CPU GEMM peak, the host environment, and `auto` selection."""
