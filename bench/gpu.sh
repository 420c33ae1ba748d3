#!/usr/bin/env bash
# Every GPU check of nodekd in one command, on your own CUDA machine (docs/gpu.md), from the repository root:
#   bash bench/gpu.sh                                        # about 9 minutes; results in out/gpu-results.tgz
#   tar -xzf out/gpu-results.tgz && python -m bench.gpu_summary results   # tables, cost figures, estimate
# A machine without internet takes the packages its Python lacks from .gpu-pack/, made where there is internet by
# bash bench/gpu_pack.sh (PYVER= the machine's Python) and copied beside the repository.
# The checks run in order of what they are for, each under its own time limit and all within BUDGET_S seconds
# (default 540): the speed levers first, then what the dry-run's cost model needs,
# then the Ray GPU path, then repeats of what was measured on an H100 before (bench/results/*_h100.*). A check that
# would start past the budget is skipped; stages.tsv says which ran, their exit status and seconds. After every check
# the results so far are packed into $OUT/gpu-results.tgz, so a call stopped at its limit still returns them.
# GPU_SMOKE=1 runs every check on the CPU at toy sizes, to try this script (and .gpu-pack/, PYVER=3.11) here.
#
# In results/ (each check also writes NAME.log):
#   env.log                       the GPU, driver, torch and keras versions
#   student_step_{float32,mixed_bfloat16}.json   the paper's student (512 channels, batch 128), t1 = 1 and 100:
#                                 nodekd in each precision against plain PyTorch + torchdiffeq in float32, peak memory
#   attack_step_student_{float32,mixed_bfloat16}.json   PGD on that student, t1 = 1 and 100: nodekd (weights frozen,
#                                 and not) against a plain PyTorch PGD loop on the plain student
#   student_step_channels_last_{float32,mixed_bfloat16}.json   the student step with the dynamics in channels_last
#   student_step_32ch_b{8,64}.json   a 32-channel student (the small preset's) at batch 8 and 64, t1 = 1 and 100: the
#                                 GPU's fixed cost per training pass, which the dry-run's GPU profile lacks ("pass")
#   teacher_step.json             nodekd's ResNet20 train step against plain PyTorch: eager, bf16, CUDA graph
#   reproduce_ray{,_again}.log    a shortened quick study through a local Ray cluster holding the GPU (one GPU per
#                                 task, CUDA-graph teachers), then the same command again (nothing left to run)
#   solver_loop_{float32,mixed_bfloat16}.json   one solve (512 channels, batch 128), forward and backward:
#                                 torchdiffeq's dopri5 loop against nodekd's (models/dopri5.py)
#   train_digits_graph.log, distill_digits_{float32,mixed_bfloat16}.log   `nodekd teacher train resnet20 --dataset
#                                 digits`, then `nodekd distill` from it in each precision: accuracy, NFE, time
#   student_step_time_input.json  the student with odenet's time channel (nodekd: no concatenation)
#   dynamics_compile.json         the dynamics eager against torch.compile (fusion)
#   graph_check.json              the CUDA-graph train step against the eager one (same weights after 12 steps?)
#   train_digits_{eager,bf16}.log, attack_step_resnet20.json   the teacher without the graph and in bf16; PGD on
#                                 ResNet20, nodekd against a plain PyTorch loop
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
BUDGET_S=${BUDGET_S:-540}
START=$SECONDS
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/nodekd-gpu.XXXXXX)
R=$WORK/results
mkdir -p "$R"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 KERAS_BACKEND=torch

if [[ -d .gpu-pack ]]; then  # packages the device's image lacks (bench/gpu_pack.sh), beside the image's own
  SITE=$WORK/site
  packed=$(head -1 .gpu-pack/python.txt) here=$(python3 -c 'import sys; print("python %d.%d" % sys.version_info[:2])')
  [[ $packed == "$here" ]] || echo "warning: .gpu-pack is for $packed, this is $here (PYVER= of bench/gpu_pack.sh)"
  python3 -m pip install --quiet --no-index --no-deps --target "$SITE" .gpu-pack/wheels/*.whl 2>&1 | tail -3
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='tar')" \
    .gpu-pack/ray.tar.xz "$SITE"
  export PYTHONPATH=$PYTHONPATH:$SITE
fi

if [[ ${GPU_SMOKE:-0} == 1 ]]; then  # every check on the CPU at toy sizes: does the script run?
  DEV=cpu WIDE="--channels 8 --batch-size 2" FEW="--steps 1 --warmup 0" PGD="--steps 1 --repeats 1"
  NARROW=(8 64) MANY="--steps 1 --warmup 0" SHORT="--epochs-scale 0.05 --attack-images 4" EPOCHS="--epochs 1"
  TEACHER="--variants eager,bf16 --steps 2 --warmup 1" RESNET="--batch-size 4 --steps 1 --repeats 1"
  COMPILE="--channels 8 --batch-size 2 --steps 1" GRAPH=0
else
  DEV=cuda WIDE="--channels 512 --batch-size 128" FEW="--steps 5 --warmup 2" PGD="--steps 5 --repeats 3"
  NARROW=(8 64) MANY="--steps 20 --warmup 3" SHORT="--epochs-scale 0.25 --attack-images 20" EPOCHS=""
  TEACHER="--variants eager,bf16,graph,graph+bf16 --steps 50 --warmup 10" RESNET="--batch-size 256 --steps 10"
  COMPILE="--batch-size 128" GRAPH=1
fi

pack() {  # the results so far, as one file in $OUT
  tar -C "$WORK" -czf "$OUT/gpu-results.tgz.part" results && mv "$OUT/gpu-results.tgz.part" "$OUT/gpu-results.tgz"
}

check() {  # check NAME LIMIT_S COMMAND...: COMMAND under min(LIMIT_S, what is left of the budget), into NAME.log
  local name=$1 limit=$2 left=$((BUDGET_S - (SECONDS - START))) began=$SECONDS status
  shift 2
  if ((left < 20)); then
    printf '%s\tskipped\t0\n' "$name" >>"$R/stages.tsv"
    echo "== $name: skipped, ${left} s of the budget left"
    return
  fi
  ((limit > left)) && limit=$left
  echo "== $name (at most $limit s): $*" | tee "$R/$name.log"
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$R/$name.log"
  status=${PIPESTATUS[0]}
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - began))" >>"$R/stages.tsv"
  echo "== $name: exit $status after $((SECONDS - began)) s"
  pack
}

environment() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  fi
  python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda',
    torch.version.cuda, torch.cuda.is_available())"
  for package in keras torchdiffeq torchattacks ray; do
    python3 -c "import $package; print('$package', $package.__version__)"
  done
}

export -f environment
check env 60 bash -c environment
# the paper's student and its attack, nodekd in float32 and mixed_bfloat16 against plain float32.
for precision in float32 mixed_bfloat16; do
  check student_step_$precision 90 python3 -m bench.student_step --device $DEV $WIDE --t1 1,100 $FEW \
    --precision $precision --json "$R/student_step_$precision.json"
done
for precision in float32 mixed_bfloat16; do
  check attack_step_student_$precision 90 python3 -m bench.attack_step --device $DEV --model student $WIDE \
    --t1 1,100 $PGD --precision $precision --json "$R/attack_step_student_$precision.json"
done
# The channels_last lever: the same student step with the dynamics' state and kernels in NHWC.
for precision in float32 mixed_bfloat16; do
  check student_step_channels_last_$precision 90 python3 -m bench.student_step --device $DEV $WIDE --t1 1,100 $FEW \
    --precision $precision --memory-format channels_last --json "$R/student_step_channels_last_$precision.json"
done
# The cost model's GPU figures: a pass's fixed part (32 channels, two batch sizes) and the teacher's per image.
for batch in "${NARROW[@]}"; do
  check student_step_32ch_b$batch 60 python3 -m bench.student_step --device $DEV --channels 32 --batch-size $batch \
    --t1 1,100 $MANY --json "$R/student_step_32ch_b$batch.json"
done
check teacher_step 60 python3 -m bench.teacher_step --device $DEV $TEACHER --json "$R/teacher_step.json"
# The Ray GPU path, never run before: a shortened quick study on a local Ray cluster, then the same command again.
check reproduce_ray 150 python3 -m nodekd_cli reproduce --preset quick $SHORT --workers 2 --device $DEV \
  --runs "$WORK/ray-runs"
check reproduce_ray_again 60 python3 -m nodekd_cli reproduce --preset quick $SHORT --workers 2 --device $DEV \
  --runs "$WORK/ray-runs"
python3 -m ray.scripts.scripts stop --force >/dev/null 2>&1  # a Ray stopped at its limit holds no GPU memory after
# Where the time goes, and what the fast options do to training.
for precision in float32 mixed_bfloat16; do
  check solver_loop_$precision 60 python3 -m bench.solver_loop --device $DEV $WIDE --t1 1,100 --steps 5 \
    --precision $precision --json "$R/solver_loop_$precision.json"
done
check train_digits_graph 60 python3 -m nodekd_cli teacher train resnet20 --dataset digits --device $DEV $EPOCHS \
  --out "$WORK/teacher"
for precision in float32 mixed_bfloat16; do
  check distill_digits_$precision 120 python3 -m nodekd_cli distill --teacher "$WORK/teacher" --T 3 --t1 1 \
    --device $DEV $EPOCHS --precision $precision --out "$WORK/kd-$precision"
done
check student_step_time_input 60 python3 -m bench.student_step --device $DEV $WIDE --t1 1 --time-input raw $FEW \
  --json "$R/student_step_time_input.json"
check dynamics_compile 120 python3 -m bench.dynamics_compile --device $DEV $COMPILE --json "$R/dynamics_compile.json"
# Measured on an H100 before (bench/results/*_h100.*): the same on this GPU.
if ((GRAPH)); then
  check graph_check 60 python3 -m bench.graph_check --json "$R/graph_check.json"
fi
check train_digits_eager 60 python3 -m nodekd_cli teacher train resnet20 --dataset digits --device $DEV $EPOCHS \
  --no-cuda-graph --out "$WORK/teacher-eager"
check train_digits_bf16 60 python3 -m nodekd_cli teacher train resnet20 --dataset digits --device $DEV $EPOCHS \
  --precision mixed_bfloat16 --out "$WORK/teacher-bf16"
check attack_step_resnet20 60 python3 -m bench.attack_step --device $DEV $RESNET --json "$R/attack_step_resnet20.json"
python3 -m bench.gpu_summary "$R" 2>&1 | tee "$R/summary.md"
pack
echo "== done in $((SECONDS - START)) s; results in $OUT/gpu-results.tgz"
