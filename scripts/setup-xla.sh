#!/usr/bin/env bash
# Create the XLA:CPU lane's virtual environment ($VENV_XLA, default .venv-xla): torch 2.9.0
# and torch-xla 2.9.0 (the torch-xla line that legacy torch-neuronx 2.9 runs on) plus
# trnbench, so that CI runs the Neuron XLA code path on PJRT_DEVICE=CPU.
# torch 2.9.0 brings its CUDA libraries (~7 GB): torch_xla will not import without them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV_XLA=${VENV_XLA:-.venv-xla}
[ -x "$VENV_XLA/bin/python" ] || "$PYTHON" -m venv "$VENV_XLA"
pip=("$VENV_XLA/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$VENV_XLA/bin/python" -c "import torch_xla" 2>/dev/null; then
  echo "setup-xla: installing torch==2.9.0 torch-xla==2.9.0 into $VENV_XLA (several GB)"
  "${pip[@]}" "torch==2.9.0" "torch-xla==2.9.0"
fi
"${pip[@]}" -e ".[test]"
echo "setup-xla: ready: $VENV_XLA/bin/python"
