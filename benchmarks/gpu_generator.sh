#!/usr/bin/env bash
# One prepared GPU run for the paper's generator on real faces (issue 39), under 9.5 minutes of wall time on an
# H100/H200: train `lean` at 256² on the training split of celebamask-mini (aligned crops + hand-made masks, the
# parsing loss from the shipped parser) for MINUTES, continuing exactly from the checkpoint the last run brought
# back, and hand back in $OUT the compact checkpoint (`cat ckpt.part.* > checkpoint.safetensors`) and the weights,
# card, metrics, log and last sample grid (`cat run.tar.part.* | tar -x`). Several short runs add up: the learning
# rate is constant, the data order a function of the step, the checkpoint exact (--compact-checkpoint).
#
# The GPU machine has neither mediapipe nor ../shared: pack the data here once (11 MiB, under a minute):
#   mgpe train pack --aligned --data ../shared/data/celebamask-mini --out runs/gan-pack
# and put the parts the last run brought back (ckpt.part.*) in runs/gan-back (none: the first run starts afresh).
# Run there: bash benchmarks/gpu_generator.sh   (carry runs/gan-pack and runs/gan-back: about 48 MiB with the
# checkpoint, under the 64 MiB that travel beside the working tree)
# Measure here, with the fetched parts unpacked (`cat run.tar.part.* | tar -x` gives gan-gpu/):
#   python benchmarks/eval_generator.py ../shared/data/celebamask-mini --weights gan-gpu/mgpe-gan.safetensors
# Settings (environment): MINUTES 8 (training, counted from the command's start; then the checkpoint and the
# hand-back), STEPS 200000 (a ceiling: the schedule is constant, so only MINUTES stops a run), BATCH 16, CONFIG
# lean, SETS (more --set options, the same every run: a checkpoint refuses other settings), DEVICE cuda, WORKERS 8,
# PRECISION auto (bf16 autocast on CUDA), PACK runs/gan-pack/celebamask-mini, BACK runs/gan-back, RUN runs/gan-gpu.
set -euo pipefail
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
pack=${PACK:-runs/gan-pack/celebamask-mini}
back=${BACK:-runs/gan-back}
run=${RUN:-runs/gan-gpu}
out=${OUT:-$run/out}
minutes=${MINUTES:-8}
[ -e "$pack/index.json" ] || { echo "gpu_generator.sh: $pack/index.json is missing: pack the data as the header says" >&2; exit 2; }
$py -c "import mgpe_toolkit" 2>/dev/null || $py -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
[ "${DEVICE:-cuda}" = cpu ] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p "$run"
resume=()
if compgen -G "$back/ckpt.part.*" > /dev/null; then
  cat "$back"/ckpt.part.* > "$run/checkpoint.safetensors"
  resume=(--resume)
  echo "continuing from $back ($(du -m "$run/checkpoint.safetensors" | cut -f1) MiB checkpoint)"
fi
sets=(--set "batch=${BATCH:-16}" --set checkpoint_every=1000 --set image_every=1000)
for s in ${SETS:-}; do sets+=(--set "$s"); done
start=$(date +%s)
# timeout: a hard stop a minute and a half past MINUTES, should the last step or the checkpoint hang.
timeout "$(( minutes * 60 + 90 ))" $py -m mgpe_toolkit train --config "${CONFIG:-lean}" --data "$pack" --out "$run" \
  --steps "${STEPS:-200000}" --minutes "$minutes" --device "${DEVICE:-cuda}" --workers "${WORKERS:-8}" \
  --precision "${PRECISION:-auto}" --compact-checkpoint "${sets[@]}" "${resume[@]}" > "$run.log" 2>&1 \
  || echo "training exited $?"
echo "train wall $(( $(date +%s) - start )) s"
grep -a -E "resumed|data:|stopped at|already" "$run.log" | cut -c1-200 || true
tr '\n' ' ' < "$run.log" | grep -o "time: .*checkpoints" | tr -s ' ' || true
$py - "$run/metrics.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def tenths(key):  # mean of the first and of the last tenth of the steps that logged `key`
    vals = [r[key] for r in rows if key in r]
    k = max(len(vals) // 10, 1)
    return sum(vals[:k]) / k, sum(vals[-k:]) / k
print(f"steps {rows[0]['step']}..{rows[-1]['step']} this run ({len(rows)} logged)")
for key in ("loss/local", "loss/global", "loss/gp", "loss/d"):
    print(f"{key}: first tenth {tenths(key)[0]:.4f} -> last tenth {tenths(key)[1]:.4f}")
g = tenths("loss/global")[1]  # ½·MSE of the x_s = x_t reconstructions, images in [-1, 1]
print(f"reconstruction PSNR (training batches, last tenth) {10 * math.log10(4 / (2 * g)):.2f} dB")
PY
# What comes back from the machine: at most 8 files of 16 MiB, 64 MiB in all: the compact checkpoint (37 MiB for
# lean) and a tar of the weights (17 MiB), card, metrics, log and last sample grid, each in 15 MiB parts.
mkdir -p "$out"
rm -f "$out"/ckpt.part.* "$out"/run.tar.part.*
name=$(basename "$run")
last=$(ls "$run/samples" 2>/dev/null | tail -1)
tar -cf "$run.tar" -C "$(dirname "$run")" "$name/mgpe-gan.safetensors" "$name/mgpe-gan.json" "$name/metrics.jsonl" \
    "$name.log" ${last:+"$name/samples/$last"}
split -b 15M "$run/checkpoint.safetensors" "$out/ckpt.part."
split -b 15M "$run.tar" "$out/run.tar.part."
files=$(ls "$out" | wc -l)
mib=$(( ($(du -cb "$out"/* | tail -1 | cut -f1) + 1048575) / 1048576 ))
echo "hand-back: $files files, $mib MiB"
(( files <= 8 && mib <= 64 )) || { echo "gpu_generator.sh: the hand-back passes 8 files or 64 MiB" >&2; exit 3; }
