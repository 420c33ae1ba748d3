"""The docs hold what the code says: the command reference is the one the Typer app generates, the README
stays a front page, and every file the README or the docs link to exists."""

import re
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
GENERATE = [sys.executable, "-m", "typer", "nodekd_cli.app", "utils", "docs", "--name", "nodekd", "--output"]


def test_the_command_reference_is_what_the_code_generates(tmp_path):
    generated = tmp_path / "reference.md"
    subprocess.run([*GENERATE, str(generated)], cwd=REPOSITORY, check=True, capture_output=True)
    committed = (REPOSITORY / "docs" / "reference.md").read_text()
    assert committed == generated.read_text(), (
        "docs/reference.md differs from what the code generates; run: typer nodekd_cli.app utils docs --name nodekd "
        "--output docs/reference.md"
    )


def test_the_readme_is_a_front_page_with_the_two_quick_start_commands():
    readme = (REPOSITORY / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in start.splitlines() if line.startswith("    python3.11 -m venv .venv")]
    assert len(commands) == 2
    assert commands[0].endswith("nodekd reproduce --preset quick") and commands[1].endswith("python -m pytest")


def test_every_file_the_readme_and_the_docs_link_to_exists():
    missing = []
    for page in [REPOSITORY / "README.md", REPOSITORY / "CHANGELOG.md", *sorted((REPOSITORY / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPOSITORY)} -> {target}")
    assert not missing, missing


# Words that tell how the project was worked on rather than what the tool does: issue numbers, sessions, machines
# lent for a while, the tools of the people who built it. History goes to CHANGELOG.md, in a user's terms.
BANNED = re.compile(
    r"\b[Ii]ssues? ?\d+|\b[Tt]he issue\b|\bissue's\b|\b[Ss]essions?\b|\blent\b|\bdevice tool\b|\bdevice call\b"
    r"|files_at|\bcarry=\["
)


def _pages():
    pages = [REPOSITORY / "README.md", REPOSITORY / "CHANGELOG.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
    # The benchmarks' and the studies' own pages and records (a run's files are the tool's output, not prose).
    for folder in ("bench", "results"):
        pages += [
            path
            for path in sorted((REPOSITORY / folder).rglob("*"))
            if path.suffix in {".md", ".txt", ".sh"} and "runs" not in path.relative_to(REPOSITORY).parts
        ]
    return [page for page in pages if page.name != "reference.md"]  # generated from the code's help


def test_no_page_tells_how_the_tool_was_built():
    found = [
        f"{page.relative_to(REPOSITORY)}:{number}: {line.strip()[:80]}"
        for page in _pages()
        for number, line in enumerate(page.read_text().splitlines(), 1)
        if BANNED.search(line)
    ]
    assert not found, found


def test_no_file_name_tells_how_the_tool_was_built():
    named = [
        str(path.relative_to(REPOSITORY))
        for folder in ("bench", "results", "docs", "tests")
        for path in (REPOSITORY / folder).rglob("*")
        if BANNED.search(path.name.replace("_", " "))
    ]
    assert not named, named


def test_every_benchmark_record_is_listed_with_its_command():
    index = (REPOSITORY / "bench" / "results" / "README.md").read_text()
    unlisted = [
        path.name
        for path in sorted((REPOSITORY / "bench" / "results").iterdir())
        if path.name != "README.md" and f"`{path.name}`" not in index
    ]
    assert not unlisted, unlisted


def test_the_banned_words_are_found_where_they_are_and_nowhere_else():
    assert (
        BANNED.search("### Issue 12 on the CPU")
        and BANNED.search("issue12 cpu.txt")
        and BANNED.search("no GPU was lent to this work")
    )
    assert BANNED.search("in the fourth session") and BANNED.search("the issue sized the study")
    assert not BANNED.search("a check that can see masking; the test set's issues; lentils; possession")


CLAIM_ROWS = {
    "distillation raises accuracy": "kd_accuracy",
    "distillation raises robustness": "kd_robustness",
    "robustness grows with t1": "t1_robustness",
    "not gradient masking": "no_masking",
}


def test_the_readmes_findings_are_the_committed_reports_verdicts():
    import json

    readme = (REPOSITORY / "README.md").read_text()
    table = readme.split("<!-- findings table", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    header = table[0]
    reports = re.findall(r"\]\((results/[^)]+/report/report\.md)\)", header)
    assert len(reports) == 3, header
    verdicts = [
        {c["claim"]: c["verdict"] for c in json.loads((REPOSITORY / r).with_suffix(".json").read_text())["claims"]}
        for r in reports
    ]
    rows = [line for line in table[2:] if line.startswith("| ")]
    assert len(rows) == len(CLAIM_ROWS)
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        key = CLAIM_ROWS[cells[0]]
        shown = [re.search(r"\*\*(.+?)\*\*", cell).group(1) for cell in cells[1:]]
        assert shown == [found[key] for found in verdicts], (cells[0], shown)


def test_the_findings_table_script_restores_a_stale_verdict():
    """results/findings_table.py (every report stage runs it) puts each report's verdict back into a README whose
    table quotes an older one, and leaves everything else as it was."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("findings_table", REPOSITORY / "results" / "findings_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (REPOSITORY / "README.md").read_text()
    assert module.ROWS == CLAIM_ROWS
    row = next(line for line in readme.splitlines() if line.startswith("| robustness grows with t1 |"))
    stale = readme.replace(row, "| robustness grows with t1 | **supported** | **supported** | **refuted** |")
    assert stale != readme
    assert module.rewritten(stale, REPOSITORY) == readme


QUICK_ROWS = {
    "teacher ResNet20": "resnet20-digits",
    "NODEs(1)": "node-digits-t1_1",
    "NODEs(100)": "node-digits-t1_100",
    "NODEs(1) + KD, T = 3": "kd-resnet20-digits-T3-t1_1",
    "NODEs(100) + KD, T = 3": "kd-resnet20-digits-T3-t1_100",
}


def test_the_readmes_quick_study_table_is_the_committed_quick_study():
    import json

    readme = (REPOSITORY / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| ")}
    report = json.loads((REPOSITORY / "results" / "quick" / "report" / "report.json").read_text())
    runs = {Path(row["folder"]).name: row for row in report["runs"]}
    for label, folder in QUICK_ROWS.items():
        cells = [cell.strip() for cell in rows[label].strip("|").split("|")]
        run = runs[folder]
        assert cells[1] == f"{run['accuracy']:.2f}%", label
        pgd = run["attacks"]["pgd"]
        mean = 100 * sum(a for e, a in zip(pgd["eps"], pgd["accuracy"]) if 4 <= e <= 20) / 5
        assert cells[3] == f"{mean:.2f}%", label
        if run["kind"] == "student":
            assert cells[2] == run["convergence"].replace(" from its half-budget twin", ""), label
