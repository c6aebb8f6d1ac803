"""Cluster-scale projection: time, chips, energy and power of a training run (docs/cli/project.md).

Modules: ``workload`` (FLOPs and model shape), ``cluster`` (chip, node, cluster, power),
``search`` (memory and the TP/PP/DP/EP plan search), ``comm`` (communication and the bubble),
``model`` (time, energy, power, sweep), ``presets`` (labelled data), ``measured`` (inputs
from stored runs), ``render`` (tables, plot), ``command`` (the CLI verb), ``headline``.
"""
