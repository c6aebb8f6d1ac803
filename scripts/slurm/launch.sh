#!/usr/bin/env bash
# Shared body of the Slurm batch scripts: one `trnbench run` (or TRNBENCH_VERB: comm) per
# node (srun, one task per node), each starting torchrun with a c10d rendezvous on the
# job's first node.
# Inputs (environment): NPROC_PER_NODE, TRNBENCH_ARGS, TRNBENCH_VERB, DRY_RUN, and Slurm's own
# variables.
set -euo pipefail

first_host() {  # scontrol needs a Slurm configuration, which a dry run may not have
  local host addr
  host=$(scontrol show hostnames "$1" 2>/dev/null | head -n 1) || true
  if [ -z "$host" ]; then  # node[01-04,07] -> node01 (what scontrol would print first)
    host=$(echo "$1" | sed -E 's/^([^[,]*)\[([^],-]*).*/\1\2/; s/,.*//')
  fi
  # the node's address where Slurm knows one (a node name need not resolve)
  addr=$(scontrol show node "$host" 2>/dev/null | sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p') || true
  echo "${addr:-$host}"
}

: "${SLURM_JOB_NODELIST:?run under sbatch, or set it for a dry run}"
nnodes=${SLURM_NNODES:-1}
head=$(first_host "$SLURM_JOB_NODELIST")
port=${RDZV_PORT:-29500}
if [ "${TRNBENCH_NEURON:-0}" = 1 ]; then
  # the Neuron runtime's collectives bootstrap on the first node
  export NEURON_RT_ROOT_COMM_ID="$head:${NEURON_RT_ROOT_COMM_PORT:-46820}"
fi
read -r -a args <<< "${TRNBENCH_ARGS:-}"
# --node-rank is each task's own SLURM_NODEID, expanded by the shell srun starts on its node
# (expanded here, on the batch host, it would be 0 on every node)
# shellcheck disable=SC2016
cmd=(srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c 'exec "$@" --node-rank "$SLURM_NODEID"'
     launch "${TRNBENCH:-.venv/bin/trnbench}" "${TRNBENCH_VERB:-run}" --nproc "${NPROC_PER_NODE:?}"
     --nnodes "$nnodes" --rdzv-endpoint "$head:$port" "${args[@]}")
if [ "${DRY_RUN:-0}" = 1 ]; then
  { env | grep -E '^(FI_|NEURON_|NCCL_)' || true; } | sort | sed 's/^/export /'
  printf '+ %s\n' "${cmd[*]}"
else
  exec "${cmd[@]}"
fi
