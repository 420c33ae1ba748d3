#!/usr/bin/env bash
# The students' mixed precision (`--precision mixed_bfloat16`: the dynamics' convolutions in bfloat16, the solver in
# float32) against float32, each pair with the same seed, data and budget, on the shared 2-core CPU (which has AMX
# bfloat16 units). docs/research-notes.md, "Mixed precision", quotes the results.
#   digits: NODEs(1) and NODEs(100) distilled (T = 3) from a ResNet20 trained here, nodekd's digits defaults;
#   real CIFAR-10 (../shared/data/cifar10-jpeg): NODEs(1) and NODEs(100) alone (Adam), the small preset's student
#   budget (32 channels, 10,000 training images, 5 epochs at batch 64).
# Run from the repository root; the run folders go to $RUNS (default ../precision-runs), their light files (configs,
# metrics, histories; no weights) are copied here, with a summary table (summary.md). The committed runs were made
# with RUNS=../tmp (their configs name the teacher relative to it: r20), after a float32 digits run was made again
# alone for its time.
set -euo pipefail
runs=${RUNS:-../precision-runs}
nodekd teacher train resnet20 --dataset digits --out "$runs/r20"
for precision in float32 mixed_bfloat16; do
    for t1 in 1 100; do
        nodekd distill --teacher "$runs/r20" --T 3 --t1 $t1 --precision $precision --out "$runs/kd-$precision-$t1"
    done
done
mkdir -p ../data/cifar10-jpeg
for split in train test; do
    [ -d "../data/cifar10-jpeg/$split" ] || tar -xJf "../shared/data/cifar10-jpeg/$split.tar.xz" -C ../data/cifar10-jpeg
done
data=$(cd ../data/cifar10-jpeg && pwd)
for t1 in 1 100; do
    for precision in float32 mixed_bfloat16; do
        nodekd student train --dataset "folder:$data" --t1 $t1 --epochs 5 --batch-size 64 --channels 32 \
            --train-images 10000 --precision $precision --out "$runs/node-cifar10-$precision-$t1"
    done
done
out=results/mixed-precision
rm -rf "$out/runs"
for run in "$runs"/kd-* "$runs"/node-cifar10-*; do
    mkdir -p "$out/runs/$(basename "$run")"
    cp "$run"/config.json "$run"/metrics.json "$run"/history.csv "$out/runs/$(basename "$run")/"
done
python results/light_files.py --in-place "$out/runs" --runs-root "$runs"  # portable paths
python -m bench.precision_summary "$out/runs" > "$out/summary.md"
