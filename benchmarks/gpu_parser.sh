#!/usr/bin/env bash
# One prepared GPU run for the parser (issues 14, 34), under 10 minutes on an H100/H200: fine-tune P_F from the
# shipped weights (INIT=none: from scratch), widened to BASE, on the training split of celebamask-mini (hand-made
# masks of every class) and lfw-hair (hair vs not hair), drawn equally often; print the loss at the start and the
# end, and leave in $OUT the weights, their card, the metrics and the log (a tar in 15 MiB parts:
# `cat run.tar.part.* | tar -x`), and the checkpoint where it fits (`cat ckpt.part.* > checkpoint.safetensors`).
#
# The GPU machine has neither mediapipe nor ../shared: pack the training data here once (about 42 MiB, aligned
# crops + labels, the held-out split left out; a few minutes the first time, while the caches are built):
#   mgpe train pack --data ../shared/data/celebamask-mini --data ../shared/data/lfw-hair --out runs/pack
# Run there: bash benchmarks/gpu_parser.sh   (carry runs/pack)
# Measure here, with the fetched parts unpacked (`cat run.tar.part.* | tar -x` gives F = parser-gpu/):
#   MGPE_MODELS=F python benchmarks/bench_parse.py ../shared/data/celebamask-mini --labels celebamask
#   MGPE_MODELS=F python benchmarks/bench_parse.py ../shared/data/lfw-hair --labels lfw-hair --coords original
#   MGPE_MODELS=F python benchmarks/bench_parse.py ../shared/data/helen-samples --labels helen
#   add --no-mirror (one pass) and --speed to see whether a wider net can run without the mirror pass; its card
#   then says so: "inference": {"mirror": false} in parser-unet.json (`parse_unet.card_mirror`).
# Settings (environment): MINUTES 7 (the training's share of the device time; a hard stop, the last checkpoint is
# kept), STEPS (where the cosine decay ends; by default as many as fit in MINUTES: the training step's rate is timed
# first, `bench_train.py --parser`, and 85% of it over MINUTES less a minute of start-up is used; an H200 ran base
# 16 in fp32 at about 15 it/s at batch 32 with 15 data workers), BATCH 32, LR 1e-3, BASE 24 (wider than INIT's 16:
# INIT is widened first, the same masks at step 0; the checkpoint of base 24, 53 MiB, does not come back beside the
# weights), INIT (the shipped weights; none: from scratch), DEVICE cuda, WORKERS 15, PACK runs/pack, RUN
# runs/parser-gpu, PRECISION auto (on CUDA bf16 autocast with channels-last memory; fp32: the arithmetic the shipped
# weights were trained in; set STEPS with it, since the rate timed first is bf16's).
set -euo pipefail
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
pack=${PACK:-runs/pack}
run=${RUN:-runs/parser-gpu}
init=${INIT:-models/parser-real/parser-unet.safetensors}
out=${OUT:-$run/out}
[ -e "$pack/pack.json" ] || { echo "gpu_parser.sh: $pack/pack.json is missing: pack the data as the header says" >&2; exit 2; }
$py -c "import mgpe_toolkit" 2>/dev/null || $py -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
[ "${DEVICE:-cuda}" = cpu ] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p "$(dirname "$run")"
minutes=${MINUTES:-7}
steps=${STEPS:-}
if [ -z "$steps" ]; then  # size the schedule so that its decay ends within the time given
  $py benchmarks/bench_train.py --parser "${BASE:-24}" --parser-batch "${BATCH:-32}" --steps 30 | tee "$run.rate"
  rate=$(sed -n 's/^parser rate \([0-9.]*\) it\/s$/\1/p' "$run.rate")
  steps=$($py -c "print(max(100, int(0.85 * $rate * ($minutes * 60 - 60))))")
  echo "steps: $steps (85% of $rate it/s over $minutes minutes less one)"
fi
start=$(date +%s)
init_args=()
[ "$init" = none ] || init_args=(--init "$init")
# timeout stops a run the schedule cannot finish in time; what it has checkpointed stays.
timeout "$(( minutes * 60 ))" $py -m mgpe_toolkit train parser --data "$pack" --hair-labels hair-only --balance \
  --out "$run" --size 256 --base "${BASE:-24}" --batch "${BATCH:-32}" --lr "${LR:-1e-3}" \
  --steps "$steps" --decay-steps "$steps" --checkpoint-every 250 --device "${DEVICE:-cuda}" \
  --workers "${WORKERS:-15}" --precision "${PRECISION:-auto}" "${init_args[@]}" > "$run.log" 2>&1 \
  || echo "stopped (exit $?) before step $steps"
echo "train wall $(( $(date +%s) - start )) s"
grep -a "data:" "$run.log" | head -1 | cut -c1-200 || true
tr '\n' ' ' < "$run.log" | grep -o "time: .*checkpoints" | tr -s ' ' || true
$py - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"loss/parser_ce"' in line]
k = max(len(rows) // 10, 1)
mean = lambda part: sum(r["loss/parser_ce"] for r in part) / len(part)
print(f"{len(rows)} steps logged (last {rows[-1]['step']}): loss first tenth {mean(rows[:k]):.4f} -> last tenth {mean(rows[-k:]):.4f}")
PY
# What comes back from the machine: at most 8 files of 16 MiB, 64 MiB in all. The weights, card, metrics and log go
# as one tar in 15 MiB parts; the checkpoint (three times the weights, with Adam's moments) only where it fits.
mkdir -p "$out"
tar -cf "$run.tar" -C "$(dirname "$run")" "$(basename "$run")/parser-unet.safetensors" \
    "$(basename "$run")/parser-unet.json" "$(basename "$run")/metrics.jsonl" "$(basename "$run").log"
split -b 15M "$run.tar" "$out/run.tar.part."
mib() { echo $(( ($(stat -c %s "$1") + 1048575) / 1048576 )); }
if (( $(mib "$run.tar") + $(mib "$run/checkpoint.safetensors") <= 62 )) && \
   (( $(ls "$out" | wc -l) + $(mib "$run/checkpoint.safetensors") / 15 + 1 <= 8 )); then
  split -b 15M "$run/checkpoint.safetensors" "$out/ckpt.part."
else
  echo "checkpoint left on the machine: $(mib "$run/checkpoint.safetensors") MiB would pass what comes back"
fi
ls -la "$out"
