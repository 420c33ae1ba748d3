#!/usr/bin/env bash
# The attacks on one finished run of the converged study, then its light files into the committed result.
# Usage: bash results/cifar10-converged/attack.sh RUN EPOCHS SEED (lane.sh runs it after each run it trains).
# Every run: PGD over eps 0..20 step 4 on 1,000 class-stratified test images (the primary robustness measure, and at
# half budget what judges whether the comparisons have stopped moving). At the final budget also MI-FGSM on the same
# images, the masking checks on 200 images at the eps where the run's PGD leaves about half its clean-correct images
# (`--eps auto`), and for seeds 0 and 1 AutoAttack at 8/255 on 200 images. Each step resumes or is skipped when done;
# a step that fails is reported and the others go on (the lane must not stop); each step's output goes to
# RUN/attacks.log. Environment: BUDGET (320), ROOT (the run root, ../study-converged-seeds), HERE (the committed
# result, results/cifar10-converged).
set -uo pipefail
run=$1 epochs=$2 seed=$3
budget=${BUDGET:-320}
root=${ROOT:-../study-converged-seeds}
here=${HERE:-results/cifar10-converged}
step() { "$@" >> "$run/attacks.log" 2>&1 || echo "$(date -u +%FT%TZ) failed (exit $?): $*" >&2; }
step nodekd attack pgd --run "$run" --eps-max 20 --eps-step 4 --n 1000
if [ "$epochs" = "$budget" ]; then
    step nodekd attack mifgsm --run "$run" --eps-max 20 --eps-step 4 --n 1000
    step nodekd attack check "$run" --n 200
    if [ "$seed" -le 1 ]; then step nodekd attack autoattack --eps 8 --n 200 --run "$run"; fi
fi
step python results/light_files.py "$root" "$here/runs"
exit 0
