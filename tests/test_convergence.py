"""Verdicts at convergence: half-budget twins, paired intervals, Holm's correction and the learning curves, on run
folders the tests write (every expected number worked out by hand in the comments)."""

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from nodekd_cli.app import app
from tests.test_report import student


def bits(right, n):
    """`right` ones then zeros: which of n images a model classifies right."""
    return "1" * right + "0" * (n - right)


def write(folder, config, correct, *, epochs=16, attacks=None, history=None):
    """A finished run whose test-set outcomes are the string `correct` ('1' right), trained for `epochs`."""
    folder.mkdir(parents=True)
    config = {**config, "epochs": epochs, "batch_size": 64, "channels": 32, "optimizer": "adam", "lr": 0.001}
    (folder / "config.json").write_text(json.dumps(config))
    accuracy = correct.count("1") / len(correct)
    metrics = {"test_accuracy": accuracy, "test_images": len(correct), "test_correct": correct, "params": 1}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    for name, per_eps in (attacks or {}).items():
        (folder / "attacks").mkdir(exist_ok=True)
        n = len(per_eps[0])
        result = {
            "attack": name,
            "eps": [0, 8][: len(per_eps)],
            "accuracy": [c.count("1") / n for c in per_eps],
            "n": n,
            "images": list(range(n)),
            "correct": per_eps,
        }
        (folder / "attacks" / f"{name}.json").write_text(json.dumps(result))
    if history is not None:
        rows = ["epoch,lr,test_accuracy,seconds"] + [f"{e},0.001,{a},1.5" for e, a in enumerate(history, 1)]
        (folder / "history.csv").write_text("\n".join(rows) + "\n")


def invoke(*args):
    result = CliRunner().invoke(app, ["report", *map(str, args)], env={"COLUMNS": "250"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def document(root):
    result = invoke("--runs", root, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


KD = {"teacher_model": "resnet20", "T": 3.0}


def test_one_run_against_one_run_is_an_image_paired_interval_with_mcnemars_exact_test(tmp_path):
    # 20 test images: the distilled student right on 16, the student alone on 10; 9 both, 7 only the first, 1 only
    # the second, 3 neither. Differences d_i (points): 7 x +100, 1 x -100, 12 x 0; mean +30; sum of (d - 30)^2 =
    # 7 * 4900 + 16900 + 12 * 900 = 62000; variance 62000 / 19, of the mean / 20; t with 19 degrees of freedom. The
    # p-value: McNemar's exact test, the binomial test of 7 of the 8 discordant images.
    first = "1" * 9 + "1" * 7 + "0" + "000"
    second = "1" * 9 + "0" * 7 + "1" + "000"
    write(tmp_path / "runs" / "kd", student("digits", 1, **KD), first)
    write(tmp_path / "runs" / "alone", student("digits", 1), second)
    found = document(tmp_path / "runs")["comparisons"]
    clean = next(c for c in found if c["pair"] == "kd")
    half = stats.t.ppf(0.975, 19) * math.sqrt(62000 / 19 / 20)
    assert clean["paired"] is True and clean["difference"] == pytest.approx(30.0)
    assert clean["method"] == "this run against that run" and clean["seeds"] == 1
    assert clean["interval"] == pytest.approx([30 - half, 30 + half])
    assert clean["p_value"] == pytest.approx(stats.binomtest(7, 8, 0.5).pvalue) and clean["exact_test"] is True
    assert f"image-paired 95% interval {30 - half:+.2f} to {30 + half:+.2f}" in clean["text"]
    # Unpaired (the same accuracies without per-image records), the binomial variances add: 1e4 * .8 * .2 / 20 = 80
    # and 1e4 * .5 * .5 / 20 = 125, with Welch-Satterthwaite's degrees of freedom.
    for name in ("kd", "alone"):
        path = tmp_path / "runs" / name / "metrics.json"
        path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "test_correct"}))
    clean = next(c for c in document(tmp_path / "runs")["comparisons"] if c["pair"] == "kd")
    df = 205**2 / (80**2 / 19 + 125**2 / 19)
    half = stats.t.ppf(0.975, df) * 205**0.5
    assert clean["paired"] is False and clean["df"] == pytest.approx(df)
    assert clean["interval"] == pytest.approx([30 - half, 30 + half])


def test_robustness_pairs_each_image_averaged_over_the_eps(tmp_path):
    # 4 attacked images at eps 0 and 8 (the measure: the mean over eps 4..20, here eps 8 alone). Under eps 8 the first
    # is right on images 0, 1, 2 and the second on 0: d = +100 on images 1, 2; 0 on 0, 3; mean 50, sum of squares
    # 4 * 2500 = 10000, variance 10000 / 3, of the mean / 4, t with 3 degrees of freedom.
    write(tmp_path / "kd", student("digits", 1, **KD), "1111", attacks={"pgd": ["1111", "1110"]})
    write(tmp_path / "alone", student("digits", 1), "1111", attacks={"pgd": ["1111", "1000"]})
    found = document(tmp_path)["comparisons"]
    pgd = next(c for c in found if c["pair"] == "kd" and c["measure"].startswith("PGD"))
    half = stats.t.ppf(0.975, 3) * math.sqrt(10000 / 3 / 4)
    assert pgd["paired"] and pgd["difference"] == pytest.approx(50.0) and pgd["primary"] is True
    assert pgd["interval"] == pytest.approx([50 - half, 50 + half])


def arm(root, name, config, rights, n=1000, epochs=16, twin_rights=None):
    """One arm: a run per seed (0, 1, ...) right on the first `rights[j]` of n images; with `twin_rights`, each seed's
    half-budget twin too."""
    for seed, right in enumerate(rights):
        write(root / f"{name}-{seed}", {**config, "seed": seed}, bits(right, n), epochs=epochs)
        if twin_rights is not None:
            write(
                root / f"{name}-{seed}-half", {**config, "seed": seed}, bits(twin_rights[seed], n), epochs=epochs // 2
            )


def test_one_or_two_seeds_an_arm_never_decide_a_claim(tmp_path):
    # The distilled student 15 points ahead on every seed: far beyond any interval, yet a claim about a method needs
    # three training runs an arm.
    for seeds in (1, 2, 3):
        root = tmp_path / f"seeds{seeds}"
        arm(root, "kd", student("digits", 1, **KD), [950, 940, 955][:seeds])
        arm(root, "alone", student("digits", 1), [800, 790, 805][:seeds])
        claims = {c["claim"]: c for c in document(root)["claims"]}
        expected = {1: "undecided (1 seed)", 2: "undecided (2 seeds)", 3: "supported"}[seeds]
        assert claims["kd_accuracy"]["verdict"] == expected
    kd = next(c for c in document(tmp_path / "seeds3")["comparisons"] if c["pair"] == "kd")
    assert kd["method"] == "seed-paired" and kd["seeds"] == 3 and "3 seeds an arm" in kd["text"]


def test_a_comparison_still_moving_makes_its_claim_undecided_in_every_format(tmp_path):
    # Three seeds; from 8 to 16 epochs the student alone gains 10, 9 and 11 points, the distilled one 0, 1 and 0: the
    # difference falls by 10, 8 and 11 points, a 95% t interval far from 0: still learning.
    arm(tmp_path, "kd", student("digits", 1, **KD), [950, 940, 955], twin_rights=[950, 930, 955])
    arm(tmp_path, "alone", student("digits", 1), [800, 790, 805], twin_rights=[700, 700, 695])
    found = document(tmp_path)
    claims = {c["claim"]: c for c in found["claims"]}
    assert claims["kd_accuracy"]["verdict"] == "undecided (still learning)"
    assert claims["kd_accuracy"]["convergence"] == "some still learning"
    kd = next(c for c in found["comparisons"] if c["pair"] == "kd")
    assert kd["finished"] is False and kd["learning"]["changes"] == pytest.approx([-10.0, -8.0, -11.0])
    changes = [-10.0, -8.0, -11.0]
    half = stats.t.ppf(0.975, 2) * np.std(changes, ddof=1) / math.sqrt(3)
    assert [kd["learning"]["low"], kd["learning"]["high"]] == pytest.approx(
        [np.mean(changes) - half, np.mean(changes) + half]
    )
    assert "still learning from half to full budget" in kd["text"]
    # The twins fill no cell and take part in no comparison: three runs a side.
    assert len(kd["first"]["runs"]) == len(kd["second"]["runs"]) == 3
    rows = {row["folder"].rsplit("/", 1)[-1]: row for row in found["runs"]}
    assert rows["alone-0"]["convergence"] == "+10.00 points from its half-budget twin"
    assert rows["kd-0-half"]["convergence"].startswith("half-budget twin of kd-0")
    markdown = invoke("--runs", tmp_path, "--format", "markdown").stdout
    assert "| Knowledge distillation raises accuracy | undecided (still learning) | some still learning |" in markdown
    assert "undecided (still learning)" in invoke("--runs", tmp_path).stdout
    invoke("--runs", tmp_path, "--format", "csv", "--out", tmp_path / "csv")
    with open(tmp_path / "csv" / "claims.csv", newline="") as file:
        assert {r["claim"]: r["verdict"] for r in csv.DictReader(file)}["kd_accuracy"] == "undecided (still learning)"


def test_a_comparison_that_stopped_moving_is_finished_by_two_one_sided_tests(tmp_path):
    # The difference changes by +0.3, -0.2 and +0.1 points from half to full budget: its 90% t interval lies within
    # +-1 point, so the comparison has finished, and the claim is judged.
    arm(tmp_path, "kd", student("digits", 1, **KD), [950, 940, 955], twin_rights=[945, 942, 953])
    arm(tmp_path, "alone", student("digits", 1), [800, 790, 805], twin_rights=[798, 790, 804])
    found = document(tmp_path)
    kd = next(c for c in found["comparisons"] if c["pair"] == "kd")
    assert kd["learning"]["changes"] == pytest.approx([0.3, -0.2, 0.1]) and kd["learning"]["state"] == "finished"
    claims = {c["claim"]: c for c in found["claims"]}
    assert claims["kd_accuracy"]["verdict"] == "supported" and claims["kd_accuracy"]["convergence"] == "all finished"
    assert found["convergence_margin"] == 1.0 and found["min_seeds"] == 3


def test_without_twins_a_verdict_stands_but_says_convergence_was_not_checked(tmp_path):
    arm(tmp_path, "kd", student("digits", 1, **KD), [950, 940, 955])
    arm(tmp_path, "alone", student("digits", 1), [800, 790, 805])
    claims = {c["claim"]: c for c in document(tmp_path)["claims"]}
    assert claims["kd_accuracy"]["verdict"] == "supported"
    assert claims["kd_accuracy"]["convergence"] == "not checked (no half-budget twins)"


def test_each_arms_budget_is_a_share_of_the_papers(tmp_path):
    # CIFAR-10's images in a folder: 16 epochs of 10,000 images are 160,000 of the paper's 200 x 50,000 (1.6%).
    config = {**student("folder:/data/cifar10-jpeg", 1), "train_images": 10000}
    write(tmp_path / "alone", config, bits(50, 100))
    write(tmp_path / "kd", {**student("folder:/data/cifar10-jpeg", 1, **KD), "train_images": 10000}, bits(60, 100))
    found = document(tmp_path)
    row = next(r for r in found["runs"] if r["folder"].endswith("alone"))
    assert row["images_seen"] == 160000 and row["paper_budget"] == pytest.approx(0.016)
    claims = {c["claim"]: c for c in found["claims"]}
    assert claims["kd_accuracy"]["budget"] == "1.6% of the paper's"
    assert "16 epochs of 10,000 images, 1.6% of the paper's" in found["comparisons"][0]["text"]


def study(root, alone_half, alone_full="1" * 80 + "0" * 20):
    """Digits, 100 test images, 16 epochs with 8-epoch twins: the distilled NODEs(1) 95 right (95 at half), the
    NODEs(1) alone `alone_full` (80 right) at 16 epochs and `alone_half` at 8."""
    write(root / "kd", student("digits", 1, **KD), bits(95, 100), history=[0.5, 0.9, 0.95])
    write(root / "kd-half", student("digits", 1, **KD), bits(95, 100), epochs=8, history=[0.5, 0.94])
    write(root / "alone", student("digits", 1), alone_full, history=[0.3, 0.7, 0.8])
    write(root / "alone-half", student("digits", 1), alone_half, epochs=8, history=[0.3, 0.7])


def test_learning_curves_csv_holds_the_histories_and_a_figure_is_drawn(tmp_path):
    root = tmp_path / "runs"
    study(root, bits(70, 100))
    out = tmp_path / "out"
    assert invoke("--runs", root, "--format", "csv", "--out", out).exit_code == 0
    with open(out / "learning_curves.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    # Digits' 1,437 training images an epoch; each run's history.csv, epoch by epoch.
    found = {(r["run"], int(r["epoch"])): (int(r["images_seen"]), float(r["test_accuracy"])) for r in rows}
    expected = {}
    for name in ("kd", "kd-half", "alone", "alone-half"):
        with open(root / name / "history.csv", newline="") as file:
            for row in csv.DictReader(file):
                epoch = int(row["epoch"])
                expected[name, epoch] = (epoch * 1437, 100 * float(row["test_accuracy"]))
    assert found.keys() == expected.keys()
    assert all(found[key] == pytest.approx(expected[key]) for key in expected)
    twins = {r["run"] for r in rows if r["twin"] == "True"}
    assert twins == {"kd-half", "alone-half"}
    assert {r["run"]: r["distilled"] for r in rows}["kd"] == "True"
    figure = out / "learning-curves-digits.png"
    from PIL import Image

    description = json.loads(Image.open(figure).text["Description"])
    styles = {line["run"]: line for line in description["lines"]}
    assert set(styles) == {"kd", "kd-half", "alone", "alone-half"} and styles["kd-half"]["twin"]


def test_arms_of_a_budget_search_are_compared_at_the_budget_both_reached(tmp_path):
    # The student alone was trained at 4, 8 and 16 epochs (each the next one's twin), the distilled one at 8 only: the
    # comparison takes the alone arm's 8-epoch twin (15 of 20 right; +25 points over its own 4-epoch twin), not its
    # 16-epoch run (19 of 20).
    runs = tmp_path / "runs"
    write(runs / "alone-4", student("digits", 1), bits(10, 20), epochs=4)
    write(runs / "alone-8", student("digits", 1), bits(15, 20), epochs=8)
    write(runs / "alone-16", student("digits", 1), bits(19, 20), epochs=16)
    write(runs / "kd-8", student("digits", 1, **KD), bits(12, 20), epochs=8)
    clean = next(c for c in document(runs)["comparisons"] if c["pair"] == "kd")
    assert (clean["first"]["value"], clean["second"]["value"]) == (60.0, 75.0)
    assert clean["difference"] == pytest.approx(-15.0) and clean["same_budget"] is True
    assert "same budget (8 epochs" in clean["text"] and clean["second"]["gains"] == [25.0]
    # Without a twin at the shorter budget, the arms stay as they are, their budgets said to differ.
    (runs / "alone-8" / "metrics.json").unlink()
    (runs / "alone-4" / "metrics.json").unlink()
    clean = next(c for c in document(runs)["comparisons"] if c["pair"] == "kd")
    assert clean["second"]["value"] == 95.0 and "budgets differ: epochs 8 vs 16" in clean["text"]
    # Runs of the arm at 4 and 16 epochs that are not each other's twins are not averaged as seeds: the arm is its
    # 16-epoch run (95%, not the mean 72.5% with the 4-epoch run's 50%).
    (runs / "alone-4" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "test_images": 20}))
    clean = next(c for c in document(runs)["comparisons"] if c["pair"] == "kd")
    assert clean["second"]["value"] == 95.0 and len(clean["second"]["runs"]) == 1


def test_students_trained_on_different_numbers_of_images_are_not_seeds_of_one_arm(tmp_path):
    # Two NODEs(1) at the same epochs, one trained on 1,000 images (10 of 20 right), one on 10,000 (16 of 20), each with
    # its distilled counterpart (12 and 15 of 20): two comparisons, -5 points (15 - 16) and +10 (12 - 10), each labelled
    # with its number of images, never the mean 65% of both students alone.
    runs = tmp_path / "runs"
    for images, alone, kd in ((1000, 10, 12), (10000, 16, 15)):
        write(runs / f"alone-{images}", {**student("digits", 1), "train_images": images}, bits(alone, 20))
        write(runs / f"kd-{images}", {**student("digits", 1, **KD), "train_images": images}, bits(kd, 20))
    found = [c for c in document(runs)["comparisons"] if c["pair"] == "kd" and c["measure"] == "clean accuracy"]
    values = sorted((c["first"]["value"], c["second"]["value"]) for c in found)
    assert values == [(60.0, 50.0), (75.0, 80.0)]
    assert all(len(c["first"]["runs"]) == len(c["second"]["runs"]) == 1 for c in found)
    labels = sorted(c["second"]["label"] for c in found)
    assert labels == ["NODEs(1) [1,000 images]", "NODEs(1) [10,000 images]"]


def test_a_table_cell_averages_only_the_most_trained_budget(tmp_path):
    # NODEs(1) at 16 epochs and 32 channels (15 of 20 right), a second seed of it (17 of 20), and a 64-channel one at
    # 8 epochs (10 of 20, fewer images seen): Table 1's cell is the mean of the two 16-epoch seeds, 80%, not 70%.
    runs = tmp_path / "runs"
    write(runs / "a", student("digits", 1), bits(15, 20), epochs=16)
    write(runs / "b", {**student("digits", 1), "seed": 1}, bits(17, 20), epochs=16)
    write(runs / "wide", student("digits", 1), bits(10, 20), epochs=8)
    config = json.loads((runs / "wide" / "config.json").read_text())
    (runs / "wide" / "config.json").write_text(json.dumps({**config, "channels": 64}))
    table = document(runs)["tables"]["table1"]
    cell = next(c for c in table["cells"] if c["dataset"] == "digits" and c["column"] == "node_t1_1")
    assert cell["value"] == pytest.approx(80.0) and cell["runs"] == 2
    assert any("1 other run(s)" in note for note in table["notes"])


def test_the_learning_curves_mark_the_papers_finals_only_for_families_with_runs(tmp_path):
    # CIFAR-10 runs of NODEs(1) alone and distilled from ResNet20 at T = 10 (no NODEs(100)): the figure marks the
    # paper's 63.45% (Table 1, NODEs(1)) and 87.36% (Table 2, ResNet20, T = 10), not its NODEs(100) 62.38%.
    root = tmp_path / "runs"
    write(root / "alone", student("cifar10", 1), bits(50, 100), history=[0.4, 0.5])
    write(root / "kd", student("cifar10", 1, teacher_model="resnet20", T=10.0), bits(55, 100), history=[0.4, 0.55])
    out = tmp_path / "out"
    assert invoke("--runs", root, "--format", "csv", "--out", out).exit_code == 0
    from PIL import Image

    description = json.loads(Image.open(out / "learning-curves-cifar10.png").text["Description"])
    marks = {m["family"]: m["accuracy"] for m in description["paper"]}
    assert marks == {"NODEs(1)": 63.45, "NODEs(1) + KD (ResNet20, T = 10)": 87.36}
    # A NODEs(100) trained alone adds its mark.
    write(root / "long", student("cifar10", 100), bits(45, 100), history=[0.4, 0.45])
    assert invoke("--runs", root, "--format", "csv", "--out", out).exit_code == 0
    description = json.loads(Image.open(out / "learning-curves-cifar10.png").text["Description"])
    assert {m["family"]: m["accuracy"] for m in description["paper"]}["NODEs(100)"] == 62.38


@pytest.mark.parametrize("alone_seeds", [(0, 1), (0, 2)])
def test_seeds_that_both_arms_ran_are_paired_seed_by_seed(tmp_path, alone_seeds):
    # 20 test images, two seeds an arm. Distilled: seed 0 right on 12 (60%), seed 1 on 16 (80%); alone: 10 (50%) and
    # 12 (60%), the first images each time. Paired (the same seeds in both arms): the per-seed differences are +10 and
    # +20 and the seed-paired estimate is the crossed one of their per-image differences (`stats.crossed`). Alone ran
    # seeds 0 and 2: the one seed both ran (0) is compared run against run (`stats.one_run`), +10.
    from nodekd_cli.report import stats as report_stats

    root = tmp_path / "runs"
    for seed, right in ((0, 12), (1, 16)):
        write(root / f"kd-{seed}", student("digits", 1, **KD, seed=seed), bits(right, 20))
    for seed, right in zip(alone_seeds, (10, 12)):
        write(root / f"alone-{seed}", student("digits", 1, seed=seed), bits(right, 20))
    clean = next(c for c in document(root)["comparisons"] if c["pair"] == "kd")
    first = np.array([[float(b) for b in bits(right, 20)] for right in (12, 16)])
    second = np.array([[float(b) for b in bits(right, 20)] for right in (10, 12)])
    if alone_seeds == (0, 1):
        expected, difference = report_stats.crossed(first - second), 15.0
    else:
        expected, difference = report_stats.one_run(first[0], second[0]), 10.0
    assert clean["paired"] is True and clean["difference"] == pytest.approx(difference)
    assert clean["method"] == expected.method
    assert clean["interval"] == pytest.approx([expected.low, expected.high])
    # Paired: the t interval of the per-seed differences +10, +20 (1 degree of freedom) when the images add nothing.
    if alone_seeds == (0, 1):
        low, high = stats.ttest_1samp([10.0, 20.0], 0).confidence_interval(0.95)
        assert expected.image_variance > 0 or (expected.low, expected.high) == pytest.approx((low, high))


def test_checked_seeds_that_share_a_folder_name_are_told_apart(tmp_path):
    # A study's seeds in seed0/node and seed1/node: the masking claim names each as the run table does, by its folder
    # relative to the runs' folder.
    root = tmp_path / "runs"
    passed = {"reference": 0.2, "checks": [{"check": "transfer", "passed": True}], "masking": False}
    for seed in (0, 1):
        folder = root / f"seed{seed}" / "node"
        write(folder, student("digits", 1, seed=seed), bits(60, 100))
        (folder / "attacks").mkdir()
        (folder / "attacks" / "check.json").write_text(json.dumps(passed))
    claims = {c["claim"]: c for c in document(root)["claims"]}
    assert claims["no_masking"]["evidence"] == [
        "seed0/node: every check passed (reference PGD 20.0%)",
        "seed1/node: every check passed (reference PGD 20.0%)",
    ]
    assert claims["no_masking"]["verdict"] == "undecided (2 informative checks an arm)"


def test_a_masking_check_whose_reference_is_at_0_percent_is_not_informative(tmp_path):
    # Three seeds pass every check, but at an eps where the reference PGD leaves 0%: "at most the reference" passes
    # whatever the model does, so the claim counts none of them. At 25% they count: supported.
    root = tmp_path / "runs"
    for reference, expected in ((0.0, "undecided (0 informative checks an arm)"), (0.25, "supported")):
        check = {"reference": reference, "checks": [{"check": "transfer", "passed": True}], "masking": False}
        for seed in range(3):
            folder = root / f"seed{seed}" / "node"
            if not folder.exists():
                write(folder, student("digits", 1, seed=seed), bits(60, 100))
                (folder / "attacks").mkdir()
            (folder / "attacks" / "check.json").write_text(json.dumps(check))
        found = document(root)
        claims = {c["claim"]: c for c in found["claims"]}
        assert claims["no_masking"]["verdict"] == expected
        words = {row["check"] for row in found["runs"]}
        assert words == ({"not informative"} if reference == 0 else {"passed"})
        if reference == 0:
            assert all("not informative" in e for e in claims["no_masking"]["evidence"])


def test_apgd_far_stronger_than_the_reference_is_a_weak_reference_not_a_sign_of_masking(tmp_path):
    # Three seeds whose only failed check is APGD-CE (10% against the paper's PGD at 20%): the paper's PGD is too weak
    # at this eps, which the evidence says; no sign of masking, so the claim is supported. A failed transfer check on
    # one seed is a sign of masking: contradicted.
    root = tmp_path / "runs"
    apgd = {"check": "APGD-CE (100 steps)", "accuracy": 0.1, "reference": 0.2, "passed": False}
    for seed in range(3):
        folder = root / f"seed{seed}" / "node"
        write(folder, student("digits", 1, seed=seed), bits(60, 100))
        (folder / "attacks").mkdir()
        check = {"reference": 0.2, "eps": 2, "checks": [apgd, {"check": "transfer", "passed": True}], "masking": True}
        (folder / "attacks" / "check.json").write_text(json.dumps(check))
    found = document(root)
    claim = {c["claim"]: c for c in found["claims"]}["no_masking"]
    assert claim["verdict"] == "supported" and {row["check"] for row in found["runs"]} == {"reference too weak"}
    assert "APGD-CE leaves 10.0%: the paper's PGD is too weak at this eps" in claim["evidence"][0]
    check = json.loads((root / "seed1" / "node" / "attacks" / "check.json").read_text())
    check["checks"][1]["passed"] = False
    (root / "seed1" / "node" / "attacks" / "check.json").write_text(json.dumps(check))
    claim = {c["claim"]: c for c in document(root)["claims"]}["no_masking"]
    assert claim["verdict"] == "contradicted" and "seed1/node: possible masking at 2/255" in claim["evidence"][1]


def test_the_masking_claim_waits_for_every_checked_arm_and_not_for_the_first_to_have_its_seeds(tmp_path):
    # A study under way: NODEs(1) has passed three informative checks, NODEs(100) two. The verdict names the arm with
    # fewest (as a comparison names the fewest seeds), and turns supported only when NODEs(100) has its third. A sign
    # of masking in an arm with three checks contradicts the claim whatever the other arms have.
    root = tmp_path / "runs"
    passed = {"reference": 0.2, "eps": 2, "checks": [{"check": "transfer", "passed": True}], "masking": False}

    def checked(name, t1, seed, check):
        folder = root / f"seed{seed}" / name
        if not folder.exists():
            write(folder, student("digits", t1, seed=seed), bits(60, 100))
            (folder / "attacks").mkdir()
        (folder / "attacks" / "check.json").write_text(json.dumps(check))

    def verdict():
        return {c["claim"]: c for c in document(root)["claims"]}["no_masking"]["verdict"]

    for seed in range(3):
        checked("node1", 1, seed, passed)
    for seed in range(2):
        checked("node100", 100, seed, passed)
    assert verdict() == "undecided (2 informative checks an arm)"
    checked("node100", 100, 2, passed)
    assert verdict() == "supported"
    checked("node100", 100, 2, {**passed, "reference": 0.0})  # its third check cannot see masking: not counted
    assert verdict() == "undecided (2 informative checks an arm)"
    failed = {**passed, "checks": [{"check": "transfer", "passed": False}], "masking": True}
    checked("node1", 1, 1, failed)
    assert verdict() == "contradicted"


def test_arms_that_ran_different_seeds_are_compared_on_the_seeds_both_ran(tmp_path):
    # A study under way: the distilled arm has seeds 0-2, the arm alone seeds 0-3. The comparison pairs seeds 0-2 and
    # leaves seed 3 out of it (the run table still shows it).
    arm(tmp_path, "kd", student("digits", 1, **KD), [950, 940, 955])
    arm(tmp_path, "alone", student("digits", 1), [800, 790, 805, 700])
    found = document(tmp_path)
    kd = next(c for c in found["comparisons"] if c["pair"] == "kd")
    assert kd["method"] == "seed-paired" and kd["seeds"] == 3 and kd["first"]["seeds"] == kd["second"]["seeds"]
    assert kd["second"]["value"] == pytest.approx((80.0 + 79.0 + 80.5) / 3)
    assert len(found["runs"]) == 7
    # One seed shared (seeds 0-1 alone, seed 0 distilled): run against run on seed 0, not unpaired seeds.
    arm(tmp_path / "early", "kd", student("digits", 1, **KD), [950])
    arm(tmp_path / "early", "alone", student("digits", 1), [800, 700])
    kd = next(c for c in document(tmp_path / "early")["comparisons"] if c["pair"] == "kd")
    assert kd["method"] == "this run against that run" and kd["second"]["seeds"] == [0]
    assert kd["difference"] == pytest.approx(95.0 - 80.0)
