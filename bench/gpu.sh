#!/usr/bin/env bash
# GPU checks for nodekd, in one run on a CUDA machine (see the README, "Benchmarks"). Writes to $OUT (or ./out).
# Issue 12's checks come first (none has run on a GPU yet), then those measured before (bench/results/*_h100.*):
#   gpu.txt                the GPU, driver, torch and keras versions
#   student_step_{float32,mixed_bfloat16}_gpu.json  the paper's student (512 channels, batch 128), t1 = 1 and 100,
#                          nodekd in each precision against plain PyTorch + torchdiffeq in float32
#   attack_step_student_{float32,mixed_bfloat16}_gpu.json  PGD on that student, t1 = 1 and 100: nodekd (weights
#                          frozen, and not), against a plain PyTorch PGD loop on the plain student
#   solver_loop_gpu.log    one solve of the dynamics (512 channels, batch 128, t1 = 1 and 100), forward and backward:
#                          torchdiffeq's dopri5 loop against nodekd's (models/dopri5.py), float32 and mixed_bfloat16
#   distill_digits_mixed.log  `nodekd distill --precision mixed_bfloat16` on digits, beside distill_digits.log
#   student_step_32ch_b{8,64}_gpu.json  a 32-channel student (the small preset's) at batch 8 and 64, t1 = 1 and 100:
#                          the GPU's fixed cost per training pass, which the dry-run's GPU profile lacks ("pass")
#   student_step_time_input_gpu.json  the student with odenet's time channel (nodekd: no concatenation; issue 12)
#   dynamics_compile_gpu.json  the student's dynamics eager against torch.compile (fusion; issue 12)
#   reproduce_ray_gpu.log  a shortened quick study through a local Ray cluster holding the GPU (the Ray GPU path:
#                          one GPU per task, CUDA-graph teachers), then the same command again (nothing new to run)
#   graph_check.json       the CUDA-graph train step against the eager one (same weights after 12 steps?)
#   teacher_step_gpu.json  nodekd's ResNet20 train step against plain PyTorch: eager, bf16, CUDA graph
#   train_digits.log       `nodekd teacher train resnet20 --dataset digits` end to end: graph, no graph, bf16
#   distill_digits.log     `nodekd distill` from that teacher on digits end to end
#   attack_step_gpu.json   PGD throughput, nodekd against a plain PyTorch loop on the same ResNet20
# Needs keras (with namex and optree) importable: where it is missing, install its wheels first.
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
KERAS_BACKEND=torch python3 -c "import torch, keras; print('torch', torch.__version__, 'keras', keras.__version__)" | tee -a "$OUT/gpu.txt"
for precision in float32 mixed_bfloat16; do
  python3 -m bench.solver_loop --device cuda --channels 512 --batch-size 128 --t1 1,100 --steps 5 \
    --precision $precision 2>&1 | tee -a "$OUT/solver_loop_gpu.log"
  python3 -m bench.student_step --device cuda --channels 512 --batch-size 128 --t1 1,100 --steps 5 --warmup 2 \
    --precision $precision --json "$OUT/student_step_${precision}_gpu.json" 2>&1 | tee -a "$OUT/student_step_gpu.log"
  python3 -m bench.attack_step --device cuda --model student --channels 512 --batch-size 128 --t1 1,100 --steps 5 \
    --repeats 3 --precision $precision --json "$OUT/attack_step_student_${precision}_gpu.json" 2>&1 \
    | tee -a "$OUT/attack_step_student_gpu.log"
done
for batch in 8 64; do
  python3 -m bench.student_step --device cuda --channels 32 --batch-size $batch --t1 1,100 --steps 20 --warmup 3 \
    --json "$OUT/student_step_32ch_b${batch}_gpu.json" 2>&1 | tee -a "$OUT/student_step_32ch_gpu.log"
done
python3 -m bench.student_step --device cuda --channels 512 --batch-size 128 --t1 1 --time-input raw --steps 5 \
  --warmup 2 --json "$OUT/student_step_time_input_gpu.json" 2>&1 | tee "$OUT/student_step_time_input_gpu.log"
python3 -m bench.dynamics_compile --device cuda --batch-size 128 --json "$OUT/dynamics_compile_gpu.json" 2>&1 \
  | tee "$OUT/dynamics_compile_gpu.log"
for attempt in first again; do
  echo "== $attempt: nodekd reproduce --preset quick --epochs-scale 0.25 --attack-images 20 --workers 2" \
    | tee -a "$OUT/reproduce_ray_gpu.log"
  timeout 300 python3 -m nodekd_cli reproduce --preset quick --epochs-scale 0.25 --attack-images 20 --workers 2 \
    --device cuda --runs /tmp/nodekd-ray 2>&1 | tail -40 | tee -a "$OUT/reproduce_ray_gpu.log"
done
python3 -m bench.graph_check --json "$OUT/graph_check.json" 2>&1 | tee "$OUT/graph_check.log"
python3 -m bench.teacher_step --device cuda --variants eager,bf16,graph,graph+bf16 --steps 50 --warmup 10 \
  --json "$OUT/teacher_step_gpu.json" 2>&1 | tee "$OUT/teacher_step_gpu.log"
for options in "--cuda-graph" "--no-cuda-graph" "--cuda-graph --precision mixed_bfloat16"; do
  echo "== nodekd teacher train resnet20 --dataset digits $options" | tee -a "$OUT/train_digits.log"
  python3 -m nodekd_cli teacher train resnet20 --dataset digits --device cuda $options \
    --out "/tmp/nodekd-gpu-${options// /}" 2>&1 | tail -16 | tee -a "$OUT/train_digits.log"
done
python3 -m nodekd_cli distill --teacher /tmp/nodekd-gpu---cuda-graph --T 3 --t1 1 --device cuda \
  --out /tmp/nodekd-gpu-kd 2>&1 | tail -24 | tee "$OUT/distill_digits.log"
python3 -m nodekd_cli distill --teacher /tmp/nodekd-gpu---cuda-graph --T 3 --t1 1 --device cuda \
  --precision mixed_bfloat16 --out /tmp/nodekd-gpu-kd-mixed 2>&1 | tail -24 | tee "$OUT/distill_digits_mixed.log"
python3 -m bench.attack_step --device cuda --batch-size 256 --steps 10 \
  --json "$OUT/attack_step_gpu.json" 2>&1 | tee "$OUT/attack_step_gpu.log"
