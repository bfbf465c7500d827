#!/usr/bin/env bash
# The device checks in one run: extraction throughput, probe speed, pre-training throughput.
# Usage on a GPU machine, from the repo root, with wheels for missing packages in .whl/:
#   bash benchmarks/gpu_eval.sh [extract|probe|train|all]
# The device image has torch, torchvision, numpy, scikit-learn, typer and rich; fetch the rest beforehand with
#   pip download --python-version 3.12 --only-binary=:all: --no-deps -d .whl pydantic==2.14.4 \
#     pydantic-core==2.50.5 annotated-types typing-inspection webdataset==1.0.2 braceexpand imagecodecs==2026.3.6
# and carry .whl (about 30 MB) with the run.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
what=${1:-all}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if [ "$what" = extract ] || [ "$what" = all ]; then
  python3 -m dpbench build --pool synthetic --out /tmp/pool --workers 12 > "$OUT/build.log" 2>&1 || exit 1
  for enc in torchvision:resnet50 torchvision:densenet121; do
    n=${enc#*:}
    timeout 150 python3 benchmarks/extract_throughput.py --encoder "$enc" --data /tmp/pool --device cuda --workers 14 \
      --batch 256 --precision bf16 --channels-last --repeat 2 --passes "${PASSES:-4}" > "$OUT/extract_$n.json" 2> "$OUT/extract_$n.err"
    cat "$OUT/extract_$n.json"; tail -3 "$OUT/extract_$n.err"
  done
fi
if [ "$what" = probe ] || [ "$what" = all ]; then
  timeout 120 python3 benchmarks/probe_speed.py --device cuda --n 10000 --dim 2048 > "$OUT/probe.json" 2> "$OUT/probe.err"
  cat "$OUT/probe.json"
fi
if [ "$what" = train ] || [ "$what" = all ]; then
  timeout 420 python3 benchmarks/train_throughput.py --arch resnet50 densenet121 --per-task "${PER_TASK:-1500}" \
    --workers 14 --iterations 400 --warmup 100 --batch 64 --device cuda --data /tmp/trainpool \
    > "$OUT/train.json" 2> "$OUT/train.err"
  cat "$OUT/train.json"; tail -3 "$OUT/train.err"
fi
