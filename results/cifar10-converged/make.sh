#!/usr/bin/env bash
# The converged study on real CIFAR-10 (docs/results.md, "The converged study"): five arms at t1 = 1 and 100, five
# seeds an arm, 1,000 class-stratified training images, 320 epochs and 160-epoch twins, attacked on 1,000 test
# images; then its report. Run from the repository root with ../shared beside it and nodekd on the PATH.
#   STAGE=lanes   starts LANES (default 2) lanes in the background, one thread each (lane.sh: the runs, each then
#                 attacked by attack.sh, its light files copied to runs/); logs in $ROOT/logs. Everything resumes.
#   STAGE=teacher the teacher's PGD and MI-FGSM sweeps on the same 1,000 test images (for Figure 1), its light files
#                 copied to runs/ (run it once the lanes have imported the teacher).
#   STAGE=apgd    APGD-CE (not the paper's attack; AutoAttack's first component) at eps 4 and 8 on the same 1,000 test
#                 images for every NODEs(1) and NODEs(100) with Adam at the full budget, in LANES lanes, their light
#                 files copied to runs/: whether the horizon's robustness advantage survives a stronger attack where
#                 it lies (shown beside the claim, not counted).
#   STAGE=report  the report from the committed light files (Markdown, JSON, CSV, Figure 1, learning curves), its
#                 Figure 1 for the results page (docs/img), and the study seed by seed (report/by_seed.md).
# Environment: ROOT (the run root, ../study-converged-seeds), LANES, and lane.sh's SEEDS, ARMS, BUDGET, IMAGES.
set -euo pipefail
stage=${STAGE:-report}
root=${ROOT:-../study-converged-seeds}
here=results/cifar10-converged
case $stage in lanes | teacher | apgd | report) ;; *) echo "STAGE must be lanes, teacher, apgd or report, not '$stage'." >&2; exit 2 ;; esac
if [[ $stage == lanes ]]; then
    mkdir -p "$root/logs"
    for lane in $(seq 1 "${LANES:-2}"); do
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 ROOT=$root nohup nice -n 10 bash "$here/lane.sh" \
            >> "$root/logs/lane$lane.log" 2>&1 &
        sleep 5  # the first lane imports the teacher
    done
    echo "Started ${LANES:-2} lanes; logs in $root/logs; the light files of each finished run land in $here/runs."
fi
if [[ $stage == teacher ]]; then
    for attack in pgd mifgsm; do
        nodekd attack "$attack" --run "$root/resnet20-folder-cifar10-jpeg" --eps-max 20 --eps-step 4 --n 1000
    done
    python results/light_files.py "$root" "$here/runs"
fi
if [[ $stage == apgd ]]; then
    # NODEs(100) first: the slower runs start first, so the lanes end together.
    printf '%s\n' "$root"/seed*/e"${BUDGET:-320}"/node-t1_100 "$root"/seed*/e"${BUDGET:-320}"/node-t1_1 |
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 xargs -P "${LANES:-2}" -I{} nice -n 10 \
            nodekd attack apgd --run {} --eps-max 8 --eps-step 4 --n 1000
    python results/light_files.py "$root" "$here/runs"
fi
if [[ $stage == report ]]; then
    nodekd report --runs "$here/runs" --format markdown --out "$here/report" > "$here/report.md.partial"
    sed "s#($here/report/#(#g" "$here/report.md.partial" > "$here/report/report.md" && rm "$here/report.md.partial"
    nodekd report --runs "$here/runs" --format json --out "$here/report" > "$here/report/report.json"
    nodekd report --runs "$here/runs" --format csv --out "$here/report"
    python results/findings_table.py  # the README's findings table quotes this report's verdicts
    cp "$here/report/figure1-folder_cifar10-jpeg.png" docs/img/figure1-cifar10-converged.png  # the results page's
    python "$here/by_seed.py" > "$here/report/by_seed.md"  # the results page's seed table and seed-by-seed figures
fi
