#!/usr/bin/env bash
# One prepared GPU run for the parser (issue 14), under 10 minutes on an H100/H200: fine-tune P_F from the
# shipped weights (INIT=none: from scratch) on lfw-hair's training people + 400 synthetic portraits, print the
# loss at the start and the end, and leave the weights, their card, the metrics and the checkpoint (in 15 MB
# parts: `cat ckpt.part.* > checkpoint.safetensors`) in $OUT.
#
# The GPU machine has neither mediapipe nor ../shared, so prepare both here once and carry them:
#   cp -r ../shared/data/lfw-hair runs/lfw-hair
#   mgpe train parser --data runs/lfw-hair --pseudo-labels runs/pseudo --out runs/prep --steps 1 --device cpu
#   (the second line builds the pseudo-labels into runs/pseudo/lfw-hair, about 3 minutes on 2 cores)
# Run there: bash benchmarks/gpu_parser.sh   (carry runs/lfw-hair and runs/pseudo)
# Measure here, with the fetched weights in a folder F:
#   MGPE_MODELS=F python benchmarks/bench_parse.py ../shared/data/lfw-hair --labels lfw-hair --coords original
#   MGPE_MODELS=F python benchmarks/bench_parse.py ../shared/data/helen-samples --labels helen
#   add --no-mirror (one pass) and --speed to see whether a wider net can run without the mirror pass; its card
#   then says so: "inference": {"mirror": false} in parser-unet.json (`parse_unet.card_mirror`).
# Settings (environment): STEPS 6000 (the cosine decay ends there; about 15 it/s at batch 32 on an H200 with 15
# data workers, base 16), MINUTES 7 (a hard stop; the last checkpoint is kept), BATCH 32, LR 1e-3, BASE 16 (wider
# than INIT's: INIT is widened first, the same masks at step 0), INIT (the shipped weights; none: from scratch),
# DEVICE cuda, WORKERS 15, LFW runs/lfw-hair, PSEUDO runs/pseudo, RUN runs/parser-gpu.
set -euo pipefail
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
steps=${STEPS:-6000}
lfw=${LFW:-runs/lfw-hair}
pseudo=${PSEUDO:-runs/pseudo}
run=${RUN:-runs/parser-gpu}
init=${INIT:-models/parser-real/parser-unet.safetensors}
out=${OUT:-$run/out}
for need in "$lfw/images" "$lfw/hair" "$pseudo/$(basename "$lfw")/index.json"; do
  [ -e "$need" ] || { echo "gpu_parser.sh: $need is missing: prepare it as the header says" >&2; exit 2; }
done
$py -c "import mgpe_toolkit" 2>/dev/null || $py -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
[ "${DEVICE:-cuda}" = cpu ] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p "$(dirname "$run")"
start=$(date +%s)
init_args=()
[ "$init" = none ] || init_args=(--init "$init")
# timeout stops a run the schedule cannot finish in time; what it has checkpointed stays.
timeout "$(( ${MINUTES:-7} * 60 ))" $py -m mgpe_toolkit train parser --data "$lfw" --data synthetic:400 \
  --pseudo-labels "$pseudo" --out "$run" --size 256 --base "${BASE:-16}" --batch "${BATCH:-32}" --lr "${LR:-1e-3}" \
  --steps "$steps" --decay-steps "$steps" --checkpoint-every 250 --device "${DEVICE:-cuda}" \
  --workers "${WORKERS:-15}" "${init_args[@]}" > "$run.log" 2>&1 || echo "stopped (exit $?) before step $steps"
echo "train wall $(( $(date +%s) - start )) s"
grep -a "data:" "$run.log" | head -1 | cut -c1-200 || true
$py - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"loss/parser_ce"' in line]
k = max(len(rows) // 10, 1)
mean = lambda part: sum(r["loss/parser_ce"] for r in part) / len(part)
print(f"{len(rows)} steps logged (last {rows[-1]['step']}): loss first tenth {mean(rows[:k]):.4f} -> last tenth {mean(rows[-k:]):.4f}")
PY
mkdir -p "$out"
cp "$run/parser-unet.safetensors" "$run/parser-unet.json" "$run/metrics.jsonl" "$run.log" "$out/"
split -b 15M "$run/checkpoint.safetensors" "$out/ckpt.part."
ls -la "$out"
