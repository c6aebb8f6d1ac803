#!/usr/bin/env bash
# One trn2 node, every logical NeuronCore: one torchrun rank per core (64 on a trn2.48xlarge
# at the default LNC=2). For the XLA line, first fills the compile cache with
# neuron_parallel_compile (--precompile), then measures.
#
# usage: scripts/trn2/run-node.sh [--sdk native|xla] [--nproc N] [--dry-run] [-- TRNBENCH RUN ARGS]
#   e.g. scripts/trn2/run-node.sh --sdk xla -- --model llama3-8b --steps 20
set -euo pipefail
cd "$(dirname "$0")/../.."

sdk=native
nproc=""
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sdk) sdk=$2; shift 2 ;;
    --nproc) nproc=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "run-node.sh: unknown argument $1 (accepted: --sdk native|xla, --nproc N, --dry-run, -- ARGS)" >&2; exit 2 ;;
  esac
done
case "$sdk" in
  native) backend=neuron ;;
  xla) backend=neuron-xla ;;
  *) echo "run-node.sh: --sdk must be native or xla, got $sdk" >&2; exit 2 ;;
esac

if [ -z "$nproc" ]; then
  # logical cores = chips x physical cores per chip / LNC; trn2.48xlarge: 16 x 8 / 2 = 64
  lnc=${NEURON_LOGICAL_NC_CONFIG:-2}
  chips=$(find /dev -maxdepth 1 -name 'neuron[0-9]*' 2>/dev/null | wc -l)
  [ "$chips" -gt 0 ] || chips=16
  nproc=$((chips * 8 / lnc))
fi

trnbench=(.venv/bin/trnbench run --backend "$backend" --nproc "$nproc" "$@")
run() {
  if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
if [ "$sdk" = xla ]; then
  run "${trnbench[@]}" --precompile
fi
run "${trnbench[@]}"
