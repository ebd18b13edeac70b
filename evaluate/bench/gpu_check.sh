#!/usr/bin/env bash
# The GPU checks of issue 12 as one short script (about 10 minutes on one GPU), JSON under OUT:
#   bash evaluate/gpu_check.sh [OUT]        (default OUT: runs/gpu_check; --help: this text)
#
# 1. bench_ctgan/bench.json: our CTGAN vs SDV's CTGAN, the same 3 epochs, each at its best batch size
#    (`--setting best`: ours 8000, SDV 2000), ours in bf16-mixed; our TVAE beside them (bf16-mixed too).
#    Target: our time for the same epochs >= 30x less than SDV CTGAN's.
# 2. bench_fp32/bench.json: our CTGAN in 32-true, the same epochs, so bf16's gain is measured, not assumed.
# 3. sync.json: host synchronisations over 300 training steps per model (python -m tailsynth.evaluate.bench.gpu_sync_check;
#    target: 0 inside training_step).
# 4. augment.json / cold_start.json: gated throughput on the bench's trained CTGAN bundle
#    (tailsynth evaluate bench-cold-start; target >= 1M gated rows per minute).
# Each step records its exit code in OUT/steps.json and the script goes on, so one failure still leaves
# the other figures. Nothing here has been run yet: no GPU was lent to the task that wrote it.
set -u
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,15p' "$0"; exit 0; fi
OUT="${1:-runs/gpu_check}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
STEPS="$OUT/steps.json"
echo "{" > "$STEPS"
step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, record the exit code
  local name="$1" limit="$2"; shift 2
  echo "[gpu_check] $name: $*"
  local started=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "  \"$name\": {\"rc\": $rc, \"seconds\": $((SECONDS - started))}," >> "$STEPS"
  echo "[gpu_check] $name: exit $rc after $((SECONDS - started)) s"
}
"$PY" -c "import torch, json; print(json.dumps({'gpu': torch.cuda.get_device_name(0), 'torch': torch.__version__}))" \
  > "$OUT/device.json" || { echo "error: torch sees no CUDA device"; exit 2; }
step bench_ctgan 360 "$PY" -m tailsynth.evaluate bench --device cuda --setting best --systems ours-ctgan sdv-ctgan ours-tvae \
  --epochs 3 --encoder-rows 0 --set monitor.enabled=false bench.system_timeout_s=150 \
  --out "$OUT/bench_ctgan"
step bench_fp32 60 "$PY" -m tailsynth.evaluate bench --device cuda --setting best --systems ours-ctgan --epochs 3 \
  --encoder-rows 0 --gpu-precision 32-true --set monitor.enabled=false --out "$OUT/bench_fp32"
step sync 90 "$PY" -m tailsynth.evaluate.bench.gpu_sync_check --steps 300 --out "$OUT/sync.json"
BUNDLE="$OUT/bench_ctgan/systems/ours-ctgan"
step augment 45 "$PY" -m tailsynth.evaluate bench-cold-start --bundle "$BUNDLE" --augment --per-item 1 --device cuda \
  --out "$OUT/augment.json"
step cold_start 45 "$PY" -m tailsynth.evaluate bench-cold-start --bundle "$BUNDLE" --items 200 --per-item 50 --device cuda \
  --out "$OUT/cold_start.json"
echo "  \"done\": true" >> "$STEPS"
echo "}" >> "$STEPS"
echo "[gpu_check] wrote $OUT"
