"""The Python API page (docs/api.md) runs as it is: its examples, in order, in one process from an empty folder."""

import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_api_pages_examples_run_in_order(tmp_path, monkeypatch, capsys):
    page = (REPOSITORY / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) == 5
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)  # noqa: S102  (the page's own examples)
    printed = capsys.readouterr().out
    assert "(2, 10)" in printed and "% on 360 test images" in printed
    assert "{0: " in printed and "Knowledge distillation raises accuracy -> undecided" in printed
    assert (tmp_path / "runs" / "kd-digits" / "attacks" / "pgd.json").is_file()
