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
