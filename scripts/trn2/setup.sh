#!/usr/bin/env bash
# Set up trnbench on a trn2 instance (docs/runbooks/trn2.md; every name below is cited there).
#
#   native (default)  TorchNeuron, torch-neuronx 2.14 (Neuron 2.33+)           -> --backend neuron
#   xla (legacy)      torch-neuronx 2.9 on torch-xla 2.9 (Neuron <= 2.31; no
#                     PyTorch/XLA DLAMI is published after 2.31)               -> --backend neuron-xla
#
# On the DLAMI "Deep Learning AMI Neuron torch-neuronx 2.14.0" (Ubuntu 24.04 or 26.04) the
# driver, runtime, tools and the venv /opt/aws_neuronx_venv_torch_neuronx_2_14_0 are there:
# trnbench is installed into .venv, which sees that venv's packages (the default --python).
# On a plain Ubuntu 24.04 or 26.04, --install-sdk first installs the Neuron apt repository
# (signed-by keyring), kernel headers, driver, runtime, collectives and tools, puts
# /opt/aws/neuron/bin on PATH, and pip-installs torch-neuronx 2.14, neuronx-cc and nki into
# .venv-neuron-native.
#
# usage: scripts/trn2/setup.sh [--sdk native|xla] [--python PATH] [--install-sdk]
#                              [--ubuntu 24.04|26.04] [--dry-run]
#   --ubuntu: the release --install-sdk installs for (default: this machine's); a dry run
#   prints the commands for it on any machine
set -euo pipefail
cd "$(dirname "$0")/../.."

DLAMI_VENV=/opt/aws_neuronx_venv_torch_neuronx_2_14_0
NEURON_BIN=/opt/aws/neuron/bin
neuron_apt=https://apt.repos.neuron.amazonaws.com
neuron_pip=https://pip.repos.neuron.amazonaws.com
torch_cpu_pip=https://download.pytorch.org/whl/cpu
keyring=/etc/apt/keyrings/neuron.gpg

sdk=native
python=""
install_sdk=0
ubuntu=""
dry_run=0
usage() { sed -n '2,20p' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --sdk) sdk=${2:-}; shift 2 ;;
    --python) python=${2:-}; shift 2 ;;
    --install-sdk) install_sdk=1; shift ;;
    --ubuntu) ubuntu=${2:-}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument $1 (accepted: --sdk native|xla, --python PATH, --install-sdk, --ubuntu 24.04|26.04, --dry-run)" >&2; exit 2 ;;
  esac
done
case "$sdk" in
  # TorchNeuron update and manual-install pages (Neuron 2.33): the 2.14 family with the
  # compiler and NKI, torch itself from the PyTorch CPU index
  native) pip_packages=("torch-neuronx==2.14.*" "neuronx-cc==2.*" nki)
          pip_indexes=(--extra-index-url "$neuron_pip" --extra-index-url "$torch_cpu_pip")
          releases="24.04 26.04" ;;
  xla) pip_packages=("torch==2.9.*" "torch-xla==2.9.*" "torch-neuronx==2.9.*" "neuronx-cc==2.*")
       pip_indexes=(--extra-index-url "$neuron_pip")
       releases="24.04" ;;  # the legacy line's last install pages (Neuron 2.31, 2.32's
                            # update page): 22.04 has reached end of support on Neuron
  *) echo "setup.sh: --sdk must be native or xla, got $sdk" >&2; exit 2 ;;
esac

run() {
  if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
note() { echo "setup.sh: $*" >&2; }

os_field() {  # a field of /etc/os-release, empty where there is none
  sed -n "s/^$1=//p" /etc/os-release 2>/dev/null | tr -d '"'
}

if [ "$install_sdk" = 1 ]; then
  here_id=$(os_field ID)
  here=$(os_field VERSION_ID)
  ubuntu=${ubuntu:-$here}
  case " $releases " in
    *" $ubuntu "*) ;;
    *) echo "setup.sh: --install-sdk --sdk $sdk supports Ubuntu ${releases// / and } (--ubuntu), got ${ubuntu:-none}${here_id:+ (this machine: $here_id $here)}" >&2; exit 2 ;;
  esac
  if [ "$dry_run" = 0 ] && { [ "$here_id" != ubuntu ] || [ "$here" != "$ubuntu" ]; }; then
    echo "setup.sh: --ubuntu $ubuntu, but this machine runs ${here_id:-?} ${here:-?}" >&2; exit 2
  fi
  case "$ubuntu" in  # the apt suite is the release's codename
    24.04) codename=noble ;; 26.04) codename=resolute ;;
  esac
  if [ "$here" = "$ubuntu" ]; then codename=$(os_field VERSION_CODENAME); fi
  if [ "$sdk" = native ] && [ "$ubuntu" = 24.04 ]; then
    note "Neuron 2.33's standalone torch-neuronx wheels are for Ubuntu 26.04 only (its quick" \
         "start: on 24.04 use the DLAMI, or build torch-neuronx from source); whether 2.34" \
         "publishes 24.04 wheels is not verified here. If pip finds no wheel below, use the DLAMI."
  fi
  # the Neuron apt repository, with its key in a signed-by keyring (no apt-key)
  run sudo install -m 0755 -d /etc/apt/keyrings
  run sudo sh -c "wget -qO - $neuron_apt/GPG-PUB-KEY-AMAZON-AWS-NEURON.PUB | gpg --batch --yes --dearmor -o $keyring"
  run sudo sh -c "echo 'deb [signed-by=$keyring] $neuron_apt $codename main' > /etc/apt/sources.list.d/neuron.list"
  run sudo apt-get update -y
  # kernel headers for the driver's DKMS build; the venv module and a compiler for pip
  headers="linux-headers-$(uname -r)"
  # shellcheck disable=SC2016  # a dry run shows the command, not this machine's kernel
  [ "$dry_run" = 1 ] && headers='linux-headers-$(uname -r)'
  run sudo apt-get install -y "$headers" git python3-venv g++
  # driver, runtime, collectives and tools of one release: a driver upgraded without its
  # runtime makes nrt_init() fail (Neuron runtime release notes)
  run sudo apt-get install -y aws-neuronx-dkms aws-neuronx-runtime-lib aws-neuronx-collectives aws-neuronx-tools
  # neuron-ls and neuron-top for every later shell, and for the rest of this script
  run sudo sh -c "echo 'export PATH=$NEURON_BIN:\$PATH' > /etc/profile.d/aws-neuron.sh"
  export PATH="$NEURON_BIN:$PATH"
  run python3 -m venv ".venv-neuron-$sdk"
  python=".venv-neuron-$sdk/bin/python"
  run "$python" -m pip install --upgrade pip
  run "$python" -m pip install --upgrade "${pip_packages[@]}" "${pip_indexes[@]}"
elif [ -z "$python" ]; then
  if [ "$sdk" = xla ]; then
    echo "setup.sh: --sdk xla needs --python (the python of an existing torch-neuronx 2.9 venv: no PyTorch/XLA DLAMI is published after Neuron 2.31) or --install-sdk" >&2
    exit 2
  fi
  python=$DLAMI_VENV/bin/python
  if [ "$dry_run" = 0 ] && [ ! -x "$python" ]; then
    echo "setup.sh: no $python: this is not the DLAMI \"Deep Learning AMI Neuron torch-neuronx 2.14.0\"; on a plain Ubuntu 24.04 or 26.04 pass --install-sdk, or --python PATH" >&2
    exit 2
  fi
  [ -d "$NEURON_BIN" ] && export PATH="$NEURON_BIN:$PATH"
fi

# trnbench itself, in .venv, seeing the framework of $python (scripts/setup.sh keeps it)
run env PYTHON="$python" make setup
run .venv/bin/trnbench env
run "$NEURON_BIN/neuron-ls"
