#!/usr/bin/env bash
# The Trainium2 measurement of the suite both runbooks share (scripts/suite.toml), on one
# trn2.48xlarge, end to end; docs/runbooks/trn2.md. With stem=results/trn2/<UTC date>:
#   1. checks: trnbench env (neuron must say yes), neuron-ls (the devices, their memory, the
#      LNC: the memory plan reads it), the NEFF cache on local NVMe; then the node's fabric,
#      trnbench comm over every NeuronCore, before any training step (native line only)
#   2. the suite: trnbench suite FILE --hardware trn2: per case the layout the memory plan
#      chooses, a batch search that stops where the plan refuses (or a run fails), 3 repeats
#      at the best batch; the multi-node case printed as a Slurm command. Records in
#      $stem.jsonl, the summary in $stem-suite.json; resumable (run the script again)
#   3. trnbench report of the day's records under $stem/
#   4. a tarball of records, summary and report: $stem.tar.gz
#   5. the command that copies it off the instance, and the publish step (trnbench compare)
# A failed run does not stop steps 3-5 (the exit code, 1, says one failed); bad input exits 2.
#
# usage: scripts/trn2/run-node.sh [--python PATH] [--sdk native|xla] [--suite FILE]
#                                 [--cache-dir DIR] [--nproc-per-node N] [--dry-run]
#   --sdk xla: the legacy XLA line (--backend neuron-xla)
#   --cache-dir: where the NEFF cache and compiler work files go (default: under
#     /opt/dlami/nvme when that instance-store mount exists, else ~/.cache/trnbench)
set -euo pipefail
cd "$(dirname "$0")/../.."

py=.venv/bin/python
sdk=native
suite=scripts/suite.toml
cache_dir=""
nproc=""
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py=${2:-}; shift 2 ;;
    --sdk) sdk=${2:-}; shift 2 ;;
    --suite) suite=${2:-}; shift 2 ;;
    --cache-dir) cache_dir=${2:-}; shift 2 ;;
    --nproc-per-node) nproc=${2:-}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "run-node.sh: unknown argument $1 (accepted: --python PATH, --sdk native|xla, --suite FILE, --cache-dir DIR, --nproc-per-node N, --dry-run)" >&2; exit 2 ;;
  esac
done
case "$sdk" in
  native) backend=neuron ;;
  xla) backend=neuron-xla ;;
  *) echo "run-node.sh: --sdk must be native or xla, got $sdk" >&2; exit 2 ;;
esac

date=$(date -u +%Y-%m-%d)
stem=results/trn2/$date
records=$stem.jsonl
summary=$stem-suite.json
trnbench=("$py" -m bench)
if [ -z "$cache_dir" ]; then
  if [ -d /opt/dlami/nvme ]; then cache_dir=/opt/dlami/nvme/trnbench; else cache_dir=$HOME/.cache/trnbench; fi
fi

run() {
  if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
say() { printf '%s\n' "$*"; }

# the Neuron tools, the compile caches on local disk (the root EBS volume fills otherwise),
# the cache counters on, the LNC stated rather than assumed
export PATH="/opt/aws/neuron/bin:$PATH"
export TORCH_NEURONX_NEFF_CACHE_DIR=$cache_dir/neff
export TORCH_NEURONX_DEBUG_DIR=$cache_dir/neuron_backend
export TORCH_NEURONX_METRICS_ENABLED=1
export NEURON_COMPILE_CACHE_URL=$cache_dir/neuron-compile-cache
export NEURON_LOGICAL_NC_CONFIG=${NEURON_LOGICAL_NC_CONFIG:-2}
say "# NEFF cache $TORCH_NEURONX_NEFF_CACHE_DIR, LNC $NEURON_LOGICAL_NC_CONFIG, records $records"

# 1. checks
status=0
run mkdir -p results/trn2 "$TORCH_NEURONX_NEFF_CACHE_DIR"
run "${trnbench[@]}" env
if [ "$dry_run" = 0 ] && ! neuron-ls; then
  echo "run-node.sh: neuron-ls failed: no Neuron driver or devices (scripts/trn2/setup.sh)" >&2
  exit 1
fi
[ "$dry_run" = 1 ] && run neuron-ls
run df -h "$cache_dir" /
ranks=${nproc:-64}
if [ "$backend" = neuron-xla ]; then
  say "# fabric: trnbench comm does not run on the XLA line; nccom-test and trnbench ingest do (docs/runbooks/trn2.md)"
elif [ "$ranks" -lt 2 ]; then
  say "# fabric: one rank has no fabric to measure (trnbench comm needs 2); skipped"
else
  run "${trnbench[@]}" comm --backend neuron --nproc "$ranks" --sizes 1K:1G --dtype bf16 \
    --results "$records" --tag series=fabric || status=1
fi

# 2. the suite
suite_cmd=("${trnbench[@]}" suite "$suite" --hardware trn2 --backend "$backend"
           --results "$records" --summary "$summary" --resume)
[ -n "$nproc" ] && suite_cmd+=(--nproc-per-node "$nproc")
if [ "$dry_run" = 1 ]; then
  run "${suite_cmd[@]}"
  "${suite_cmd[@]:0:5}" --hardware trn2 --backend "$backend" --results "$records" \
    ${nproc:+--nproc-per-node "$nproc"} --dry-run | sed 's/^/    /'
else
  "${suite_cmd[@]}" || status=$?
  [ "$status" = 2 ] && exit 2  # bad input: nothing ran
fi

# 3. tables and plots; 4. the tarball of what there is
if [ "$dry_run" = 1 ] || [ -s "$records" ]; then
  run "${trnbench[@]}" report --results "$records" --out "$stem" || status=$?
fi
parts=()
for f in "$date.jsonl" "$date-suite.json" "$date"; do
  if [ "$dry_run" = 1 ] || [ -e "results/trn2/$f" ]; then parts+=("$f"); fi
done
run tar -czf "$stem.tar.gz" -C results/trn2 "${parts[@]}"

# 5. copy back, publish
say "# copy it off the instance (from your machine, in the trnbench checkout):"
say "#   scp -i KEY.pem ubuntu@<public DNS of this instance>:$PWD/$stem.tar.gz results/trn2/"
say "#   tar -xzf results/trn2/$date.tar.gz -C results/trn2"
say "# publish, beside an H100 day of the same suite (scripts/gpu/run-h100.sh), per case:"
say "#   trnbench compare --results results/h100/DAY.jsonl $records \\"
say "#     --baseline device=h100,case=chip-1b,phase=repeat --target device=trn2,case=chip-1b,phase=repeat"
exit "$status"
