#!/usr/bin/env bash
# GPU figures for the README, in one run (under 10 minutes on an H100/H200):
#  1. `mgpe train --config lean` on CUDA at batch 8: its losses must fall; the CLI's steady rate from two run
#     lengths (startup, worker spawning and warm-up cancel out), to compare with the benchmark's loop;
#  2. lean and paper at batch 8 and 32 (bench_train.py --grid): it/s of the compute alone, GPU busy fraction
#     from the profiler, peak memory, and it/s with data as `mgpe train` builds it, in the benchmark's loop and
#     in run_gan_training (logs, samples, checkpoints);
#  3. the compiled networks (--compile) and CUDA graphs (--graphs) beside eager, unless SKIP_COMPILE=1;
#  4. inference speed (torch fp32/bf16 on CUDA; onnxruntime CUDA when onnxruntime-gpu is installed), unless
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
cli() {  # cli STEPS OUT: seconds `mgpe train --config lean` takes, batch 8, no parsing loss
  local t0=$(date +%s.%N)
  $py -m mgpe_toolkit train --config lean --data synthetic:64 --steps "$1" --device cuda --out "$2" \
      --set lambda_gp=0 --set batch=8 >/dev/null 2>"$2.log" || { cat "$2.log"; exit 1; }
  $py -c "print($(date +%s.%N) - $t0)"
}
long=${STEPS:-300}
t_long=$(cli "$long" "$tmp/long")
t_short=$(cli 100 "$tmp/short")
$py - "$tmp/long/metrics.jsonl" "$long" "$t_long" "$t_short" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
long, t_long, t_short = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def mean(key, part):
    vals = [r[key] for r in part if key in r]
    return sum(vals) / max(len(vals), 1)
k = max(len(rows) // 5, 1)
for key in ("loss/local", "loss/global"):
    print(f"lean on CUDA, {len(rows)} logged steps: {key} first fifth {mean(key, rows[:k]):.3f} -> last fifth {mean(key, rows[-k:]):.3f}")
rate = (long - 100) / (t_long - t_short)
print(f"mgpe train lean batch 8 (CLI): {long} steps in {t_long:.1f} s, 100 in {t_short:.1f} s: steady {rate:.2f} it/s, "
      f"startup and warm-up {t_short - 100 / rate:.1f} s")
PY
$py benchmarks/bench_train.py --grid --configs lean paper --gpu-batches 8 32 --steps ${GRID_STEPS:-20}
if [ -z "${SKIP_COMPILE:-}" ]; then
  $py benchmarks/bench_train.py --steps 40 --gpu-batch 8 --gpu-only --compile
fi
[ -n "${SKIP_INFER:-}" ] || $py benchmarks/bench_infer.py --config lean --batches 1 16 --runs 10 --rounds 1 --no-compile
echo "gpu_figures.sh: $(( $(date +%s) - start )) s"
