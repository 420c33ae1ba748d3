"""White-box attacks: the paper's settings, the eps ball, analytic worst cases, determinism, results on disk."""

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nodekd_cli import attacks, checks, fingerprints, runs
from nodekd_cli.app import app
from nodekd_cli.errors import UserError


class Linear:
    """logits = x.flatten() @ W + b, called like a Keras model."""

    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias

    def __call__(self, x, training=False):
        return x.flatten(1) @ self.weight + self.bias


def test_step_counts_follow_the_paper():
    expected = [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18, 20, 21, 22, 23, 24]
    assert [attacks.num_steps(e) for e in range(21)] == expected


@pytest.mark.parametrize("attack", sorted(attacks.ATTACKS))
def test_adversarial_examples_stay_in_the_ball_and_in_pixel_range(attack):
    torch.manual_seed(0)
    model = Linear(torch.randn(12, 3), torch.zeros(3))
    x = torch.rand(16, 1, 3, 4)
    x[0] = 0.0  # at the edge of [0, 1]
    y = torch.randint(0, 3, (16,))
    method = attacks.ATTACKS[attack].method
    for e in (1, 8, 20):
        x_adv = method(model, x, y, e / 255, attacks.num_steps(e), torch.Generator().manual_seed(1))
        assert (x_adv - x).abs().max() <= e / 255 + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_linear_classifier_reaches_the_analytic_worst_case(attack):
    # Two classes, margin m = (w1 - w0) . x + (b1 - b0) for label 1: the worst case in the L-inf ball of radius eps
    # lowers it by exactly eps * ||w1 - w0||_1, at x - eps * sign(w1 - w0) (no pixel near 0 or 1 here).
    torch.manual_seed(2)
    weight = torch.randn(6, 2, dtype=torch.float64)
    model = Linear(weight, torch.zeros(2, dtype=torch.float64))
    x = 0.3 + 0.4 * torch.rand(4, 2, 3, 1, dtype=torch.float64)  # NHWC images of 6 pixels
    y = torch.ones(4, dtype=torch.long)
    e = 8
    # PGD's random start may put a pixel at the far side of the ball: 2 e steps of 1/255 reach any corner.
    steps = 2 * e
    x_adv = attacks.ATTACKS[attack].method(model, x, y, e / 255, steps, torch.Generator().manual_seed(0))
    w = weight[:, 1] - weight[:, 0]

    def margin(z):
        return z.flatten(1) @ w

    np.testing.assert_allclose(margin(x_adv), margin(x) - e / 255 * w.abs().sum(), rtol=1e-9)


def test_apgd_breaks_exactly_the_images_the_analytic_worst_case_breaks():
    # Two classes, label 1, margin m = (w1 - w0) . x: an image stays right under every perturbation of size eps
    # exactly when m > eps * ||w1 - w0||_1. APGD-CE returns an image it broke at that worst case (the corner
    # x - eps * sign(w1 - w0)) and leaves an image it could not break as it was.
    torch.manual_seed(3)
    weight = torch.randn(6, 2, dtype=torch.float64)
    w = weight[:, 1] - weight[:, 0]
    model = Linear(weight, torch.zeros(2, dtype=torch.float64))
    e = 8
    drop = e / 255 * w.abs().sum()
    x = 0.3 + 0.4 * torch.rand(64, 2, 3, 1, dtype=torch.float64)
    x = x[(x.flatten(1) @ w > 0)]  # every image classified right
    y = torch.ones(len(x), dtype=torch.long)
    margin = x.flatten(1) @ w
    robust = margin > drop
    assert 3 < robust.sum() < len(x) - 3  # both kinds
    x_adv = attacks.apgd_ce(model, x, y, e / 255, 20, torch.Generator().manual_seed(0))
    assert torch.equal(model(x_adv).argmax(1) == y, robust)
    np.testing.assert_allclose((x_adv.flatten(1) @ w)[~robust], (margin - drop)[~robust], rtol=1e-9)
    torch.testing.assert_close(x_adv[robust], x[robust], rtol=0, atol=0)


def test_mifgsm_normalizes_gradients_per_image_and_accumulates_momentum():
    # A loss whose input gradient is known at every point: logits = [0, x . v] with label 0 has gradient
    # sigmoid(x . v) * v, so the normalized gradient is v / mean(|v|) at every step and the momentum g after k steps
    # is k * v / mean(|v|): each step moves every pixel by 1/255 along sign(v), until the ball's edge.
    v = torch.tensor([[0.5, -2.0, 1.0, 0.0]], dtype=torch.float64)
    weight = torch.cat([torch.zeros(4, 1, dtype=torch.float64), v.T], dim=1)
    model = Linear(weight, torch.zeros(2, dtype=torch.float64))
    x = torch.full((1, 4), 0.5, dtype=torch.float64)
    y = torch.zeros(1, dtype=torch.long)
    x_adv = attacks.mifgsm(model, x, y, eps=3 / 255, steps=5)
    np.testing.assert_allclose(x_adv - x, 3 / 255 * torch.sign(v), atol=1e-12)
    x_adv = attacks.mifgsm(model, x, y, eps=3 / 255, steps=2)
    np.testing.assert_allclose(x_adv - x, 2 / 255 * torch.sign(v), atol=1e-12)


def test_a_fixed_seed_gives_identical_results():
    torch.manual_seed(3)
    model = Linear(torch.randn(12, 3), torch.zeros(3))
    x, y = torch.rand(32, 12), torch.randint(0, 3, (32,))
    first = attacks.sweep(model, x, y, "pgd", [0, 2, 4], seed=5)
    second = attacks.sweep(model, x, y, "pgd", [0, 2, 4], seed=5)
    assert first["accuracy"] == second["accuracy"] and first["steps"] == [0, 2, 5]


def test_monotone_sweep_never_reports_more_than_it_found_before():
    torch.manual_seed(1)  # a model that PGD breaks bit by bit over these eps (seed 4's held at 17% throughout)
    model = Linear(torch.randn(12, 3), torch.zeros(3))
    x, y = torch.rand(64, 12), torch.randint(0, 3, (64,))
    result = attacks.sweep(model, x, y, "pgd", list(range(0, 30, 3)), monotone=True)
    assert all(a >= b for a, b in zip(result["accuracy"], result["accuracy"][1:]))
    assert result["accuracy"][-1] < result["accuracy"][0]


def test_an_interrupted_monotone_sweep_goes_on_from_the_images_it_had_left():
    torch.manual_seed(1)
    model = Linear(torch.randn(12, 3), torch.zeros(3))
    x, y = torch.rand(64, 12), torch.randint(0, 3, (64,))
    eps = list(range(0, 30, 3))
    straight = attacks.sweep(model, x, y, "pgd", eps, monotone=True)
    kept = {}

    def keep(e, accuracy, still):
        kept[e] = accuracy, still.clone()
        if e == 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        attacks.sweep(model, x, y, "pgd", eps, monotone=True, on_eps=keep)
    attacked = []
    done = {e: accuracy for e, (accuracy, _) in kept.items()}
    resumed = attacks.sweep(
        model,
        x,
        y,
        "pgd",
        eps,
        monotone=True,
        done=done,
        robust=kept[9][1],
        progress=lambda e, left, _: attacked.append((e, left)),
    )
    assert resumed["accuracy"] == straight["accuracy"]
    assert attacked[0] == (12, round(kept[9][0] * 64))  # only the images eps 3 to 9 left
    assert kept[9][0] < straight["accuracy"][0]  # and those had broken some: there was something to keep
    # Without the images it had left, a monotone sweep starts again rather than trust the accuracies alone.
    attacked.clear()
    again = attacks.sweep(model, x, y, "pgd", eps, monotone=True, done=done, progress=lambda e, *_: attacked.append(e))
    assert attacked == eps[1:] and again["accuracy"] == straight["accuracy"]


def invoke(*args):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


@pytest.mark.parametrize("attack", ["pgd", "mifgsm"])
def test_attack_every_run_writes_results_and_eps_zero_is_the_clean_accuracy(attack_runs, attack, digits):
    code, text = invoke("attack", attack, "--eps-max", "4", "--runs", str(attack_runs), "--n", "60")
    assert code == 0, text
    for name in ("resnet20", "node"):
        result = json.loads((attack_runs / name / "attacks" / f"{attack}.json").read_text())
        assert result["eps"] == [0, 1, 2, 3, 4] and result["steps"] == [0, 1, 2, 3, 5] and result["n"] == 60
        chosen = result["images"]  # the class-stratified sample: 6 of each digit (36 of 360 test images each)
        assert len(set(chosen)) == 60 and np.bincount(digits.y_test[chosen], minlength=10).tolist() == [6] * 10
        assert result["settings"]["sample"] == "stratified by class, seed 0"
        model = keras.saving.load_model(attack_runs / name / "model.keras")
        logits = keras.ops.convert_to_numpy(model(digits.x_test[chosen].astype(np.float32) / 255, training=False))
        assert result["accuracy"][0] == pytest.approx(np.mean(logits.argmax(1) == digits.y_test[chosen]))
        assert all(0 <= a <= result["accuracy"][0] + 1e-9 for a in result["accuracy"])
        # Image by image, at every eps: eps 0 as the loaded model predicts, each eps's mean its accuracy, and only
        # images right at eps 0 are right under attack (the misclassified ones are not attacked).
        right = "".join("1" if r else "0" for r in logits.argmax(1) == digits.y_test[chosen])
        assert result["correct"][0] == right
        assert [c.count("1") / 60 for c in result["correct"]] == pytest.approx(result["accuracy"])
        assert all(a <= b for c in result["correct"] for a, b in zip(c, right))
    student = json.loads((attack_runs / "node" / "attacks" / f"{attack}.json").read_text())
    assert student["settings"]["gradient_solver"]["method"] == "dopri5"
    assert student["settings"]["prediction_solver"] == student["settings"]["gradient_solver"]


def test_results_are_reused_unless_forced(attack_runs):
    args = ["attack", "fgsm", "--eps-max", "2", "--run", str(attack_runs / "resnet20"), "--n", "30"]
    invoke(*args)
    path = attack_runs / "resnet20" / "attacks" / "fgsm.json"
    stamp = path.stat().st_mtime_ns
    code, text = invoke(*args)
    assert code == 0 and "reused" in text and path.stat().st_mtime_ns == stamp
    code, text = invoke(*args, "--force")
    assert code == 0 and "reused" not in text and path.stat().st_mtime_ns != stamp


def test_attack_errors(tmp_path):
    code, text = invoke("attack", "pgd", "--runs", str(tmp_path))
    assert code == 1 and "No finished runs" in text
    code, text = invoke("attack", "pgd", "--run", str(tmp_path / "missing"))
    assert code == 1 and "not a nodekd run folder" in text
    code, text = invoke("attack", "pgd", "--run", str(tmp_path), "--sweep", "sideways")
    assert code == 1 and "Unknown sweep 'sideways'" in text
    code, text = invoke("attack", "check", str(tmp_path), "--grad-method", "rk5")
    assert code == 1 and "Unknown ODE method 'rk5'" in text


class StepFunctionInput:
    """A model that masks gradients: its input passes through a staircase (zero gradient almost everywhere)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x, training=False):
        return self.model(torch.round(x * 4) / 4, training=training)


def _digits_test(digits, n=40):
    return torch.tensor(digits.x_test[:n], dtype=torch.float32) / 255, torch.tensor(digits.y_test[:n])


def test_check_slack_allows_one_image_despite_float32_rounding():
    # A run of `nodekd reproduce --preset quick` failed a check on 20 images by exactly one image: 11/20 against
    # 12/20, both float32 means, differ by 0.0500000119 > 1/20.
    eleven, twelve = (torch.tensor([1.0] * k + [0.0] * (20 - k)).mean().item() for k in (11, 12))
    assert twelve - eleven > 1 / 20
    assert eleven >= twelve - checks.slack(20)
    ten = torch.tensor([1.0] * 10 + [0.0] * 10).mean().item()
    assert not ten >= twelve - checks.slack(20)  # two images of 20 are outside it


def test_checks_flag_a_model_that_masks_gradients(attack_runs, digits):
    model = keras.saving.load_model(attack_runs / "resnet20" / "model.keras")
    x, y = _digits_test(digits)
    result = checks.masking_checks(StepFunctionInput(model), x, y, eps=8, queries=100, large_eps=(255,))
    failed = {c["check"] for c in result["checks"] if c["passed"] is False}
    assert result["masking"]
    assert "Square, gradient-free (100 queries)" in failed or "PGD at eps 255/255" in failed


def test_checks_pass_a_plain_resnet_and_a_student(attack_runs):
    code, text = invoke("attack", "check", str(attack_runs / "resnet20"), "--n", "40", "--queries", "100")
    assert code == 0, text
    result = json.loads((attack_runs / "resnet20" / "attacks" / "check.json").read_text())
    assert not result["masking"], result["checks"]
    assert {c["check"] for c in result["checks"] if c["passed"] is None} == {
        "transfer from another run",
        "gradients through a fixed-step solver",
    }
    code, text = invoke(
        "attack",
        "check",
        str(attack_runs / "node"),
        "--n",
        "20",
        "--queries",
        "20",
        "--transfer-from",
        str(attack_runs / "resnet20"),
    )
    assert code == 0, text
    result = json.loads((attack_runs / "node" / "attacks" / "check.json").read_text())
    assert result["gradient_solver"]["method"] == "rk4" and result["transfer_from"].endswith("resnet20")
    assert all(c["passed"] is not None for c in result["checks"])
    source = attack_runs / "resnet20" / runs.MODEL
    assert result["transfer_sha256"] == fingerprints.file_sha256(source)  # the source's model


def test_a_saved_sweep_is_kept_when_other_eps_are_asked_for(attack_runs, tmp_path):
    # a sweep over fewer eps reuses the saved one whole; one over more keeps the saved eps (values
    # and images' outcomes unchanged) and computes only the missing ones; a study asking for fewer plans nothing.
    from nodekd_cli import study

    node = tmp_path / "node"
    shutil.copytree(attack_runs / "node", node, ignore=shutil.ignore_patterns(runs.ATTACKS_DIR))
    path = node / "attacks" / "pgd.json"
    code, text = invoke("attack", "pgd", "--run", str(node), "--eps-max", "2", "--n", "20")
    assert code == 0, text
    first = json.loads(path.read_text())
    code, text = invoke("attack", "pgd", "--run", str(node), "--eps-max", "1", "--n", "20")
    assert code == 0 and "reused" in text and json.loads(path.read_text()) == first
    assert study.state(study.Step("attack", node, attack="pgd", eps=(0, 1), images=20)) == "done"  # nothing planned
    attacked = []
    result, reused = attacks.attack_run(
        node, "pgd", [0, 1, 2, 3], sample=attacks.Sample(20), progress=lambda e, *_: attacked.append(e), say=print
    )
    assert not reused and attacked == [3]  # eps 1 and 2 kept
    assert result["eps"] == [0, 1, 2, 3] and result["accuracy"][:3] == first["accuracy"]
    assert result["correct"][:3] == first["correct"]
    assert json.loads(path.read_text())["eps"] == [0, 1, 2, 3]
    # Asked for eps 0, 2 and 4 (--eps-step 2): 0 and 2 kept, 4 computed, and every eps kept in the file.
    result, _ = attacks.attack_run(node, "pgd", [0, 2, 4], sample=attacks.Sample(20))
    assert result["eps"] == [0, 1, 2, 3, 4]


def test_a_sample_of_n_is_stratified_by_class_and_seeded():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])  # stored class by class, as a folder data set is
    chosen = attacks.sample_indices(labels, 20, seed=0)
    # Shares 20 * (50, 30, 15, 5) / 100 = 10, 6, 3, 1: exact here, every class present.
    assert np.bincount(labels[chosen]).tolist() == [10, 6, 3, 1]
    assert chosen.tolist() == sorted(set(chosen.tolist()))
    assert np.array_equal(chosen, attacks.sample_indices(labels, 20, seed=0))
    assert not np.array_equal(chosen, attacks.sample_indices(labels, 20, seed=1))
    # 7 of 100: shares 3.5, 2.1, 1.05, 0.35; floors 3, 2, 1, 0 and the one left goes to the largest remainder.
    assert len(attacks.sample_indices(labels, 7, seed=0)) == 7
    assert np.bincount(labels[attacks.sample_indices(labels, 7, seed=0)], minlength=4).tolist() == [4, 2, 1, 0]
    assert np.array_equal(attacks.sample_indices(labels, None, seed=0), np.arange(100))
    assert np.array_equal(attacks.sample_indices(labels, 500, seed=0), np.arange(100))


def test_autoattack_command_writes_a_result_with_each_component(attack_runs, tmp_path):
    run, student = tmp_path / "resnet20", tmp_path / "node"
    shutil.copytree(attack_runs / "resnet20", run)
    shutil.copytree(attack_runs / "node", student)
    args = ["--run", str(run), "--run", str(student), "--n", "5", "--eps", "4", "--steps", "2", "--queries", "20"]
    result = CliRunner().invoke(app, ["attack", "autoattack", *args])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "attacks" / "autoattack.json").read_text())
    assert saved["eps"] == [0, 4] and saved["n"] == 5 and len(saved["robust"]) == 5
    assert [c["component"] for c in saved["components"]] == ["APGD-CE", "APGD-T", "FAB-T", "Square"]
    assert saved["accuracy"][1] == pytest.approx(saved["components"][-1]["robust_accuracy"])
    pgd = attacks.attack_run(run, "pgd", [0, 4], sample=attacks.Sample(5), force=True)[0]  # (a saved one: n 60)
    assert pgd["accuracy"][1] >= saved["accuracy"][1]  # same images (same sample), never weaker than PGD
    assert pgd["images"] == saved["images"]
    on_student = json.loads((student / "attacks" / "autoattack.json").read_text())
    assert on_student["n"] == 5 and on_student["images"] == saved["images"]
    # In a fresh process (nothing imported before the command loads the run's model, as for a user).
    args = ["attack", "autoattack", "--run", str(student), "--n", "2", "--steps", "1", "--queries", "5", "--force"]
    fresh = subprocess.run([sys.executable, "-m", "nodekd_cli", *args], capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stdout[-2000:] + fresh.stderr[-2000:]
    wrong = CliRunner().invoke(app, ["attack", "autoattack", "--run", str(run), "--version", "plus"])
    assert wrong.exit_code == 1 and "Unknown AutoAttack version 'plus'" in wrong.output


def uniform_noise(model, x, y, eps, steps, generator=None, loss="ce"):
    """A new attack for the registry test: uniform noise in the ball, no gradient."""
    noise = (torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1) * eps
    return (x + noise).clamp(0.0, 1.0)


NEW_ATTACK = attacks.Attack("noise", "Uniform noise", "Uniform noise in the ball", uniform_noise, random_start=True)


@pytest.mark.parametrize("attack", [*attacks.ATTACKS.values(), NEW_ATTACK], ids=lambda attack: attack.name)
def test_every_registered_attack_reaches_the_cli_the_study_and_the_report(attack, attack_runs, monkeypatch, tmp_path):
    from PIL import Image

    from nodekd_cli import study

    monkeypatch.setitem(attacks.ATTACKS, attack.name, attack)  # a new attack is one entry (and its function)
    root = tmp_path / "runs"
    for name in ("resnet20", "node"):
        shutil.copytree(attack_runs / name, root / name, ignore=shutil.ignore_patterns(runs.ATTACKS_DIR))
    code, text = invoke("attack", "--help")
    assert code == 0 and attack.name in text
    code, text = invoke("attack", attack.name, "--runs", str(root), "--eps-max", "2", "--n", "20")
    assert code == 0 and attack.description in text, text
    result = runs.read_json(root / "node" / runs.ATTACKS_DIR / f"{attack.name}.json")
    assert result["eps"] == [0, 1, 2] and result["settings"]["random_start"] == attack.random_start
    assert result["steps"] == [0, *(attack.steps(e) for e in (1, 2))]

    steps = study.expand(study.preset("quick"), root=root, attacks=[attack.name])
    assert {step.attack for step in steps if step.kind == "attack"} == {attack.name}
    step = study.Step("attack", root / "node", attack=attack.name, eps=(0, 1, 2), images=20)
    assert study.state(step) == "done"  # the study knows the command's result as its own
    assert study.execute(step)["accuracy"] == result["accuracy"]

    code, text = invoke("report", "--runs", str(root), "--out", str(tmp_path / "report"))
    assert code == 0, text
    description = json.loads(Image.open(tmp_path / "report" / "figure1-digits.png").text["Description"])
    assert [panel["title"] for panel in description["panels"]] == [f"{attack.title} on digits"]
    assert [line["family"] for line in description["panels"][0]["lines"]] == ["ResNet20", "NODEs(1)"]


def test_the_study_and_the_attack_command_judge_a_saved_result_by_one_rule(attack_runs, tmp_path):
    from nodekd_cli import study

    node = tmp_path / "node"
    shutil.copytree(attack_runs / "node", node, ignore=shutil.ignore_patterns(runs.ATTACKS_DIR))
    code, text = invoke("attack", "pgd", "--run", str(node), "--eps-max", "2", "--n", "20", "--batch-size", "8")
    assert code == 0, text
    step = study.Step("attack", node, attack="pgd", eps=(0, 1, 2), images=20)
    # Another batch size than the study's: not the study's result, so not done; and never replaced silently: the
    # attack refuses it in one sentence, and replaces it when forced.
    assert study.state(step) == "todo"
    with pytest.raises(UserError, match=r"other settings \(batch_size 8 -> 256\); nodekd attack pgd --run .* --force"):
        attacks.attack_run(node, "pgd", [0, 1, 2], sample=attacks.Sample(20))
    _, reused = attacks.attack_run(node, "pgd", [0, 1, 2], sample=attacks.Sample(20), force=True)
    assert not reused and study.state(step) == "done"
    assert attacks.attack_run(node, "pgd", [0, 1, 2], sample=attacks.Sample(20))[1]  # reused, as the study said
