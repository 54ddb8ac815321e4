#!/usr/bin/env bash
# GPU figures for the README, in one run: `mgpe train --config lean` on CUDA (its losses must fall),
# `paper` training speed and memory (with and without data workers, compute alone, compiled), and inference
# speed (torch fp32/bf16 on CUDA; onnxruntime CUDA when onnxruntime-gpu is installed).
# Usage: bash benchmarks/gpu_figures.sh   (needs a CUDA GPU; mediapipe is not needed)
set -euo pipefail
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi -L
$py -c "import torch, onnxruntime as o; print('torch', torch.__version__, '| onnxruntime', o.__version__, o.get_available_providers())"
run=$(mktemp -d)/run
$py -m mgpe_toolkit train --config lean --data synthetic:64 --steps ${STEPS:-300} --device cuda --out "$run" --set lambda_gp=0
$py - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def mean(key, part):
    vals = [r[key] for r in part if key in r]
    return sum(vals) / max(len(vals), 1)
k = max(len(rows) // 5, 1)
for key in ("loss/local", "loss/global"):
    print(f"paper on CUDA, {len(rows)} logged steps: {key} first fifth {mean(key, rows[:k]):.3f} -> last fifth {mean(key, rows[-k:]):.3f}")
PY
$py benchmarks/bench_train.py --steps 40 --gpu-batch 8 --gpu-only ${COMPILE---compile}
[ -n "${SKIP_INFER:-}" ] || $py benchmarks/bench_infer.py --config lean --batches 1 16 --runs 10 --rounds 1 --no-compile
