#!/usr/bin/env bash
# The budget search of a converged study: the small preset's five arms (seed 0) trained at doubling epochs
# of the same class-stratified real CIFAR-10 training images, so that a budget's runs are the half-budget twins of the
# next one's. Usage: search.sh EPOCHS... (default 10 20 40); environment: IMAGES training images (default 1000, the
# converged study; 10000 for results/cifar10-10k-search), ROOT the run root (default ../study-converged-n$IMAGES),
# ARMS="node-t1_1 kd-t1_1" trains only the arms named (default all five).
# Run from the repository root with ../shared beside it; run folders go to $ROOT/search/e<epochs>/<arm>.
set -euo pipefail
images=${IMAGES:-1000}
root=${ROOT:-../study-converged-n$images}
mkdir -p ../data/cifar10-jpeg
for split in train test; do
    [ -d "../data/cifar10-jpeg/$split" ] || tar -xJf "../shared/data/cifar10-jpeg/$split.tar.xz" -C ../data/cifar10-jpeg
done
data=$(cd ../data/cifar10-jpeg && pwd)
teacher=$root/resnet20-folder-cifar10-jpeg
[ -f "$teacher/metrics.json" ] || nodekd teacher import resnet20 --from ../shared/weights/akamaster/resnet20-12fca82f.th \
    --dataset "folder:$data" --out "$teacher"
# The small preset's student budget but the epochs and the number of images: batch 64, 32 channels. The test split is
# scored after every EVAL_EVERY-th epoch (default 10) and the last: on 1,000 training images, scoring the 10,000 test
# images takes three times as long as the epoch (the training is the same either way).
common=(--dataset "folder:$data" --batch-size 64 --channels 32 --train-images "$images" --eval-every "${EVAL_EVERY:-10}")
arms=" ${ARMS:-node-t1_1 kd-t1_1 kd-t1_1-adam node-t1_100 kd-t1_100} "
# arm NAME COMMAND...: runs COMMAND --out <budget folder>/NAME when NAME is one of $arms.
arm() {
    local name=$1
    shift
    if [[ $arms == *" $name "* ]]; then "$@" --out "$out/$name"; fi
}
for epochs in "${@:-10 20 40}"; do
    for epochs_ in $epochs; do
        out=$root/search/e$epochs_
        arm node-t1_1 nodekd student train --t1 1 --epochs "$epochs_" "${common[@]}"
        arm kd-t1_1 nodekd distill --teacher "$teacher" --T 3 --t1 1 --lr 0.05 --epochs "$epochs_" "${common[@]}"
        arm kd-t1_1-adam nodekd distill --teacher "$teacher" --T 3 --t1 1 --optimizer adam --epochs "$epochs_" \
            "${common[@]}"
        arm node-t1_100 nodekd student train --t1 100 --epochs "$epochs_" "${common[@]}"
        arm kd-t1_100 nodekd distill --teacher "$teacher" --T 3 --t1 100 --epochs "$epochs_" "${common[@]}"
    done
done
