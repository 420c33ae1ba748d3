#!/usr/bin/env bash
# The small real-image study (docs/results.md, "The paper's claims on real CIFAR-10"), as it was run, then its report.
# Run from the repository root, with ../shared beside it; the run folders go to ../study-small (outside the
# repository), their light files (configs, metrics, histories, attack results; no weights) are copied here.
# STAGE=study|checks|report runs one stage, the default all of them in order; the report stage renders the committed
# light files, refreshed from ../study-small first when that folder is here (nothing is removed otherwise).
set -euo pipefail
stage=${STAGE:-all}
case $stage in all | study | checks | report) ;; *) echo "STAGE must be all, study, checks or report, not '$stage'." >&2; exit 2 ;; esac
if [[ $stage == all || $stage == study ]]; then
    mkdir -p ../data/cifar10-jpeg
    for split in train test; do
        [ -d "../data/cifar10-jpeg/$split" ] || tar -xJf "../shared/data/cifar10-jpeg/$split.tar.xz" -C ../data/cifar10-jpeg
    done
    data=$(cd ../data/cifar10-jpeg && pwd)
    # --no-twins: the study was made before the small preset trained half-budget twins (results/cifar10-converged has
    # them).
    time nodekd reproduce --preset small --datasets "folder:$data" --teacher-checkpoints ../shared/weights/akamaster \
        --runs ../study-small --no-twins
fi
# After the study: its students checked again with torchattacks' Square and APGD-CE (the study's own checks used
# nodekd's earlier random-search control), and AutoAttack at eps 8/255 on the 50 check images of NODEs(1) (7 min;
# NODEs(100)'s was stopped unfinished).
if [[ $stage == all || $stage == checks ]]; then
    for run in ../study-small/node-* ../study-small/kd-*; do
        nodekd attack check "$run" --n 50
    done
    nodekd attack autoattack --eps 8 --n 50 --run ../study-small/node-folder-cifar10-jpeg-t1_1
fi
if [[ $stage == all || $stage == report ]]; then
    out=results/cifar10-small
    if [ -d ../study-small ]; then
        rm -rf "$out/runs"
        python results/light_files.py ../study-small "$out/runs"  # light files with portable paths
    fi
    # The report (Markdown, JSON, CSV files and Figure 1) into report/; its figure links made relative to report.md.
    nodekd report --runs "$out/runs" --format markdown --out "$out/report" > "$out/report.md.partial"
    sed "s#($out/report/#(#g" "$out/report.md.partial" > "$out/report/report.md" && rm "$out/report.md.partial"
    nodekd report --runs "$out/runs" --format json --out "$out/report" > "$out/report/report.json"
    nodekd report --runs "$out/runs" --format csv --out "$out/report"
    python results/findings_table.py  # the README's findings table quotes this report's verdicts
fi
