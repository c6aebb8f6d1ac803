#!/usr/bin/env bash
# The GPU baseline of issue 9 on one H100: records, bare-loop comparison and report under
# results/h100/, named after the date (results/h100/DATE.jsonl, DATE-bare-loop.json, DATE/).
#
# usage: scripts/gpu/run-h100.sh [--python PATH] [--batches "4 8 12 16 24 32"] [--dry-run]
#   1. trnbench env and nvidia-smi: the GPU, driver and torch the records will name; on a
#      machine of 2 or more GPUs, trnbench comm over all of them (the fabric, before training)
#   2. 1b, seq 2048, bf16, --compile at each batch of --batches, smallest first, until one does
#      not fit (refused by the memory plan: nothing stored; or out of memory: stored as failed);
#      the batch with the most tokens/s is the headline
#   3. the headline configuration 3 more times (tag series=1b-headline)
#   4. harness vs bare hand-tuned loop at that configuration (scripts/gpu/bare_loop.py)
#   5. the sweep scripts/gpu/sweep-h100.toml (125m 350m 1b 3b x batch x seq x compile, bf16)
#   6. trnbench report of every record of the day
set -euo pipefail
cd "$(dirname "$0")/../.."

py=.venv/bin/python
batches="4 8 12 16 24 32"
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run-h100.sh: unknown argument $1 (accepted: --python PATH, --batches \"B B ...\", --dry-run)" >&2; exit 2 ;;
  esac
done

stem=results/h100/$(date -u +%Y-%m-%d)
records=$stem.jsonl
trnbench=("$py" -m bench)
headline=(--backend cuda --model 1b --seq 2048 --precision bf16 --compile --steps 30 --warmup 10)

run() {
  if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

run mkdir -p results/h100
run "${trnbench[@]}" env
run nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version --format=csv
# the node's fabric before any training step: collectives over every GPU (one GPU has none)
gpus=GPUS
if [ "$dry_run" = 0 ]; then gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l); fi
if [ "$gpus" = GPUS ] || [ "$gpus" -ge 2 ]; then
  run "${trnbench[@]}" comm --backend cuda --nproc "$gpus" --sizes 1K:1G --results "$records" \
    --tag series=fabric
else
  echo "one GPU: no fabric to measure (trnbench comm needs 2 ranks); skipped"
fi

# 2. batch search, until a batch does not fit: exit code 1 = the run failed midway (out of
# memory) and was stored as failed; exit code 2 = the memory plan refused it before it
# started (the reason on stderr; nothing stored)
best=BEST
best_tps=0
for batch in $batches; do
  cmd=("${trnbench[@]}" run "${headline[@]}" --batch "$batch" --results "$records"
       --tag series=1b-batch-search --json)
  if [ "$dry_run" = 1 ]; then run "${cmd[@]}"; continue; fi
  set +e
  out=$("${cmd[@]}")
  rc=$?
  set -e
  if [ "$rc" = 1 ]; then echo "batch $batch failed (stored as failed); search ends"; break; fi
  if [ "$rc" = 2 ]; then echo "batch $batch refused (does not fit; nothing stored); search ends"; break; fi
  if [ "$rc" != 0 ]; then echo "batch $batch: exit code $rc" >&2; exit "$rc"; fi
  tps=$(printf '%s\n' "$out" | tail -n 1 | "$py" -c 'import json, sys; print(json.load(sys.stdin)["tokens_per_s"])')
  echo "batch $batch: $tps tokens/s"
  if "$py" -c "import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))" "$tps" "$best_tps"; then
    best=$batch
    best_tps=$tps
  fi
done
if [ "$dry_run" = 0 ] && [ "$best" = BEST ]; then
  echo "run-h100.sh: no batch of \"$batches\" ran; see $records" >&2
  exit 1
fi

# 3. the headline, repeated
for _ in 1 2 3; do
  run "${trnbench[@]}" run "${headline[@]}" --batch "$best" --results "$records" \
    --tag series=1b-headline
done

# 4. harness / bare hand-tuned loop, same process, alternated; then one round in which any host
#    synchronisation inside the harness's timed window raises (CUDA sync debug mode)
bare=("$py" scripts/gpu/bare_loop.py --device cuda --model 1b --seq 2048 --batch "$best"
      --precision bf16 --compile --warmup 10)
if [ "$dry_run" = 1 ]; then
  printf '+ %s > %s\n' "${bare[*]} --steps 30 --rounds 5 --json" "$stem-bare-loop.json"
else
  "${bare[@]}" --steps 30 --rounds 5 --json > "$stem-bare-loop.json"
fi
run "${bare[@]}" --steps 10 --rounds 1 --sync-debug

# 5. the sweep (resumable: run the script again after an interruption)
run "${trnbench[@]}" sweep scripts/gpu/sweep-h100.toml --results "$records" --resume

# 6. tables and plots
run "${trnbench[@]}" report --results "$records" --out "$stem"
