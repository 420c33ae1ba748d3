#!/usr/bin/env bash
# The quick study (the README's main job) as it was run for the README's table and Figure 1, then its light files and
# report here. From the repository root: bash results/quick/make.sh (ROOT: where the run folders go, default
# ../study-quick; STAGE=report renders the committed light files alone).
set -euo pipefail
root=${ROOT:-../study-quick}
here=results/quick
if [[ ${STAGE:-all} != report ]]; then
    nodekd reproduce --preset quick --runs "$root"
    python results/light_files.py "$root" "$here/runs"
fi
mkdir -p "$here/report"
nodekd report --runs "$here/runs" --format markdown --out "$here/report" > "$here/report.md.partial"
sed "s#($here/report/#(#g" "$here/report.md.partial" > "$here/report/report.md" && rm "$here/report.md.partial"
nodekd report --runs "$here/runs" --format json --out "$here/report" > "$here/report/report.json"
