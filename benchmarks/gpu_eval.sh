#!/usr/bin/env bash
# The device checks in one run: extraction throughput, probe speed, pre-training throughput.
# Usage on a GPU machine, from the repo root, with wheels for missing packages in .whl/:
#   bash benchmarks/gpu_eval.sh [parity|extract|probe|train|all]   (extract runs parity first)
# The device image has torch, torchvision, numpy, scikit-learn, typer and rich; fetch the rest beforehand with
#   pip download --python-version 3.12 --only-binary=:all: --no-deps -d .whl pydantic==2.14.4 \
#     pydantic-core==2.50.5 annotated-types typing-inspection webdataset==1.0.2 braceexpand imagecodecs==2026.3.6
# and carry .whl (about 30 MB) with the run.
# Rehearsal on a CPU machine (same steps, tiny sizes, no install, the project's venv), before spending device time:
#   DRY=1 PY=.venv/bin/python bash benchmarks/gpu_eval.sh all
PY=${PY:-python3}
if [ -z "$DRY" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
  DEVICE=cuda; WORKERS=14; ENCODERS="torchvision:resnet50 torchvision:densenet121"; ARCHS="resnet50 densenet121"
  PASSES=${PASSES:-4}; PER_TASK=${PER_TASK:-1500}; ITERS=400; WARM=100; TRAIN_BATCH=64; PROBE_N=10000
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
else
  export PYTHONPATH=$PWD
  DEVICE=cpu; WORKERS=2; ENCODERS="random"; ARCHS="tiny"; PASSES=1; PER_TASK=20; ITERS=6; WARM=2; TRAIN_BATCH=8
  PROBE_N=600
fi
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if [ -z "$DRY" ]; then TMP=${TMP_ROOT:-/tmp}; else TMP=${TMP_ROOT:-$(mktemp -d)}; fi
what=${1:-all}
status=0
if [ "$what" != train ] && [ "$what" != probe ]; then
  "$PY" -m dpbench build --pool synthetic --out "$TMP/pool" --workers "$WORKERS" > "$OUT/build.log" 2>&1 \
    || { tail -3 "$OUT/build.log"; exit 1; }
fi
if [ "$what" = parity ] || [ "$what" = extract ] || [ "$what" = all ]; then  # seconds; correctness first
  timeout 120 "$PY" benchmarks/cuda_parity.py --device "$DEVICE" --data "$TMP/pool" > "$OUT/parity.json" \
    2> "$OUT/parity.err" || status=1
  cat "$OUT/parity.json"; tail -3 "$OUT/parity.err"
fi
if [ "$what" = extract ] || [ "$what" = all ]; then
  for enc in $ENCODERS; do
    n=${enc#*:}
    timeout 150 "$PY" benchmarks/extract_throughput.py --encoder "$enc" --data "$TMP/pool" --device "$DEVICE" \
      --workers "$WORKERS" --batch 256 --precision bf16 --channels-last --repeat 2 --passes "$PASSES" \
      > "$OUT/extract_$n.json" 2> "$OUT/extract_$n.err" || status=1
    cat "$OUT/extract_$n.json"; tail -3 "$OUT/extract_$n.err"
  done
fi
if [ "$what" = probe ] || [ "$what" = all ]; then
  timeout 120 "$PY" benchmarks/probe_speed.py --device "$DEVICE" --n "$PROBE_N" --dim 2048 \
    > "$OUT/probe.json" 2> "$OUT/probe.err" || status=1
  cat "$OUT/probe.json"; tail -3 "$OUT/probe.err"
fi
if [ "$what" = train ] || [ "$what" = all ]; then
  # shellcheck disable=SC2086  # ARCHS is a list of words
  timeout 420 "$PY" benchmarks/train_throughput.py --arch $ARCHS --per-task "$PER_TASK" --workers "$WORKERS" \
    --iterations "$ITERS" --warmup "$WARM" --batch "$TRAIN_BATCH" --device "$DEVICE" --data "$TMP/trainpool" \
    > "$OUT/train.json" 2> "$OUT/train.err" || status=1
  cat "$OUT/train.json"; tail -3 "$OUT/train.err"
fi
exit $status
