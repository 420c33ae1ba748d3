"""Reports that travel: a folder data set is named by its folder's name, two different folders of the same
name are never merged, and nothing committed under results/ names a machine's folders."""

import json
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from nodekd_cli import data
from tests.test_convergence import document
from tests.test_report import student, write_run

REPOSITORY = Path(__file__).resolve().parent.parent
# An absolute POSIX path inside text: a '/' that starts a token, then at least two path parts (so '8/255', a URL's
# '//host/' and 'runs/x' do not match), or a Windows drive path.
ABSOLUTE = re.compile(r"""(?:^|[\s"'(=,:\[])(/[\w.-]+(?:/[\w.-]+)+|[A-Za-z]:\\[\w.-]+)""")


def test_a_folder_data_set_is_named_by_its_folder():
    names = data.portable_names({"folder:/home/a/cifar10-jpeg", "folder:/home/a/cifar10-jpeg/", "digits"})
    assert names == {
        "folder:/home/a/cifar10-jpeg": "folder:cifar10-jpeg",
        "folder:/home/a/cifar10-jpeg/": "folder:cifar10-jpeg",  # the same folder, written otherwise
        "digits": "digits",
    }


def test_two_folders_of_the_same_name_are_told_apart_by_their_paths():
    import hashlib

    names = data.portable_names({"folder:/home/a/cifar10-jpeg", "folder:/scratch/b/cifar10-jpeg", "folder:/x/svhn"})
    digest = {
        p: hashlib.sha256(p.encode()).hexdigest()[:6] for p in ("/home/a/cifar10-jpeg", "/scratch/b/cifar10-jpeg")
    }
    assert names == {
        "folder:/home/a/cifar10-jpeg": f"folder:cifar10-jpeg@{digest['/home/a/cifar10-jpeg']}",
        "folder:/scratch/b/cifar10-jpeg": f"folder:cifar10-jpeg@{digest['/scratch/b/cifar10-jpeg']}",
        "folder:/x/svhn": "folder:svhn",
    }


def test_the_report_names_folder_data_sets_portably_and_keeps_different_folders_apart(tmp_path):
    one, other = str(tmp_path / "a" / "cifar10-jpeg"), str(tmp_path / "b" / "cifar10-jpeg")
    write_run(tmp_path / "runs" / "r1", student(f"folder:{one}", 1), 0.5)
    write_run(tmp_path / "runs" / "r2", student(f"folder:{one}", 100), 0.4)
    found = document(tmp_path / "runs")
    assert _folder_rows(found) == {"folder:cifar10-jpeg"}
    assert one not in json.dumps([found[k] for k in ("comparisons", "claims", "runs")])
    assert f"--dataset folder:{one} " in " ".join(found["missing"])  # a command must find the data again
    write_run(tmp_path / "runs" / "r3", student(f"folder:{other}", 1), 0.3)
    rows = _folder_rows(document(tmp_path / "runs"))
    assert len(rows) == 2 and all(row.startswith("folder:cifar10-jpeg@") for row in rows)


def _folder_rows(document):
    cells = document["tables"]["table1"]["cells"]
    return {c["dataset"] for c in cells if c["dataset"].startswith("folder:")}


def test_light_files_record_runs_by_their_study_and_data_by_the_repository(tmp_path):
    run = tmp_path / "study" / "e5" / "node"
    (run / "attacks").mkdir(parents=True)
    config = {"dataset": f"folder:{tmp_path}/data/cifar10-jpeg", "teacher": str(tmp_path / "study" / "t"), "t1": 1}
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    (run / "attacks" / "pgd.json").write_text(json.dumps({"eps": [0]}))
    (run / "model.keras").write_text("weights")
    repository = tmp_path / "repository"
    repository.mkdir()
    script = REPOSITORY / "results" / "light_files.py"
    subprocess.run([sys.executable, script, str(tmp_path / "study"), "out"], cwd=repository, check=True)
    copied = repository / "out" / "e5" / "node"
    assert sorted(p.name for p in copied.rglob("*") if p.is_file()) == ["config.json", "metrics.json", "pgd.json"]
    assert json.loads((copied / "config.json").read_text()) == {
        "dataset": "folder:../data/cifar10-jpeg",
        "teacher": "t",  # a run inside the study's root: named as under it
        "t1": 1,
    }


def _texts(path):
    """The text of a file under results/: a PNG's text chunks (its metadata), any other file's content."""
    if path.suffix == ".png":
        with Image.open(path) as image:
            return [f"{k}: {v}" for k, v in image.text.items()] + [path.name]
    return [path.read_text(errors="replace"), path.name]


def test_no_file_under_results_holds_an_absolute_path():
    found = []
    for path in sorted((REPOSITORY / "results").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            for text in _texts(path):
                found += [f"{path.relative_to(REPOSITORY)}: {m}" for m in ABSOLUTE.findall(text)]
    assert not found, found[:10]


def test_the_absolute_path_pattern_finds_what_it_must_and_nothing_else():
    assert ABSOLUTE.findall('"dataset": "folder:/work/data/x"') == ["/work/data/x"]
    assert ABSOLUTE.findall("cd /home/me/nodekd && x") == ["/home/me/nodekd"]
    assert ABSOLUTE.findall(r"C:\Users") == ["C:\\Users"]
    assert not ABSOLUTE.findall("eps 8/255, runs/node-t1_1, https://github.com/a/b, ../data/cifar10-jpeg")
