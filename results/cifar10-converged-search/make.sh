#!/usr/bin/env bash
# The converged real-CIFAR-10 study (docs/results.md, "Verdicts at convergence"), step by step, then its report.
# Run from the repository root with ../shared beside it and nodekd on the PATH; the run folders go to $ROOT (outside
# the repository) and their light files (configs, metrics, histories, attack results; no weights) are copied to
# $HERE/runs. Every step resumes or is skipped when done, so the script can be run in parts:
# STAGE=search|seeds|attacks|width|report runs one stage, the default all of them in order.
# Environment (defaults: the converged study, 1,000 training images): IMAGES training images; BUDGET the final epochs
# (the search doubles from FIRST up to it); ROOT the run root; HERE the committed result. results/cifar10-10k-search's
# make.sh runs this script with its own values (10,000 images, a budget that no arm finished).
# What was run for the committed result (2 single-thread lanes, OMP_NUM_THREADS=1, on the 2-core CPU): the
# t1 = 1 pair only, ARMS="node-t1_1 kd-t1_1" bash results/cifar10-converged-search/search.sh 10 20 40 80 160 320 (the first
# three budgets of NODEs(1) scored every epoch, EVAL_EVERY=1; 640 started), then STAGE=seeds (320 epochs, then
# their 160-epoch twins), STAGE=attacks, and STAGE=report. Then NODEs(100) and
# the Adam-distilled NODEs(1) at the budget the pair needed only, ARMS=node-t1_100 (and ARMS=kd-t1_1-adam) bash
# results/cifar10-converged-search/search.sh 320 160, with the attacks stage's three commands (pgd, mifgsm, check) for the
# runs it had not attacked yet: seed 1's pair and these two; each arm in its own lane.
set -euo pipefail
images=${IMAGES:-1000}
budget=${BUDGET:-320}  # the final epochs of $images images: the largest budget both arms of the t1 = 1 pair reached (docs/results.md)
first=${FIRST:-10}
root=${ROOT:-../study-converged-n$images}
here=${HERE:-results/cifar10-converged-search}
data=$(mkdir -p ../data && cd ../data && pwd)/cifar10-jpeg
teacher=$root/resnet20-folder-cifar10-jpeg
# The test split is scored after every EVAL_EVERY-th epoch and the last (search.sh says why).
common=(--dataset "folder:$data" --batch-size 64 --channels 32 --train-images "$images" --eval-every "${EVAL_EVERY:-10}")
stage=${STAGE:-all}
case $stage in all | search | seeds | attacks | width | report) ;;
*) echo "STAGE must be all, search, seeds, attacks, width or report, not '$stage'." >&2; exit 2 ;;
esac

# 1. The budget search: the small preset's five arms (seed 0) at FIRST, twice FIRST ... BUDGET epochs, so that each
#    budget's runs are the half-budget twins of the next one's (also imports the teacher).
if [[ $stage == all || $stage == search ]]; then
    epochs=$first
    budgets=()
    while ((epochs <= budget)); do budgets+=("$epochs"); epochs=$((epochs * 2)); done
    IMAGES=$images ROOT=$root EVAL_EVERY=${EVAL_EVERY:-10} bash "$(dirname "$0")/search.sh" "${budgets[@]}"
fi

# 2. A second seed of the t1 = 1 pair (with and without distillation) at the final budget and its twin, so that the
#    intervals carry seed variance (seed 1 also draws another stratified sample of training images).
if [[ $stage == all || $stage == seeds ]]; then
    for epochs in $((budget / 2)) "$budget"; do
        out=$root/seed1/e$epochs
        nodekd student train --t1 1 --seed 1 --epochs "$epochs" "${common[@]}" --out "$out/node-t1_1"
        nodekd distill --teacher "$teacher" --T 3 --t1 1 --lr 0.05 --seed 1 --epochs "$epochs" "${common[@]}" \
            --out "$out/kd-t1_1"
    done
fi

# 3. Attacks on every arm at the final budget and on the teacher: PGD and MI-FGSM at eps 0..20 step 4 on 500
#    stratified test images, the masking checks on 50 (students), AutoAttack at 8/255 on 100 for the NODEs(1) pair
#    (AUTOATTACK=0 leaves it out: about 10 minutes a student on this CPU).
if [[ $stage == all || $stage == attacks ]]; then
    arms=("$teacher")
    for run in "$root/search/e$budget"/* "$root/seed1/e$budget"/*; do
        if [ -d "$run" ]; then arms+=("$run"); fi
    done
    for run in "${arms[@]}"; do
        nodekd attack pgd --run "$run" --eps-max 20 --eps-step 4 --n 500
        nodekd attack mifgsm --run "$run" --eps-max 20 --eps-step 4 --n 500
    done
    for run in "${arms[@]:1}"; do
        nodekd attack check "$run" --n 50
    done
    if [[ ${AUTOATTACK:-1} == 1 ]]; then
        for run in "$root/search/e$budget/node-t1_1" "$root/search/e$budget/kd-t1_1"; do
            nodekd attack autoattack --eps 8 --n 100 --run "$run"
        done
    fi
fi

# 4. What the width changes: the t1 = 1 pair at 64 channels (twice the width: 282,378 parameters, about the teacher's
#    269,722, where the 32-channel student has 71,562) at the search's first budgets (WIDTH_BUDGETS, default FIRST
#    and twice FIRST epochs), beside the 32-channel pair.
if [[ $stage == all || $stage == width ]]; then
    wide=(--dataset "folder:$data" --batch-size 64 --channels 64 --train-images "$images" --eval-every "${EVAL_EVERY:-10}")
    for epochs in ${WIDTH_BUDGETS:-$first $((first * 2))}; do
        out=$root/width64/e$epochs
        nodekd student train --t1 1 --epochs "$epochs" "${wide[@]}" --out "$out/node-t1_1"
        nodekd distill --teacher "$teacher" --T 3 --t1 1 --lr 0.05 --epochs "$epochs" "${wide[@]}" --out "$out/kd-t1_1"
    done
fi

# 5. The light files of every finished run (the search's budgets included: the report judges each budget by the one
#    before it, and draws them all in the learning curves), added to those committed here (runs committed earlier
#    stay, whether or not $ROOT still holds them), then the report in every format.
if [[ $stage == all || $stage == report ]]; then
    if [ -d "$root" ]; then python results/light_files.py "$root" "$here/runs"; fi  # light files, portable paths
    nodekd report --runs "$here/runs" --format markdown --out "$here/report" > "$here/report.md.partial"
    sed "s#($here/report/#(#g" "$here/report.md.partial" > "$here/report/report.md" && rm "$here/report.md.partial"
    nodekd report --runs "$here/runs" --format json --out "$here/report" > "$here/report/report.json"
    nodekd report --runs "$here/runs" --format csv --out "$here/report"
    python results/findings_table.py  # the README's findings table quotes this report's verdicts
fi
