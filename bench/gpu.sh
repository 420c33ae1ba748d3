#!/usr/bin/env bash
# GPU checks for nodekd, in one run on the lent device (see the README, "Benchmarks"). Writes to $OUT (or ./out):
#   teacher_step_gpu.json  nodekd's Keras ResNet20 train step against plain PyTorch, eager fp32 and bf16
#   train_digits.log       `nodekd teacher train resnet20 --dataset digits` end to end on the GPU, fp32 and bf16
# Needs keras (and its namex, optree) importable: carry wheels and install them first where it is missing.
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, keras; print('torch', torch.__version__, 'keras', keras.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m bench.teacher_step --device cuda --variants eager,bf16 --steps 50 --warmup 10 \
  --json "$OUT/teacher_step_gpu.json" 2>&1 | tee "$OUT/teacher_step_gpu.log"
for precision in float32 mixed_bfloat16; do
  python3 -m nodekd_cli teacher train resnet20 --dataset digits --device cuda --precision "$precision" \
    --out "/tmp/nodekd-gpu-$precision" 2>&1 | tee -a "$OUT/train_digits.log"
done
