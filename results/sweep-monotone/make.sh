#!/usr/bin/env bash
# The paper's independent PGD and MI-FGSM sweeps against `--sweep monotone` on real CIFAR-10 (a protocol
# choice that changes the cost may enter the paper preset only with a real run showing what it changes). Models: the
# released akamaster ResNet20 (imported), and students with the small preset's budget (32 channels, 10,000 training
# images, 5 epochs at batch 64): NODEs(1) and NODEs(100) alone (Adam), and distilled from that ResNet20 (T = 3; SGD at
# lr 0.05 for t1 = 1, as the small preset; Adam for t1 = 100). Every sweep: the paper's eps grid 0, 1, .., 20 /255, the
# same 500 test images (class-stratified, seed 0) and seed. Each trained run is copied twice, a folder per sweep (made
# when a run kept one result per attack; it now keeps a monotone sweep apart, in <attack>.monotone.json). Run from the repository root, with ../shared beside it; the run folders go to $RUNS (default
# ../sweep-runs), their attack results and configs are copied here, with a summary (summary.md).
set -euo pipefail
runs=${RUNS:-../sweep-runs}
mkdir -p ../data/cifar10-jpeg
for split in train test; do
    [ -d "../data/cifar10-jpeg/$split" ] || tar -xJf "../shared/data/cifar10-jpeg/$split.tar.xz" -C ../data/cifar10-jpeg
done
data="folder:$(cd ../data/cifar10-jpeg && pwd)"
budget=(--epochs 5 --batch-size 64 --channels 32 --train-images 10000)
nodekd teacher import resnet20 --from ../shared/weights/akamaster/resnet20-12fca82f.th --dataset "$data" \
    --out "$runs/trained/resnet20"
for t1 in 1 100; do
    nodekd student train --dataset "$data" --t1 $t1 "${budget[@]}" --out "$runs/trained/node-$t1"
done
nodekd distill --teacher "$runs/trained/resnet20" --T 3 --t1 1 --lr 0.05 "${budget[@]}" --out "$runs/trained/kd-1"
nodekd distill --teacher "$runs/trained/resnet20" --T 3 --t1 100 "${budget[@]}" --out "$runs/trained/kd-100"
for name in resnet20 node-1 node-100 kd-1 kd-100; do
    for sweep in independent monotone; do
        rm -rf "$runs/$sweep/$name" && mkdir -p "$runs/$sweep" && cp -r "$runs/trained/$name" "$runs/$sweep/$name"
        for attack in pgd mifgsm; do
            nodekd attack $attack --sweep $sweep --n 500 --eps-max 20 --eps-step 1 --run "$runs/$sweep/$name"
        done
    done
done
out=results/sweep-monotone
rm -rf "$out/runs"
for sweep in independent monotone; do
    for run in "$runs/$sweep"/*/; do
        name=$(basename "$run")
        mkdir -p "$out/runs/$sweep/$name"
        cp "$run"/config.json "$run"/metrics.json "$out/runs/$sweep/$name/"
        cp -r "$run"/attacks "$out/runs/$sweep/$name/"
    done
done
python results/light_files.py --in-place "$out/runs" --runs-root "$runs"  # portable paths
python -m bench.sweep_summary "$out/runs" > "$out/summary.md"
