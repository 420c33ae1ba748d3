"""`nodekd report`: run folders written by the test land in the right cells, beside the paper's values."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nodekd_cli.app import app
from nodekd_cli.students import DEFAULT_DYNAMICS

SOLVER = {"method": "dopri5", "rtol": 1e-3, "atol": 1e-3, "step_size": None, "max_num_steps": None, "adjoint": False}
EPS = [0, 4, 8, 12, 16, 20]


def write_run(folder, config, accuracy, attacks=None, check=None, finished=True):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    if finished:
        (folder / "metrics.json").write_text(
            json.dumps({"test_accuracy": accuracy, "params": 1234, "train_seconds": 5.0, "test_nfe": 20.0})
        )
    for name, values in (attacks or {}).items():
        (folder / "attacks").mkdir(exist_ok=True)
        result = {"attack": name, "eps": EPS, "accuracy": values, "steps": [0] * len(EPS), "n": 100}
        (folder / "attacks" / f"{name}.json").write_text(json.dumps(result))
    if check is not None:
        (folder / "attacks" / "check.json").write_text(json.dumps(check))


def teacher(model, dataset):
    return {"kind": "teacher", "model": model, "dataset": dataset, "seed": 0}


def student(dataset, t1, *, teacher_model=None, T=None, lam=None, seed=0, solver=SOLVER, dynamics=None):
    distilled = teacher_model is not None
    config = {
        "kind": "student",
        "model": "node",
        "dataset": dataset,
        "t1": float(t1),
        "T": T,
        "lambda": (0.9 if lam is None else lam) if distilled else 0.0,
        "teacher": f"/somewhere/{teacher_model}" if distilled else None,
        "teacher_model": teacher_model,
        "solver": solver,
        "seed": seed,
        "dynamics": dynamics or DEFAULT_DYNAMICS,
    }
    if dynamics == "before the choice":
        del config["dynamics"]  # a run made before the dynamics were a choice: odenet's design
    return config


@pytest.fixture
def study(tmp_path):
    """A small study: folder names deliberately say nothing, cells come from the configs."""
    root = tmp_path / "runs"
    pgd_teacher = [0.97, 0.9, 0.8, 0.7, 0.6, 0.5]
    pgd_node = [0.9, 0.6, 0.4, 0.3, 0.2, 0.1]
    write_run(root / "a", teacher("resnet20", "svhn"), 0.9)
    write_run(root / "b", teacher("resnet20", "digits"), 0.95, {"pgd": pgd_teacher, "mifgsm": pgd_teacher})
    write_run(root / "c", student("svhn", 1, seed=0), 0.80)
    write_run(root / "d", student("svhn", 1, seed=1), 0.90)
    write_run(root / "e", student("svhn", 1, teacher_model="resnet32", T=3.0), 0.93)
    rk4 = {**SOLVER, "method": "rk4", "step_size": 0.1}
    write_run(root / "f", student("svhn", 1, teacher_model="resnet32", T=3.0, solver=rk4), 0.10)
    write_run(root / "g", student("svhn", 1, teacher_model="resnet32", T=3.0, lam=0.5), 0.20)
    write_run(root / "j", student("svhn", 1, teacher_model="resnet32", T=3.0, dynamics="before the choice"), 0.30)
    check = {"masking": True, "checks": [{"check": "x", "passed": False}]}
    write_run(root / "h", student("digits", 100), 0.92, {"pgd": pgd_node, "mifgsm": pgd_node}, check)
    write_run(root / "nested" / "i", student("digits", 1, teacher_model="resnet20", T=3.0), 0.96, {"pgd": pgd_node})
    write_run(root / "unfinished", student("digits", 1), 0.5, finished=False)
    (root / "corrupt").mkdir()
    (root / "corrupt" / "config.json").write_text("{not json")
    (root / "stray").mkdir()
    return root


def binomial_half(*arms):
    """The half-width of the 95% interval of a difference of accuracies measured on separate test images: each arm's
    binomial variance (points^2) over its images, t with Welch-Satterthwaite's degrees of freedom; `arms` are
    (accuracy, images) pairs."""
    from scipy import stats

    terms = [(1e4 * p * (1 - p) / n, n - 1) for p, n in arms]
    variance = sum(v for v, _ in terms)
    df = variance**2 / sum(v**2 / f for v, f in terms)
    return stats.t.ppf(0.975, df) * variance**0.5


def compared(root):
    """The report's comparisons over `root` as its JSON document gives them."""
    from nodekd_cli import report

    return json.loads(report.to_json(report.build(root)))["comparisons"]


def invoke(*args):
    result = CliRunner().invoke(app, ["report", *map(str, args)], env={"COLUMNS": "250"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def cells(document, table):
    found = {}
    for cell in document["tables"][table]["cells"]:
        row = tuple(cell[f] for f in document["tables"][table]["row_fields"])
        found[row, cell["column"]] = cell
    return found


def test_json_puts_each_run_in_its_cell_beside_the_paper(study):
    result = invoke("--runs", study, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    table1 = cells(document, "table1")
    assert table1[("svhn",), "resnet20"]["value"] == pytest.approx(90.0)
    assert table1[("svhn",), "resnet20"]["paper"] == 91.68
    assert table1[("svhn",), "resnet20"]["difference"] == pytest.approx(90.0 - 91.68)
    # Two seeds of one cell: their mean and their count.
    assert table1[("svhn",), "node_t1_1"]["value"] == pytest.approx(85.0)
    assert table1[("svhn",), "node_t1_1"]["runs"] == 2
    assert table1[("svhn",), "node_t1_1"]["paper"] == 88.36
    assert table1[("digits",), "node_t1_100"]["value"] == pytest.approx(92.0)  # all test images
    assert table1[("digits",), "node_t1_100"]["paper"] is None
    # Every cell is present, value or null: 3 data sets x (2 NODEs + 5 ResNets).
    assert len(table1) == 21
    assert table1[("cifar10",), "resnet56"] == {
        "dataset": "cifar10",
        "column": "resnet56",
        "value": None,
        "runs": 0,
        "paper": 89.95,
        "difference": None,
        "folders": [],
    }
    table2 = cells(document, "table2")
    # The rk4, the lambda 0.5 and the odenet-dynamics students are not the setup of the paper's cells: only the
    # dopri5, lambda 0.9 one of nodekd's default dynamics counts.
    assert table2[("svhn", 3.0), "resnet32"]["value"] == pytest.approx(93.0)
    assert table2[("svhn", 3.0), "resnet32"]["runs"] == 1
    assert table2[("svhn", 3.0), "resnet32"]["paper"] == 92.89
    assert table2[("svhn", 10.0), "resnet110"]["paper"] == 93.14
    assert table2[("cifar10", 3.0), "resnet20"]["paper"] is None  # the paper's unattributed values
    assert table2[("digits", 3.0), "resnet20"]["value"] == pytest.approx(96.0)
    assert table2[("digits", 3.0), "resnet20"]["folders"] == [str(study / "nested" / "i")]
    table3 = cells(document, "table3")
    assert table3[("cifar10", 500.0), "12"]["paper"] == 23.6
    assert table3[("cifar10", 500.0), "12"]["value"] is None
    assert table3[("digits", 100.0), "clean"]["value"] == pytest.approx(90.0)  # PGD's eps 0: the attacked images
    assert [table3[("digits", 100.0), str(e)]["value"] for e in (8, 12, 16, 20)] == pytest.approx([40, 30, 20, 10])
    assert table3[("svhn", 1.0), "8"]["value"] is None  # the svhn baselines have no PGD sweep
    assert any("nodekd attack pgd --run" in c and str(study / "c") in c for c in document["missing"])
    assert "nodekd reproduce --preset paper --datasets cifar10" in document["missing"]
    runs = {row["folder"]: row for row in document["runs"]}
    assert len(runs) == 10
    assert runs[str(study / "j")]["in_paper_setup"] is False and runs[str(study / "j")]["dynamics"] == "odenet"
    assert runs[str(study / "e")]["dynamics"] == "none/pre/horizon"
    assert runs[str(study / "h")]["check"] == "possible masking"
    assert runs[str(study / "f")]["in_paper_setup"] is False
    skipped = {entry["path"]: entry["reason"] for entry in document["skipped"]}
    assert set(skipped) == {str(study / "unfinished"), str(study / "corrupt"), str(study / "stray")}
    assert "unfinished" in skipped[str(study / "unfinished")]
    assert "unreadable" in skipped[str(study / "corrupt")]
    # Skipped folders are named on stderr, one line each, so that stdout stays one JSON document.
    assert f"Skipped {study / 'corrupt'}: config.json is unreadable." in result.stderr
    series = {(s["dataset"], s["attack"], s["family"]): s for s in document["figure1"]["series"]}
    assert set(series) == {
        ("digits", "pgd", "ResNet20"),
        ("digits", "mifgsm", "ResNet20"),
        ("digits", "pgd", "NODEs(100)"),
        ("digits", "mifgsm", "NODEs(100)"),
        ("digits", "pgd", "NODEs(1) + KD"),
    }
    assert series["digits", "pgd", "NODEs(100)"]["accuracy"] == pytest.approx([90, 60, 40, 30, 20, 10])


def test_figure_has_a_panel_per_attack_and_a_line_per_family(study):
    out = study.parent / "report"
    result = invoke("--runs", study, "--out", out)
    assert result.exit_code == 0, result.output
    path = out / "figure1-digits.png"
    assert str(path) in " ".join(result.stdout.split())
    image = Image.open(path)
    assert image.format == "PNG"
    description = json.loads(image.text["Description"])
    assert [p["title"] for p in description["panels"]] == ["PGD on digits", "MI-FGSM on digits"]
    assert [line["family"] for line in description["panels"][0]["lines"]] == ["ResNet20", "NODEs(1) + KD", "NODEs(100)"]
    assert [line["family"] for line in description["panels"][1]["lines"]] == ["ResNet20", "NODEs(100)"]
    # Each line is drawn in its own panel (left half PGD, right half MI-FGSM): its colour is in those pixels.
    pixels = np.asarray(image.convert("RGB"))
    half = pixels.shape[1] // 2
    for panel, region in zip(description["panels"], (pixels[:, :half], pixels[:, half:])):
        for line in panel["lines"]:
            rgb = tuple(int(line["color"][i : i + 2], 16) for i in (1, 3, 5))
            assert (region == rgb).all(axis=-1).sum() > 50, (panel["title"], line)
    kd_orange = tuple(int("ff7f0e"[i : i + 2], 16) for i in (0, 2, 4))
    assert (pixels[:, half:] == kd_orange).all(axis=-1).sum() == 0  # no KD line in the MI-FGSM panel


def test_autoattack_is_a_marker_in_figure1_and_named_in_the_run_table(tmp_path):
    root = tmp_path / "runs"
    write_run(root / "n", student("digits", 1), 0.9, {"pgd": [0.9, 0.6, 0.4, 0.3, 0.2, 0.1]})
    result = {"attack": "autoattack", "eps": [0, 8], "accuracy": [0.9, 0.12], "n": 100, "components": []}
    (root / "n" / "attacks" / "autoattack.json").write_text(json.dumps(result))
    out = tmp_path / "report"
    shown = invoke("--runs", root, "--out", out)
    assert "AutoAttack 8/255: 12.00%" in " ".join(shown.stdout.replace("│", " ").split())
    description = json.loads(Image.open(out / "figure1-digits.png").text["Description"])
    assert [p["attack"] for p in description["panels"]] == ["pgd"]  # no panel of its own
    assert description["panels"][0]["markers"] == [
        {"family": "NODEs(1)", "label": "NODEs(1), AutoAttack at 8/255", "color": "#1f77b4", "eps": 8}
    ]
    document = json.loads(invoke("--runs", root, "--format", "json").stdout)
    assert document["figure1"]["markers"] == [
        {"dataset": "digits", "family": "NODEs(1)", "eps": 8, "accuracy": pytest.approx(12.0), "runs": 1}
    ]


def test_markdown_and_csv(study):
    result = invoke("--runs", study, "--format", "markdown")
    assert result.exit_code == 0
    assert "85.00 (2 runs) / 88.36 (-3.36)" in result.stdout
    assert "| svhn | 3 | - / 93.46 | 93.00 / 92.89 (+0.11) |" in result.stdout
    out = study.parent / "csv"
    result = invoke("--runs", study, "--format", "csv", "--out", out)
    assert result.exit_code == 0
    with open(out / "table1.csv", newline="") as file:
        rows = {(r["dataset"], r["column"]): r for r in csv.DictReader(file)}
    assert float(rows["svhn", "node_t1_1"]["value"]) == pytest.approx(85.0)
    assert rows["svhn", "node_t1_1"]["runs"] == "2" and rows["svhn", "node_t1_1"]["paper"] == "88.36"
    assert {p.name for p in out.iterdir()} >= {"table2.csv", "table3.csv", "runs.csv", "figure1.csv"}


def test_rich_table_shows_both_values(study):
    result = invoke("--runs", study)
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "85.00 x2" in text and "paper 88.36 -3.36" in text
    assert "masking?" in text
    assert "To fill the empty cells:" in text


def test_every_table_reads_at_80_columns(study):
    """At 80 columns no header or cell is cut: Table 1 turns a row per column, the run table keeps its main columns
    and folds long names, and runs are named relative to --runs."""
    result = CliRunner().invoke(app, ["report", "--runs", str(study)], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "…" not in result.stdout
    lines = result.stdout.splitlines()
    tables = [line for line in lines if line[:1] in "┏┃│┡├└"]
    assert tables and max(len(line) for line in tables) <= 80
    assert "│ NODEs(100) │" in result.stdout  # Table 1, transposed
    assert "│ nested/i " in result.stdout and all(study.parent.name not in line for line in tables)
    assert "85.00 x2" in result.stdout and "paper 88.36 -3.36" in result.stdout
    assert "The paper's claims" in result.stdout


def test_empty_folder_says_what_to_run_first(tmp_path):
    result = invoke("--runs", tmp_path)
    assert result.exit_code == 1
    assert "nodekd reproduce --preset quick" in " ".join(result.stderr.split())
    result = invoke("--runs", tmp_path / "missing")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    result = invoke("--runs", tmp_path, "--format", "xml")
    assert result.exit_code == 1 and "Unknown format 'xml'" in result.stderr


def test_an_unreadable_attack_result_is_skipped_and_its_run_kept(tmp_path):
    root = tmp_path / "runs"
    write_run(root / "t", teacher("resnet20", "digits"), 0.95, {"pgd": [0.97, 0.9, 0.8, 0.7, 0.6, 0.5]})
    (root / "t" / "attacks" / "mifgsm.json").write_text('{"eps": [0, 4], "accuracy": [0.9]}')  # lengths differ
    result = invoke("--runs", root, "--format", "json")
    document = json.loads(result.stdout)
    assert document["skipped"] == [
        {
            "path": str(root / "t" / "attacks" / "mifgsm.json"),
            "reason": "unreadable attack result (mifgsm.json: accuracy and correct need one entry per eps)",
        }
    ]
    assert [(s["attack"], s["family"]) for s in document["figure1"]["series"]] == [("pgd", "ResNet20")]
    assert cells(document, "table1")[("digits",), "resnet20"]["value"] == pytest.approx(95.0)


def test_comparisons_give_differences_intervals_and_budgets_computed_by_hand(tmp_path):

    root = tmp_path / "runs"

    def run(folder, config, accuracy, pgd=None, **budget):
        config = {**config, "epochs": 10, "batch_size": 32, "channels": 32, "optimizer": "adam", "lr": 1e-3, **budget}
        write_run(root / folder, config, accuracy, {"pgd": pgd} if pgd else None)
        metrics = json.loads((root / folder / "metrics.json").read_text())
        (root / folder / "metrics.json").write_text(json.dumps({**metrics, "test_images": 400}))

    run("teacher", teacher("resnet20", "digits"), 0.90)
    run("alone1", student("digits", 1), 0.95, [0.95, 0.5, 0.3, 0.2, 0.1, 0.0])
    run("alone100", student("digits", 100), 0.95, [0.95, 0.6, 0.4, 0.3, 0.2, 0.1])
    run("kd1", student("digits", 1, teacher_model="resnet20", T=3.0), 0.80, optimizer="sgd", lr=0.05)
    run("kd100", student("digits", 100, teacher_model="resnet20", T=3.0), 0.95, epochs=5)
    found = {(c["first"]["label"], c["second"]["label"], c["measure"]): c for c in compared(root)}
    kd = found["NODEs(1) + KD (ResNet20, T = 3)", "NODEs(1)", "clean accuracy"]
    # 80% vs 95% on 400 images each: sqrt(1e4 (0.8 * 0.2 / 400 + 0.95 * 0.05 / 400)) = 2.278 points, t at about 650
    # degrees of freedom. The paper's pairing: SGD distilled against Adam alone.
    half = binomial_half((0.8, 400), (0.95, 400))
    assert kd["difference"] == pytest.approx(-15.0) and kd["pair"] == "kd (paper)"
    assert kd["interval"] == pytest.approx([-15 - half, -15 + half])
    assert kd["verdict"] == "lower" and kd["same_budget"] is True
    assert "optimizer sgd (lr 0.05) vs adam (lr 0.001)" in kd["text"]
    later = found["NODEs(100) + KD (ResNet20, T = 3)", "NODEs(100)", "clean accuracy"]
    assert later["same_budget"] is False and "budgets differ: epochs 5 vs 10" in later["text"]
    assert later["verdict"] == "within noise"
    weaker = found["ResNet20", "NODEs(1)", "clean accuracy"]
    # The teacher (90%) is weaker than the student trained alone (95%): sqrt(1e4 (.09 / 400 + .0475 / 400)) = 1.854.
    half = binomial_half((0.9, 400), (0.95, 400))
    assert weaker["difference"] == pytest.approx(-5.0) and weaker["verdict"] == "lower"
    assert weaker["interval"] == pytest.approx([-5 - half, -5 + half])
    robust = found["NODEs(100)", "NODEs(1)", "PGD accuracy, mean over eps 4, 8, 12, 16, 20"]
    # Means over eps 4..20: 32% vs 22% on 100 images: sqrt(1e4 (.32 * .68 / 100 + .22 * .78 / 100)) = 6.24 points.
    half = binomial_half((0.32, 100), (0.22, 100))
    assert robust["difference"] == pytest.approx(10.0) and robust["primary"] is True
    assert robust["interval"] == pytest.approx([10 - half, 10 + half])
    assert robust["verdict"] == "within noise"
    assert ("ResNet20", "NODEs(1)", "PGD accuracy, mean over eps 4, 8, 12, 16, 20") not in found  # no teacher attack
    assert ("NODEs(1) + KD (ResNet20, T = 3)", "NODEs(1)", "PGD accuracy, mean over eps 4, 8, 12, 16, 20") not in found
    markdown = invoke("--runs", root, "--format", "markdown").stdout
    assert "### What the runs show" in markdown and kd["text"] in markdown
    assert weaker["text"] in invoke("--runs", root).stdout.replace("\n  ", " ")
    invoke("--runs", root, "--format", "csv", "--out", tmp_path / "csv")
    with open(tmp_path / "csv" / "comparisons.csv", newline="") as file:
        rows = {(r["first"], r["second"], r["measure"]): r for r in csv.DictReader(file)}
    row = rows["NODEs(1) + KD (ResNet20, T = 3)", "NODEs(1)", "clean accuracy"]
    interval = (float(row["low"]), float(row["high"]))
    assert interval == pytest.approx(tuple(kd["interval"])) and row["verdict"] == "lower"


def test_students_of_another_precision_are_compared_among_themselves_and_kept_out_of_the_papers_tables(tmp_path):
    from nodekd_cli import report

    root = tmp_path / "runs"

    def run(folder, config, accuracy, precision="float32"):
        config = {**config, "epochs": 10, "batch_size": 32, "channels": 32, "optimizer": "adam", "lr": 1e-3}
        write_run(root / folder, {**config, "precision": precision}, accuracy)
        metrics = json.loads((root / folder / "metrics.json").read_text())
        (root / folder / "metrics.json").write_text(json.dumps({**metrics, "test_images": 400}))

    run("teacher", teacher("resnet20", "digits"), 0.95, "mixed_bfloat16")  # trained so, saved in float32
    run("alone1", student("digits", 1), 0.90)
    run("alone100", student("digits", 100), 0.80)
    run("mixed1", student("digits", 1), 0.50, "mixed_bfloat16")  # averaged with alone1, it would read 70%
    run("mixed100", student("digits", 100), 0.60, "mixed_bfloat16")
    built = report.build(root)
    found = {(c["first"]["label"], c["second"]["label"]): c for c in compared(root)}
    assert found["NODEs(100)", "NODEs(1)"]["difference"] == pytest.approx(-10.0)
    mixed = found["NODEs(100), mixed_bfloat16", "NODEs(1), mixed_bfloat16"]
    assert mixed["difference"] == pytest.approx(10.0)
    assert len([pair for pair in found if pair[0] != "ResNet20"]) == 2  # no pair across precisions
    runs = report.collect(root)[0]
    in_tables = sorted(r.folder.name for r in runs if report.in_paper_setup(r))
    assert in_tables == ["alone1", "alone100", "teacher"]
    dynamics = {Path(row["folder"]).name: row["dynamics"] for row in report.run_rows(built)}
    assert dynamics["mixed1"] == "none/pre/horizon, mixed_bfloat16" and dynamics["alone1"] == "none/pre/horizon"


def test_monotone_sweeps_are_never_averaged_or_compared_with_the_papers_independent_ones(tmp_path):
    from nodekd_cli import report

    root = tmp_path / "runs"

    def run(folder, config, **sweeps):
        config = {**config, "epochs": 10, "batch_size": 32, "channels": 32, "optimizer": "adam", "lr": 1e-3}
        write_run(root / folder, config, 0.95)
        (root / folder / "attacks").mkdir()
        for attack, (sweep, accuracy) in sweeps.items():
            result = {"settings": {"sweep": sweep}, "eps": EPS, "accuracy": accuracy, "steps": [0] * 6, "n": 100}
            (root / folder / "attacks" / f"{attack}.json").write_text(json.dumps(result))

    run("a", student("digits", 1), pgd=("independent", [0.95, 0.5, 0.3, 0.2, 0.1, 0.0]))
    run("b", student("digits", 1, seed=1), pgd=("monotone", [0.95, 0.3, 0.1, 0.1, 0.0, 0.0]))
    run("c", student("digits", 100), pgd=("monotone", [0.95, 0.6, 0.4, 0.3, 0.2, 0.1]))
    run("d", student("digits", 100, seed=1), pgd=("monotone", [0.95, 0.4, 0.2, 0.1, 0.0, 0.0]))
    built = report.build(root)
    series = {(s["attack"], s["family"]): s for s in built.series}
    assert series["pgd", "NODEs(1)"]["runs"] == 1 and series["pgd", "NODEs(1)"]["accuracy"][2] == pytest.approx(30)
    assert series["pgd (monotone)", "NODEs(1)"]["accuracy"][2] == pytest.approx(10)  # not (30 + 10) / 2
    assert series["pgd (monotone)", "NODEs(100)"]["runs"] == 2
    assert series["pgd (monotone)", "NODEs(100)"]["accuracy"][2] == pytest.approx(30)  # (40 + 20) / 2
    table3 = {(row, column): cell for (row, column), cell in built.tables[2].cells.items()}
    assert table3[("digits", 1.0), "8"].value == pytest.approx(30)  # the paper's independent sweep only
    assert not table3[("digits", 100.0), "8"].values
    assert "3 of these runs have a monotone PGD sweep only" in " ".join(built.tables[2].notes)  # b, c and d
    # NODEs(1) has one independent and one monotone sweep: no measure covers both seeds, so no PGD comparison; the
    # monotone NODEs(100) are never set against the independent NODEs(1).
    measures = {c["measure"] for c in compared(root)}
    assert measures == {"clean accuracy"}
    from nodekd_cli.attacks import title

    assert title("pgd (monotone)") == "PGD (monotone sweep)"
    rows = {Path(row["folder"]).name: row for row in report.run_rows(built)}
    assert list(rows["c"]["attacks"]) == ["pgd (monotone)"]
    # Both arms swept monotonically: compared on the seed both ran (1), means over eps 4..20: NODEs(1) 10%, NODEs(100)
    # 14% (its seed 0, 32%, has no partner).
    (root / "a" / "attacks" / "pgd.json").unlink()
    (root / "a" / "metrics.json").unlink()
    found = {c["measure"]: c for c in compared(root)}
    robust = found["PGD (monotone sweep) accuracy, mean over eps 4, 8, 12, 16, 20"]
    assert robust["difference"] == pytest.approx(14.0 - 10.0) and robust["seeds"] == 1
    # A run keeps both sweeps side by side (`attacks.result_name`): pgd.json and pgd.monotone.json.
    result = {"attack": "pgd", "settings": {"sweep": "independent"}, "eps": EPS, "accuracy": [0.95] * 6, "n": 100}
    (root / "c" / "attacks" / "pgd.json").rename(root / "c" / "attacks" / "pgd.monotone.json")  # c's monotone sweep
    (root / "c" / "attacks" / "pgd.json").write_text(json.dumps(result))
    both = next(r for r in report.collect(root)[0] if r.folder.name == "c")
    assert sorted(report.sweeps(both)) == ["pgd", "pgd (monotone)"]


def test_claim_verdicts_follow_from_comparisons_and_checks_computed_by_hand(tmp_path):
    from nodekd_cli import report

    root = tmp_path / "runs"

    def run(folder, config, accuracy, pgd, check=None, **budget):
        config = {**config, "epochs": 10, "batch_size": 32, "channels": 32, "optimizer": "adam", "lr": 1e-3, **budget}
        write_run(root / folder, config, accuracy, {"pgd": pgd}, check)
        metrics = json.loads((root / folder / "metrics.json").read_text())
        (root / folder / "metrics.json").write_text(json.dumps({**metrics, "test_images": 400}))

    passed = {"reference": 0.2, "checks": [{"check": "transfer", "passed": True}], "masking": False}
    flagged = {"reference": 0.5, "checks": [{"check": "transfer", "passed": False}], "masking": True}
    kd = {"teacher_model": "resnet20", "T": 3.0}
    run("alone1", student("digits", 1), 0.90, [0.9, 0.2, 0.2, 0.2, 0.2, 0.2], passed)
    run("alone100", student("digits", 100), 0.90, [0.9, 0.5, 0.5, 0.5, 0.5, 0.5], flagged)
    run("kd1", student("digits", 1, **kd), 0.95, [0.95, 0.0, 0.0, 0.0, 0.0, 0.0], optimizer="sgd", lr=0.05)
    run("kd1-adam", student("digits", 1, **kd), 0.86, [0.86, 0.2, 0.2, 0.2, 0.2, 0.2])
    run("svhn-alone1", student("svhn", 1), 0.90, [0.9] * 6)
    run("svhn-alone1-seed1", student("svhn", 1, seed=1), 0.94, [0.94] * 6)
    run("svhn-kd1", student("svhn", 1, **kd, seed=2), 0.95, [0.95] * 6, optimizer="sgd", lr=0.05)  # no seed shared
    built = report.build(root)
    document = json.loads(report.to_json(built))
    kinds = ("kd", "kd (paper)")
    found = {
        (c["dataset"], c["first"]["label"], c["measure"]): c for c in document["comparisons"] if c["pair"] in kinds
    }
    # The same optimizer arm gets its own label and comparison, and stays out of Table 2 (the paper's SGD arm).
    adam = found["digits", "NODEs(1) + KD (ResNet20, T = 3, Adam)", "clean accuracy"]
    assert adam["second"]["label"] == "NODEs(1)" and "optimizer" not in adam["text"] and adam["pair"] == "kd"
    table2 = {c["column"]: c for c in document["tables"]["table2"]["cells"]}
    assert table2["resnet20"]["folders"] == [str(root / "kd1")]
    # The paper's pairing (SGD distilled against Adam alone), 95% vs 90% on 400 images each: higher, but shown, not
    # counted; the SGD arm against the Adam arm, both distilled, tells the optimizer's part.
    sgd = found["digits", "NODEs(1) + KD (ResNet20, T = 3)", "clean accuracy"]
    half = binomial_half((0.95, 400), (0.9, 400))
    assert sgd["pair"] == "kd (paper)" and sgd["interval"] == pytest.approx([5 - half, 5 + half])
    assert sgd["verdict"] == "higher"
    optimizer = [c for c in document["comparisons"] if c["pair"] == "optimizer" and c["measure"] == "clean accuracy"]
    assert [(c["first"]["label"], c["second"]["label"]) for c in optimizer] == [
        ("NODEs(1) + KD (ResNet20, T = 3)", "NODEs(1) + KD (ResNet20, T = 3, Adam)")
    ]
    # 86% vs 90%: within noise.
    half = binomial_half((0.86, 400), (0.9, 400))
    assert adam["interval"] == pytest.approx([-4 - half, -4 + half]) and adam["verdict"] == "within noise"
    # Two seeds of NODEs(1) on svhn (90 and 94%) against one distilled run of a third seed: each arm's seeds apart, the seed variance
    # (94 - 92)^2 * 2 / 1 / 2 = 4 points^2 with 1 degree of freedom beside the binomial terms.
    seeds = found["svhn", "NODEs(1) + KD (ResNet20, T = 3)", "clean accuracy"]
    from scipy import stats

    terms = [(1e4 * 0.95 * 0.05 / 400, 399), (1e4 * 0.92 * 0.08 / 400, 399), (4.0, 1)]
    variance = sum(v for v, _ in terms)
    half = stats.t.ppf(0.975, variance**2 / sum(v**2 / f for v, f in terms)) * variance**0.5
    assert seeds["difference"] == pytest.approx(3.0) and seeds["interval"] == pytest.approx([3 - half, 3 + half])
    verdicts = {(c["dataset"], c["claim"]): c for c in document["claims"]}
    # One run an arm: no claim about a method is decided, whatever the intervals say.
    assert verdicts["digits", "kd_accuracy"]["verdict"] == "undecided (1 seed)"
    assert verdicts["digits", "kd_accuracy"]["summary"] == "1 within noise"  # the same-optimizer comparison only
    assert verdicts["digits", "kd_robustness"]["verdict"] == "undecided (1 seed)"
    assert verdicts["digits", "t1_robustness"]["verdict"] == "undecided (1 seed)"
    # A flagged check in an arm of one run: a sign, not yet a verdict about the method.
    assert verdicts["digits", "no_masking"]["verdict"] == "undecided (1 informative check an arm)"
    assert verdicts["digits", "no_masking"]["evidence"] == [
        "alone1: every check passed (reference PGD 20.0%)",
        "alone100: possible masking (reference PGD 50.0%): transfer",
    ]
    # svhn: only the paper's pairing (SGD distilled against Adam alone) exists, and it confounds the optimizer.
    assert verdicts["svhn", "kd_accuracy"]["verdict"] == "undecided"
    assert verdicts["svhn", "kd_accuracy"]["summary"] == "no same-optimizer comparison"
    assert verdicts["svhn", "t1_robustness"]["summary"] == "no runs to judge it by"
    assert verdicts["svhn", "no_masking"]["verdict"] == "undecided"
    markdown = invoke("--runs", root, "--format", "markdown").stdout
    claim = (
        "| digits | Knowledge distillation raises robustness | undecided (1 seed) | not checked (no half-budget twins)"
    )
    assert f"{claim} | - | 1 within noise |" in markdown
    rich = invoke("--runs", root).stdout
    assert "The paper's claims" in rich and "undecided (1 seed)" in rich
    invoke("--runs", root, "--format", "csv", "--out", tmp_path / "csv")
    with open(tmp_path / "csv" / "claims.csv", newline="") as file:
        rows = {(r["dataset"], r["claim"]): r["verdict"] for r in csv.DictReader(file)}
    assert rows == {key: claim["verdict"] for key, claim in verdicts.items()}
