#!/usr/bin/env bash
# GPU figures for docs/benchmarks.md, in one run (not yet run whole: an estimated 7 minutes on an H200, under 10 with the
# parts' own time limits; the parts come in the order of what issue 19 asks first):
#  1. `mgpe train --config lean` on CUDA at batch 8: its losses must fall; the CLI's steady rate from two run
#     lengths (startup, worker spawning and warm-up cancel out), to compare with the benchmark's loop, and where
#     the long run's time went (its `time:` line: steps, waiting for data, logs/samples/checkpoints);
#  2. lean and paper at batch 8 and 32 (bench_train.py --grid): it/s of the compute alone, GPU busy fraction
#     (device time per step from the profiler over an unprofiled step's wall time), peak memory, and it/s with
#     data as `mgpe train` builds it, timed after the workers' prefetched batches;
#  3. CUDA graphs (--graphs) and the compiled networks (--compile) beside eager, unless SKIP_COMPILE=1;
#  4. the CLI's steady rate again with 3 data workers instead of the default, unless SKIP_WORKERS=1;
#  5. inference speed (torch fp32/bf16 on CUDA; onnxruntime CUDA when onnxruntime-gpu is installed), unless
#     SKIP_INFER=1.
# Usage: bash benchmarks/gpu_figures.sh   (needs a CUDA GPU; mediapipe is not needed)
set -euo pipefail
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
start=$(date +%s)
nvidia-smi -L
$py -c "import torch; print('torch', torch.__version__)"
$py -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" || true
tmp=$(mktemp -d)
cli() {  # cli STEPS OUT [ARGS]: seconds `mgpe train --config lean` takes, batch 8, no parsing loss
  local t0=$(date +%s.%N) steps=$1 out=$2
  shift 2
  $py -m mgpe_toolkit train --config lean --data synthetic:64 --steps "$steps" --device cuda --out "$out" \
      --set lambda_gp=0 --set batch=8 "$@" >"$out.log" 2>&1 || { cat "$out.log"; exit 1; }
  $py -c "print($(date +%s.%N) - $t0)"
}
steady() {  # steady NAME LONG T_LONG T_SHORT LOG: the rate between the two run lengths, and the long run's split
  $py -c "r = ($2 - 100) / ($3 - $4); print(f'mgpe train lean batch 8 ($1): $2 steps in {$3:.1f} s, 100 in {$4:.1f} s: '
                                             f'steady {r:.2f} it/s, startup and warm-up {$4 - 100 / r:.1f} s')"
  tr '\n' ' ' < "$5" | grep -o "time: .*checkpoints" | tr -s ' ' || true
}
long=${STEPS:-300}
t_long=$(cli "$long" "$tmp/long")
t_short=$(cli 100 "$tmp/short")
$py - "$tmp/long/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def mean(key, part):
    vals = [r[key] for r in part if key in r]
    return sum(vals) / max(len(vals), 1)
k = max(len(rows) // 5, 1)
for key in ("loss/local", "loss/global"):
    print(f"lean on CUDA, {len(rows)} logged steps: {key} first fifth {mean(key, rows[:k]):.3f} -> last fifth {mean(key, rows[-k:]):.3f}")
PY
steady "CLI" "$long" "$t_long" "$t_short" "$tmp/long.log"
timeout "${GRID_S:-240}" $py benchmarks/bench_train.py --grid --configs lean paper --gpu-batches 8 32 \
  --steps "${GRID_STEPS:-20}" || echo "grid: stopped (exit $?)"
if [ -z "${SKIP_COMPILE:-}" ]; then
  timeout "${COMPILE_S:-240}" $py benchmarks/bench_train.py --steps 40 --gpu-batch 8 --gpu-only --compile \
    || echo "compile: stopped (exit $?)"
fi
if [ -z "${SKIP_WORKERS:-}" ]; then
  t_long=$(cli "$long" "$tmp/long3" --workers 3)
  t_short=$(cli 100 "$tmp/short3" --workers 3)
  steady "CLI, 3 data workers" "$long" "$t_long" "$t_short" "$tmp/long3.log"
fi
[ -n "${SKIP_INFER:-}" ] || $py benchmarks/bench_infer.py --config lean --batches 1 16 --runs 10 --rounds 1 --no-compile
echo "gpu_figures.sh: $(( $(date +%s) - start )) s"
