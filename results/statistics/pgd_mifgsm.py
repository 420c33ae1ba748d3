"""How much MI-FGSM adds to PGD as evidence: the correlation, image by image, of two runs' difference under PGD with
their difference under MI-FGSM (each image's accuracy averaged over eps 4..20/255), for every pair of committed runs
of a study that both attacks scored on the same images.

    python results/statistics/pgd_mifgsm.py results/cifar10-converged-search/runs
"""

import itertools
import json
import sys
from pathlib import Path

import numpy as np

EPS = (4, 8, 12, 16, 20)


def scores(run, attack):
    path = run / "attacks" / f"{attack}.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if not isinstance(result.get("correct"), list) or not set(EPS) <= set(result["eps"]):
        return None
    rows = [[b == "1" for b in result["correct"][result["eps"].index(e)]] for e in EPS]
    return tuple(result["images"] or []), np.mean(rows, axis=0)


def main(root):
    runs = sorted(p.parent.parent for p in Path(root).rglob("attacks/pgd.json"))
    found = []
    for a, b in itertools.combinations(runs, 2):
        pa, pb, ma, mb = scores(a, "pgd"), scores(b, "pgd"), scores(a, "mifgsm"), scores(b, "mifgsm")
        if None in (pa, pb, ma, mb) or not pa[0] == pb[0] == ma[0] == mb[0]:
            continue
        pgd, mifgsm = pa[1] - pb[1], ma[1] - mb[1]
        if pgd.std() == 0 or mifgsm.std() == 0:
            continue
        r = float(np.corrcoef(pgd, mifgsm)[0, 1])
        found.append(r)
        print(f"{a.relative_to(root)} - {b.relative_to(root)}: r = {r:.3f} ({len(pgd)} images)")
    print(f"median r = {np.median(found):.3f} over {len(found)} pairs (min {min(found):.3f}, max {max(found):.3f})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
