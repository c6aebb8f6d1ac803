#!/usr/bin/env bash
# The GPU side of the suite both runbooks share (scripts/suite.toml), plus the GPU baseline of
# issue 9, on an H100 machine (one GPU or a node of 8): records, summary, bare-loop comparison
# and report under results/h100/, named after the date (DATE.jsonl, DATE-suite.json,
# DATE-bare-loop.json, DATE/).
#
# usage: scripts/gpu/run-h100.sh [--python PATH] [--hardware h100|h200] [--suite FILE] [--dry-run]
#   1. trnbench env and nvidia-smi: the GPUs, driver and torch the records will name; on a
#      machine of 2 or more GPUs, trnbench comm over all of them (the fabric, before training)
#   2. the suite: trnbench suite FILE --hardware h100 --nproc-per-node <GPUs>: per case the
#      layout the memory plan chooses, a batch search that stops where the plan refuses (or a
#      run fails out of memory, stored as failed), 3 repeats at the best batch; a case that
#      needs more GPUs than there are is skipped with the plan's reason, the multi-node case
#      printed as a Slurm command
#   3. harness vs bare hand-tuned loop at the chip case's model, sequence and best batch
#      (scripts/gpu/bare_loop.py)
#   4. the sweep scripts/gpu/sweep-h100.toml (125m 350m 1b 3b x batch x seq x compile, bf16)
#   5. trnbench report of every record of the day
set -euo pipefail
cd "$(dirname "$0")/../.."

py=.venv/bin/python
hardware=h100
suite=scripts/suite.toml
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py=${2:-}; shift 2 ;;
    --hardware) hardware=${2:-}; shift 2 ;;
    --suite) suite=${2:-}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "run-h100.sh: unknown argument $1 (accepted: --python PATH, --hardware h100|h200, --suite FILE, --dry-run)" >&2; exit 2 ;;
  esac
done
case "$hardware" in
  h100|h200) ;;
  *) echo "run-h100.sh: --hardware must be h100 or h200, got $hardware" >&2; exit 2 ;;
esac

date=$(date -u +%Y-%m-%d)
stem=results/h100/$date
records=$stem.jsonl
summary=$stem-suite.json
trnbench=("$py" -m bench)

run() {
  if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

run mkdir -p results/h100
run "${trnbench[@]}" env
run nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version --format=csv
gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | wc -l || true)
[ "$gpus" -gt 0 ] || gpus=8
# the node's fabric before any training step: collectives over every GPU (one GPU has none)
if [ "$gpus" -ge 2 ]; then
  run "${trnbench[@]}" comm --backend cuda --nproc "$gpus" --sizes 1K:1G --results "$records" \
    --tag series=fabric
else
  echo "one GPU: no fabric to measure (trnbench comm needs 2 ranks); skipped"
fi

# 2. the suite (resumable: run the script again after an interruption)
suite_cmd=("${trnbench[@]}" suite "$suite" --hardware "$hardware" --nproc-per-node "$gpus"
           --results "$records" --summary "$summary" --resume)
status=0
if [ "$dry_run" = 1 ]; then
  run "${suite_cmd[@]}"
  "${suite_cmd[@]:0:11}" --dry-run | sed 's/^/    /'
  read -r best model seq <<< "BEST MODEL SEQ"
else
  "${suite_cmd[@]}" || status=$?
  [ "$status" = 2 ] && exit 2  # bad input: nothing ran
  # the chip case: its best batch, model and sequence
  read -r best model seq <<< "$("$py" -c 'import json, sys
c = next(c for c in json.load(open(sys.argv[1]))["cases"] if c["scope"] == "chip")
print(c["best_batch"] or "", c["config"]["model"], c["config"]["seq"])' "$summary")"
  if [ -z "$best" ]; then
    echo "run-h100.sh: the suite's chip case ran no batch; see $records" >&2
    exit 1
  fi
fi

# 3. harness / bare hand-tuned loop, same process, alternated; then one round in which any host
#    synchronisation inside the harness's timed window raises (CUDA sync debug mode)
bare=("$py" scripts/gpu/bare_loop.py --device cuda --model "$model" --seq "$seq" --batch "$best"
      --precision bf16 --compile --warmup 10)
if [ "$dry_run" = 1 ]; then
  printf '+ %s > %s\n' "${bare[*]} --steps 30 --rounds 5 --json" "$stem-bare-loop.json"
else
  "${bare[@]}" --steps 30 --rounds 5 --json > "$stem-bare-loop.json"
fi
run "${bare[@]}" --steps 10 --rounds 1 --sync-debug

# 4. the sweep (resumable: run the script again after an interruption)
run "${trnbench[@]}" sweep scripts/gpu/sweep-h100.toml --results "$records" --resume

# 5. tables and plots
run "${trnbench[@]}" report --results "$records" --out "$stem"
exit "$status"
