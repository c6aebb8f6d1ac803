#!/usr/bin/env bash
# Set up trnbench on a fresh trn2 instance, for either Neuron SDK line:
#   native  TorchNeuron, device `neuron` (Neuron 2.33+, torch 2.13/2.14) -> --backend neuron
#   xla     legacy torch-neuronx 2.9 on torch-xla 2.9 (Neuron <= 2.31)   -> --backend neuron-xla
#
# On the Neuron DLAMI the driver, runtime and a framework venv are already there: pass that
# venv's python with --python and only trnbench is installed into a venv that sees it.
# Elsewhere (plain Ubuntu 24.04) --install-sdk installs the apt and pip packages first.
#
# usage: scripts/trn2/setup.sh [--sdk native|xla] [--python PATH] [--install-sdk] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/../.."

sdk=native
python=python3
install_sdk=0
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sdk) sdk=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --install-sdk) install_sdk=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument $1 (accepted: --sdk native|xla, --python PATH, --install-sdk, --dry-run)" >&2; exit 2 ;;
  esac
done
case "$sdk" in
  native) pip_packages=("torch==2.13.*" "torch-neuronx==2.13.*") ;;
  xla) pip_packages=("torch==2.9.*" "torch-xla==2.9.*" "torch-neuronx==2.9.*" "neuronx-cc==2.*") ;;
  *) echo "setup.sh: --sdk must be native or xla, got $sdk" >&2; exit 2 ;;
esac
neuron_pip=https://pip.repos.neuron.amazonaws.com
neuron_apt=https://apt.repos.neuron.amazonaws.com

run() {
  if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

if [ "$install_sdk" = 1 ]; then
  # Neuron driver, runtime, collectives and tools (AWS Neuron docs, setup guide: apt packages)
  codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
  codename=${codename:-noble}
  run sudo sh -c "echo 'deb $neuron_apt $codename main' > /etc/apt/sources.list.d/neuron.list"
  run sudo sh -c "wget -qO - $neuron_apt/GPG-PUB-KEY-AMAZON-AWS-NEURON.PUB | apt-key add -"
  run sudo apt-get update
  run sudo apt-get install -y aws-neuronx-dkms aws-neuronx-runtime-lib aws-neuronx-collectives aws-neuronx-tools
  run "$python" -m venv ".venv-neuron-$sdk"
  python=".venv-neuron-$sdk/bin/python"
  run "$python" -m pip install --extra-index-url "$neuron_pip" "${pip_packages[@]}"
fi
# trnbench itself, in .venv, seeing the framework of $python (scripts/setup.sh keeps it)
run env PYTHON="$python" make setup
run .venv/bin/trnbench env
