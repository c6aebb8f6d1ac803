"""Node-scale parallelism on torch.distributed: the layout of ranks (``layout``: TP x DP
over a DeviceMesh, checked before any process starts) and its application to a model
(``apply``: tensor/sequence parallelism, activation checkpointing, DDP/FSDP2/HSDP)."""
