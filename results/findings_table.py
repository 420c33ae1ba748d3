"""Rewrites the verdict cells of the README's findings table from the committed reports, so that remaking a study's
report never leaves the README quoting an older verdict (tests/test_docs.py checks the two agree).

    python results/findings_table.py          # rewrite README.md in place (every report stage runs it)
    python results/findings_table.py --check  # exit 1, naming the row, when the README differs

The table follows the line `<!-- findings table ... -->`; its header links each column to a report.md whose
report.json sits beside it; each row is a claim (ROWS names the claim each row shows). Run from the repository root.
"""

import argparse
import json
import re
import sys
from pathlib import Path

README = Path("README.md")
MARKER = "<!-- findings table"
ROWS = {
    "distillation raises accuracy": "kd_accuracy",
    "distillation raises robustness": "kd_robustness",
    "robustness grows with t1": "t1_robustness",
    "not gradient masking": "no_masking",
}


def verdicts(header: str, root: Path) -> list[dict[str, str]]:
    """Each column's verdicts by claim, from the report.json beside the report.md the header links."""
    reports = re.findall(r"\]\((results/[^)]+/report/report\.md)\)", header)
    return [
        {c["claim"]: c["verdict"] for c in json.loads((root / r).with_suffix(".json").read_text())["claims"]}
        for r in reports
    ]


def rewritten(text: str, root: Path) -> str:
    """`text` (the README) with every findings row's cells set to the reports' verdicts."""
    if MARKER not in text:
        raise SystemExit(f"The README has no findings table: no line starts with '{MARKER}'.")
    head, rest = text.split(MARKER, 1)
    marker_line, rest = rest.split("\n", 1)
    table, tail = rest.split("\n\n", 1)
    lines = table.splitlines()
    columns = verdicts(lines[0], root)
    for i, line in enumerate(lines[2:], start=2):
        claim = line.strip("|").split("|")[0].strip()
        if claim not in ROWS:
            raise SystemExit(f"The README's findings table has a row '{claim}' that no claim matches.")
        cells = [f"**{column[ROWS[claim]]}**" for column in columns]
        lines[i] = "| " + " | ".join([claim, *cells]) + " |"
    return head + MARKER + marker_line + "\n" + "\n".join(lines) + "\n\n" + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the README agrees with the reports")
    args = parser.parse_args()
    text = README.read_text()
    new = rewritten(text, Path("."))
    if args.check:
        if new != text:
            sys.exit(
                "The README's findings table differs from the committed reports: run python results/findings_table.py."
            )
        return
    if new != text:
        README.write_text(new)
        print("Rewrote the README's findings table from the reports.")


if __name__ == "__main__":
    main()
