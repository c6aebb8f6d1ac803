#!/usr/bin/env bash
# Create the virtual environment ($VENV, default .venv) with trnbench and its test tools.
#
# torch: an interpreter that already has torch (a CUDA machine, a Neuron DLAMI's venv) keeps
# it: the venv sees its packages. Without PYTHON, the TorchNeuron DLAMI's venv where it exists
# (so that `make bench` on a trn2 measures the NeuronCore, not the host CPU), else python3. On
# a machine with no torch, a GPU machine gets the registry's default (CUDA) build and any
# other machine the CPU wheel of torch 2.13.0, never several GB of unused CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
DLAMI_PYTHON=/opt/aws_neuronx_venv_torch_neuronx_2_14_0/bin/python
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if [ -x "$DLAMI_PYTHON" ]; then
    PYTHON=$DLAMI_PYTHON
    echo "setup: the TorchNeuron DLAMI: building on $PYTHON"
  fi
fi
VENV=${VENV:-.venv}
TORCH_CPU_PIN=${TORCH_CPU_PIN:-torch==2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "setup: $PYTHON has torch $("$PYTHON" -c 'import torch; print(torch.__version__)'); keeping it"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "setup: installing torch (CUDA build) for this GPU machine"
    "${pip[@]}" torch
  else
    echo "setup: installing $TORCH_CPU_PIN (CPU build)"
    "${pip[@]}" "$TORCH_CPU_PIN"
  fi
fi
"${pip[@]}" -e ".[test]"
echo "setup: ready: $VENV/bin/trnbench"
