#!/usr/bin/env bash
# The first budget search of the converged study (docs/results.md, "Still learning at 10,000 images"): the
# same five arms on 10,000 class-stratified real CIFAR-10 training images at 5, 10, 20 epochs, the t1 = 1 pair also at
# 40 (and 80, started), attacked at 40, the t1 = 1 pair at 64 channels at 5 and 10. No arm finished learning by the
# half-budget rule. The steps are results/cifar10-converged-search/make.sh's (STAGE=... as there); the arms trained at 40
# epochs and beyond were trained with ARMS="node-t1_1 kd-t1_1" IMAGES=10000 ROOT=../study-converged
# bash results/cifar10-converged-search/search.sh 40 80.
set -euo pipefail
IMAGES=10000 EVAL_EVERY=1 ROOT=../study-converged HERE=results/cifar10-10k-search FIRST=5 BUDGET=${BUDGET:-40} \
    WIDTH_BUDGETS=${WIDTH_BUDGETS:-5 10} AUTOATTACK=${AUTOATTACK:-0} exec bash results/cifar10-converged-search/make.sh
