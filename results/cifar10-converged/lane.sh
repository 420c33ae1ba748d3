#!/usr/bin/env bash
# One lane of the converged study's seed runs: every arm of every seed at the final budget and at its half-budget
# twin, in the order seed by seed (final budget first), each run claimed so that several lanes share one list.
# Usage (from the repository root, ../shared beside it, nodekd on the PATH): bash results/cifar10-converged/lane.sh
# Start one lane per core (OMP_NUM_THREADS=1 each); a killed lane resumes its run when started again, and a run whose
# light files and attacks are already committed under HERE/runs is skipped (on another machine too).
# Environment: SEEDS (default 0 1 2 3 4), ARMS (default the five arms), BUDGET (320), IMAGES (1000), ROOT (the run
# root, default ../study-converged-seeds), HERE (the committed result, results/cifar10-converged), AFTER (a script run
# after each finished run with the run folder, its epochs and its seed, when it exists at that moment; default
# results/cifar10-converged/attack.sh).
set -euo pipefail
images=${IMAGES:-1000}
budget=${BUDGET:-320}
root=${ROOT:-../study-converged-seeds}
here=${HERE:-results/cifar10-converged}
seeds=${SEEDS:-0 1 2 3 4}
arms=${ARMS:-node-t1_1 node-t1_1-sgd kd-t1_1 kd-t1_1-adam node-t1_100}
mkdir -p ../data/cifar10-jpeg "$root/.claims"
for split in train test; do
    [ -d "../data/cifar10-jpeg/$split" ] || tar -xJf "../shared/data/cifar10-jpeg/$split.tar.xz" -C ../data/cifar10-jpeg
done
data=$(cd ../data/cifar10-jpeg && pwd)
teacher=$root/resnet20-folder-cifar10-jpeg
if mkdir "$root/.claims/teacher" 2>/dev/null; then
    [ -f "$teacher/metrics.json" ] || nodekd teacher import resnet20 --from ../shared/weights/akamaster/resnet20-12fca82f.th \
        --dataset "folder:$data" --out "$teacher"
    touch "$root/.claims/teacher/done"
fi
until [ -f "$root/.claims/teacher/done" ]; do sleep 10; done
# The test split is scored once, after the last epoch: scoring 10,000 images costs three epochs of 1,000 images.
common=(--dataset "folder:$data" --batch-size 64 --channels 32 --train-images "$images" --eval-every 100000)

# train ARM SEED EPOCHS OUT: the arm's command.
train() {
    local arm=$1 seed=$2 epochs=$3 out=$4
    local run=(--seed "$seed" --epochs "$epochs" "${common[@]}" --out "$out")
    case $arm in
    node-t1_1) nodekd student train --t1 1 "${run[@]}" ;;  # Adam, lr 0.001 (the paper's baseline)
    node-t1_1-sgd) nodekd student train --t1 1 --optimizer sgd --lr 0.05 "${run[@]}" ;;  # the distilled arm's optimizer
    kd-t1_1) nodekd distill --teacher "$teacher" --T 3 --t1 1 --lr 0.05 "${run[@]}" ;;  # SGD (the paper's)
    kd-t1_1-adam) nodekd distill --teacher "$teacher" --T 3 --t1 1 --optimizer adam "${run[@]}" ;;
    node-t1_100) nodekd student train --t1 100 "${run[@]}" ;;  # Adam, lr 0.001
    *) echo "Unknown arm '$arm'." >&2; return 2 ;;
    esac
}

alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }
# committed RUN EPOCHS: the run's light files are committed with its attacks (PGD; at the final budget the checks too).
committed() {
    [ -f "$1/metrics.json" ] && [ -f "$1/attacks/pgd.json" ] && { [ "$2" != "$budget" ] || [ -f "$1/attacks/check.json" ]; }
}

for seed in $seeds; do
    for epochs in "$budget" $((budget / 2)); do
        for arm in $arms; do
            job=s$seed-e$epochs-$arm
            claim=$root/.claims/$job
            [ -f "$claim/done" ] && continue
            committed "$here/runs/seed$seed/e$epochs/$arm" "$epochs" && continue
            if ! mkdir "$claim" 2>/dev/null; then
                alive "$claim" && continue  # another lane holds it
            fi
            echo $$ > "$claim/pid"
            out=$root/seed$seed/e$epochs/$arm
            echo "$(date -u +%FT%TZ) lane $$: $job"
            train "$arm" "$seed" "$epochs" "$out"
            after=${AFTER:-results/cifar10-converged/attack.sh}
            if [ -f "$after" ]; then bash "$after" "$out" "$epochs" "$seed"; fi
            touch "$claim/done"
        done
    done
done
