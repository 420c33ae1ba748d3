"""`nodekd reproduce`: the study's steps and order, skipping and resuming, failures, and Ray against sequential."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nodekd_cli import costs, runs, study
from nodekd_cli.app import app
from nodekd_cli.errors import UserError
from nodekd_cli.students import DEFAULT_DYNAMICS
from tests.test_training import _Interrupt

# A study small enough for the tests: digits, one teacher, 8-channel students, a few epochs and images.
TINY = study.Preset(
    description="tiny",
    datasets=("digits",),
    teachers=("resnet20",),
    temperatures=(3.0,),
    t1=(1.0,),
    kd_t1=(1.0,),
    attacks=("pgd",),
    eps_max=4,
    eps_step=4,
    attack_images=24,
    check_images=8,
    teacher={"epochs": 2},
    student={"epochs": 2, "channels": 8, "batch_size": 128},
    twins=False,
)


def names(steps):
    return [step.name for step in steps]


def test_quick_preset_expands_in_the_papers_order(tmp_path):
    steps = study.expand(study.PRESETS["quick"], root=tmp_path)
    kinds = [step.kind for step in steps]
    # 1 teacher; students without distillation at t1 1 and 100; 1 teacher x 1 T x 2 t1 distilled; their half-budget
    # twins; every trained run but the twins under 2 attacks; every student checked.
    assert kinds == ["teacher"] + ["student"] * 8 + ["attack"] * 10 + ["check"] * 4
    assert names(steps)[:5] == [
        "teacher resnet20-digits",
        "student node-digits-t1_1",
        "student node-digits-t1_100",
        "student kd-resnet20-digits-T3-t1_1",
        "student kd-resnet20-digits-T3-t1_100",
    ]
    position = {step.name: i for i, step in enumerate(steps)}
    for step in steps:
        assert all(position[name] < position[step.name] for name in step.after), step.name
    kd = steps[3]
    assert kd.after == ("teacher resnet20-digits",)
    assert kd.config["teacher"] == str((tmp_path / "resnet20-digits").resolve())
    assert (kd.config["T"], kd.config["t1"], kd.config["lambda"], kd.config["optimizer"]) == (3.0, 1.0, 0.9, "sgd")
    assert kd.config["lr"] == 0.05  # the preset's SGD step
    assert (steps[4].config["optimizer"], steps[4].config["lr"]) == ("adam", 0.001)  # t1 = 100: the paper's Adam
    assert steps[1].config["lambda"] == 0.0 and steps[1].config["teacher"] is None
    assert steps[0].config["epochs"] == 15
    # Both arms of every comparison get the same budget: every student the same epochs, batch, width and dynamics.
    keys = ("epochs", "batch_size", "channels", "downsample", "dynamics", "precision")
    budgets = {tuple(str(s.config[key]) for key in keys) for s in steps[1:5]}
    assert budgets == {("16", "64", "32", "1", str(DEFAULT_DYNAMICS), "float32")}
    mixed = study.expand(study.PRESETS["quick"], root=tmp_path, precision="mixed_bfloat16")
    assert [s.config["precision"] for s in mixed[:5]] == ["float32"] + ["mixed_bfloat16"] * 4  # the students only
    # Each twin: its student's config at half the epochs (8 of 16), in <folder>-half, after the same teacher.
    for arm, twin in zip(steps[1:5], steps[5:9]):
        assert twin.folder == arm.folder.with_name(arm.folder.name + "-half") and twin.after == arm.after
        assert twin.config == {**arm.config, "epochs": 8}
    attacked = {step.folder for step in steps if step.kind in ("attack", "check")}
    assert not attacked & {twin.folder for twin in steps[5:9]}
    assert [s.kind for s in study.expand(study.PRESETS["quick"], root=tmp_path, twins=False)].count("student") == 4
    checks = [step for step in steps if step.kind == "check"]
    # A check chooses its eps from the run's PGD sweep: after it.
    assert checks[2].after == (
        "student kd-resnet20-digits-T3-t1_1",
        "teacher resnet20-digits",
        "pgd kd-resnet20-digits-T3-t1_1",
    )
    assert all(step.eps == (0, 4, 8, 12, 16, 20) and step.images == 50 for step in steps if step.kind == "attack")


def test_paper_preset_and_narrowing(tmp_path):
    steps = study.expand(study.PRESETS["paper"], root=tmp_path, seeds=1)
    # Per data set: 5 teachers, 3 students without distillation (t1 1, 100, 500), 5 x 3 T x 2 t1 distilled.
    trained = 2 * (5 + 3 + 30)
    assert len(steps) == trained + 2 * trained + 2 * 33
    # The preset's own seeds: three an arm, the teachers once: 2 x (5 + 3 x 33) trained.
    assert len([s for s in study.expand(study.PRESETS["paper"], root=tmp_path) if s.kind == "teacher"]) == 10
    assert len([s for s in study.expand(study.PRESETS["paper"], root=tmp_path) if s.kind == "student"]) == 198
    teacher = next(s for s in steps if s.name == "teacher resnet110-cifar10")
    assert (teacher.config["epochs"], teacher.config["lr"]) == (300, 0.01)
    svhn_student = next(s for s in steps if s.name == "student kd-resnet56-svhn-T20-t1_100")
    assert (svhn_student.config["epochs"], svhn_student.config["channels"]) == (40, 512)
    assert all(s.images is None and s.eps == tuple(range(21)) for s in steps if s.kind == "attack")

    narrowed = study.expand(
        study.PRESETS["paper"],
        root=tmp_path,
        datasets=["svhn"],
        teacher_models=["resnet20"],
        temperatures=[10],
        t1=[1],
        attacks=["mifgsm"],
        eps_max=8,
        epochs_scale=0.25,
        seeds=2,
    )
    # One teacher; every student arm at seeds 0 and 1, each seed distilled from that teacher.
    runs_in_order = [
        "resnet20-svhn",
        "node-svhn-t1_1",
        "node-svhn-t1_1-seed1",
        "kd-resnet20-svhn-T10-t1_1",
        "kd-resnet20-svhn-T10-t1_1-seed1",
    ]
    assert names(narrowed) == [
        *(f"teacher {f}" for f in runs_in_order[:1]),
        *(f"student {f}" for f in runs_in_order[1:]),
        *(f"mifgsm {f}" for f in runs_in_order),
        *(f"check {f}" for f in runs_in_order[1:]),
    ]
    assert narrowed[0].config["epochs"] == 10 and narrowed[1].config["epochs"] == 10  # 40 x 0.25
    assert narrowed[2].config["seed"] == 1 and narrowed[4].after == ("teacher resnet20-svhn",)
    assert narrowed[5].eps == tuple(range(9))


def test_the_cpu_cost_model_estimates_measured_runs_and_follows_its_formula(tmp_path):
    # Ground truth: the float32 students of results/mixed-precision, trained on this project's 2-core CPU (digits at
    # 8x8 states, real CIFAR-10 at the small preset's budget; t1 = 1 and 100). Two of them fitted the model; the
    # t1 = 100 ones did not.
    measured = []
    for folder in sorted((Path(__file__).parents[1] / "results/mixed-precision/runs").glob("*float32*")):
        config = json.loads((folder / "config.json").read_text())
        seconds = json.loads((folder / "metrics.json").read_text())["train_seconds"]
        measured.append((study.Step("student", tmp_path / folder.name, config), seconds))
    assert len(measured) == 4
    found = costs.estimates([step for step, _ in measured], "cpu")
    for step, seconds in measured:
        assert 0.8 < found[step.name] / seconds < 1.2, (step.name, found[step.name], seconds)
    # The formula by hand: the quick preset's NODEs(1) (digits, 4x4 states, batch 64, 16 epochs) is 23 training
    # batches and 2 test batches (a third each) per epoch, 1437 training and 360 test images (a third each); its PGD
    # at eps 0 and 4 on 50 images is 1 + (5 + 1) steps of one batch, half the fixed cost each.
    steps = study.expand(study.PRESETS["quick"], root=tmp_path, t1=[1], attacks=["pgd"], eps_max=4)
    student = next(s for s in steps if s.name == "student node-digits-t1_1")
    attack = study.Step("attack", student.folder, attack="pgd", eps=(0, 4), images=50)
    found = costs.estimates([student, attack], "cpu")
    image = 3.7e-4 / 4 + 6.8e-4 * 64 / 1024
    assert found[student.name] == pytest.approx(16 * ((23 + 2 / 3) * 0.056 + (1437 + 120) * image))
    assert found[attack.name] == pytest.approx(7 * (50 * image + 0.5 * 0.056))
    # FGSM takes one step at every eps (1 + 2 steps here), not the paper's steps rule.
    fgsm = study.Step("attack", student.folder, attack="fgsm", eps=(0, 4), images=50)
    assert costs.estimates([student, fgsm], "cpu")[fgsm.name] == pytest.approx(3 * (50 * image + 0.5 * 0.056))


def test_gpu_cost_figures_are_fitted_from_the_benchmarks_as_documented(tmp_path):
    # bench/gpu.sh's results, made by hand: the 32-channel step takes 100 ms at batch 8 and 212 ms at batch 64, so
    # 2 ms per image and 84 ms fixed per pass; the 512-channel step 340 ms at batch 128, so (340 - 84) / 128 = 2 ms
    # per image; the CUDA-graph ResNet20 step 5.12 ms at batch 128, 40 us per image.
    from bench import gpu_summary

    def step(name, ms, batch, channels):
        runs_ = [{"t1": t1, "nodekd": {"median_ms": ms * t1}, "torch": {}} for t1 in (1.0, 100.0)]
        found = {"channels": channels, "batch_size": batch, "runs": runs_}
        (tmp_path / f"{name}.json").write_text(json.dumps(found))

    step("student_step_32ch_b8", 100.0, 8, 32)
    step("student_step_32ch_b64", 212.0, 64, 32)
    step("student_step_float32", 340.0, 128, 512)
    teacher = {"batch_size": 128, "variants": {"graph": {"keras_median_ms": 5.12}}}
    (tmp_path / "teacher_step.json").write_text(json.dumps(teacher))
    profile = gpu_summary.costs(tmp_path)["float32"]
    expected = {"pass": 0.084, "student": 0.002, "teacher": 4e-5, "channels": 512, "pixels": 64}
    assert {key: profile[key] for key in expected} == pytest.approx(expected)
    # The dry-run prices with it: the paper's NODEs(1) on CIFAR-10 (512 channels, 8x8 states), under PGD at eps 0 and
    # 4 on 50 images, is 1 + (5 + 1) steps of one batch, each 50 images and half the fixed cost.
    steps = study.expand(study.PRESETS["paper"], root=tmp_path, datasets=["cifar10"], t1=[1], teacher_models=[])
    trained = next(s for s in steps if s.name == "student node-cifar10-t1_1")
    attack = study.Step("attack", trained.folder, attack="pgd", eps=(0, 4), images=50)
    found = costs.estimates([trained, attack], "cuda", profile=profile)
    assert found[attack.name] == pytest.approx(7 * (50 * 0.002 + 0.5 * 0.084))


def test_small_preset_plan_separates_distillation_from_the_optimizer(tmp_path, monkeypatch):
    steps = study.expand(study.PRESETS["small"], root=tmp_path, seeds=1)
    everyone = {step.folder.name: step.config for step in steps if step.kind == "student"}
    students = {name: config for name, config in everyone.items() if not name.endswith("-half")}
    # Each student's half-budget twin: the same config at 2 of its 5 epochs.
    assert {name: config for name, config in everyone.items() if name not in students} == {
        f"{name}-half": {**config, "epochs": 2} for name, config in students.items()
    }
    assert list(students) == [
        "node-cifar10-t1_1",
        "node-cifar10-t1_100",
        "node-cifar10-t1_1-sgd",
        "kd-resnet20-cifar10-T3-t1_1",
        "kd-resnet20-cifar10-T3-t1_100",
        "kd-resnet20-cifar10-T3-t1_1-adam",
    ]
    # The 2x2 at t1 = 1: {Adam, SGD} x {alone, distilled}, SGD at one rate, Adam at the paper's.
    optimizers = [(c["optimizer"], c["lr"]) for c in students.values()]
    assert optimizers == [("adam", 0.001), ("adam", 0.001), ("sgd", 0.05), ("sgd", 0.05), ("adam", 0.001)] + [
        ("adam", 0.001)
    ]
    # Every student the same budget: 5 epochs of the same 10,000 training images at batch 64, 32 channels.
    keys = ("epochs", "batch_size", "channels", "downsample", "train_images", "seed", "dynamics")
    assert {tuple(str(c[key]) for key in keys) for c in students.values()} == {
        ("5", "64", "32", "2", "10000", "0", str(DEFAULT_DYNAMICS))
    }
    attacks = [step for step in steps if step.kind == "attack"]
    assert len(attacks) == 2 * 7 and all(a.images == 1000 and a.eps == (0, 4, 8, 12, 16, 20) for a in attacks)
    assert [step.images for step in steps if step.kind == "check"] == [200] * 6
    # The preset's own plan: three seeds of every student arm, one teacher.
    planned = [s for s in study.expand(study.PRESETS["small"], root=tmp_path) if s.kind == "student"]
    assert len(planned) == 2 * 3 * 6 and {s.config["seed"] for s in planned} == {0, 1, 2}
    # The same plan through the command, on the CIFAR-10 images of a folder with akamaster's checkpoint beside it.
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "resnet20-12fca82f.th").touch()
    monkeypatch.chdir(tmp_path)
    args = ["--preset", "small", "--datasets", "folder:images", "--teacher-checkpoints", "weights", "--dry-run"]
    args += ["--seeds", "1"]
    result = CliRunner().invoke(app, ["reproduce", *args], env={"COLUMNS": "250"})
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 0, text
    assert "0 of 33 steps done" in text and "import resnet20 from resnet20-12fca82f.th" in text
    assert "runs/kd-resnet20-folder-images-T3-t1_1-adam" in text and "runs/node-folder-images-t1_1-half" in text
    result = CliRunner().invoke(app, ["reproduce", *args, "--no-twins"], env={"COLUMNS": "250"})
    text = " ".join(result.output.replace("│", " ").split())
    assert "0 of 27 steps done" in text and "-half" not in text


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("datasets", ["mnist"], "Unknown data set 'mnist'"),
        ("teacher_models", ["resnet18"], "Unknown teacher 'resnet18'"),
        ("attacks", ["cw"], "Unknown attack 'cw'; choose one of: pgd, mifgsm, fgsm"),
        ("epochs_scale", 0, "--epochs-scale"),
        ("precision", "float16", "Unknown precision 'float16'"),
        ("sweep", "greedy", "Unknown sweep 'greedy'; choose one of: independent, monotone"),
    ],
)
def test_wrong_names_are_refused(tmp_path, option, value, message):
    with pytest.raises(UserError, match=message):
        study.expand(study.PRESETS["quick"], root=tmp_path, **{option: value})


def test_an_attack_on_the_first_n_images_is_redone_on_a_stratified_sample(tmp_path):
    from nodekd_cli import attacks, teachers

    config = teachers.teacher_config("resnet20", "digits")  # a finished run, as far as its files tell
    runs.write_json(tmp_path / runs.CONFIG, config)
    runs.write_json(tmp_path / runs.METRICS, {"test_accuracy": 0.9})
    step = study.Step("attack", tmp_path, attack="pgd", eps=(0, 4), images=24)
    (tmp_path / runs.ATTACKS_DIR).mkdir()
    current = attacks.result_settings(config, "pgd", [0, 4], attacks.Sample(24))
    assert current["sample"] == "stratified by class, seed 0"
    first_n = {key: value for key, value in current.items() if key != "sample"}  # results made before the samples
    for settings, expected in ((first_n, "todo"), (current, "done")):
        (tmp_path / runs.ATTACKS_DIR / "pgd.json").write_text(json.dumps({"settings": settings}))
        assert study.state(step) == expected


def test_a_monotone_study_takes_only_monotone_results_and_costs_less_attacking(tmp_path):
    from nodekd_cli import attacks, teachers

    steps = study.expand(TINY, root=tmp_path, sweep="monotone")
    papers = study.expand(TINY, root=tmp_path)
    assert [s.sweep for s in steps if s.kind == "attack"] == ["monotone"] * 3
    assert {s.sweep for s in papers} == {"independent"}
    config = teachers.teacher_config("resnet20", "digits")  # a finished run, as far as its files tell
    runs.write_json(tmp_path / runs.CONFIG, config)
    runs.write_json(tmp_path / runs.METRICS, {"test_accuracy": 0.9})
    (tmp_path / runs.ATTACKS_DIR).mkdir()
    step = study.Step("attack", tmp_path, attack="pgd", eps=(0, 4), images=24)
    monotone = dataclasses.replace(step, sweep="monotone")
    # Each sweep has its own file (pgd.json, pgd.monotone.json), and a run keeps both.
    for sweep, expected in (("independent", ["done", "todo"]), ("monotone", ["done", "done"])):
        settings = attacks.result_settings(config, "pgd", [0, 4], attacks.Sample(24), sweep_mode=sweep)
        (tmp_path / runs.ATTACKS_DIR / attacks.result_name("pgd", sweep)).write_text(json.dumps({"settings": settings}))
        assert [study.state(step), study.state(monotone)] == expected
    assert attacks.result_name("pgd", "monotone") == "pgd.monotone.json"
    cheaper, paper = costs.estimates(steps), costs.estimates(papers)
    for mine, theirs in zip(steps, papers, strict=True):
        share = costs.MONOTONE_SHARE if mine.kind == "attack" else 1.0
        assert cheaper[mine.name] == pytest.approx(share * paper[theirs.name])


def test_teacher_checkpoints_are_imported_where_found(tmp_path):
    checkpoints = tmp_path / "weights"
    (checkpoints / "svhn").mkdir(parents=True)
    (checkpoints / "resnet20-12fca82f.th").touch()
    (checkpoints / "svhn" / "resnet32.th").touch()
    steps = study.expand(
        study.PRESETS["paper"], root=tmp_path, t1=[1], temperatures=[3], teacher_checkpoints=checkpoints
    )
    kinds = {step.folder.name: step.kind for step in steps if step.kind in ("teacher", "import")}
    assert kinds["resnet20-cifar10"] == "import"
    assert kinds["resnet20-svhn"] == "teacher"  # an akamaster file at the top is CIFAR-10's
    assert kinds["resnet32-svhn"] == "import"
    assert kinds["resnet32-cifar10"] == "teacher"
    imported = next(step for step in steps if step.folder.name == "resnet20-cifar10")
    assert imported.checkpoint == checkpoints / "resnet20-12fca82f.th"
    student = next(step for step in steps if step.name == "student kd-resnet20-cifar10-T3-t1_1")
    assert student.after == ("import resnet20-cifar10",)


def statuses(outcomes):
    return {outcome.step.name: outcome.status for outcome in outcomes}


def test_tiny_study_skips_what_is_done_and_resumes_what_is_not(tmp_path):
    root = tmp_path / "runs"
    steps = study.expand(TINY, root=root)
    assert [study.state(step) for step in steps] == ["todo"] * len(steps)
    student = steps[1]
    # Ctrl-C in the second epoch of the first student: the study stops there, the teacher is kept.
    with pytest.raises(KeyboardInterrupt):
        study.run_sequential(steps, reporter_for=lambda step: _Interrupt(epoch=2) if step is student else None)
    assert study.state(steps[0]) == "done" and study.state(student) == "resume"
    first_epoch = runs.read_history(student.folder / runs.HISTORY)
    assert [row["epoch"] for row in first_epoch] == [1]

    outcomes = study.run_sequential(steps)
    assert statuses(outcomes) == {
        "teacher resnet20-digits": "done",
        **{step.name: "finished" for step in steps[1:]},
    }
    history = runs.read_history(student.folder / runs.HISTORY)
    assert history[0] == first_epoch[0]  # resumed after epoch 1, not trained again
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(study.state(step) == "done" for step in steps)
    check = runs.read_json(steps[-1].folder / "attacks" / "check.json")
    assert check["n"] == 8 and check["transfer_from"] == str((root / "resnet20-digits").resolve())

    # Again: nothing to do, and nothing is written.
    written = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    outcomes = study.run_sequential(steps)
    assert set(statuses(outcomes).values()) == {"done"}
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == written


def test_a_failing_run_blocks_only_the_steps_that_need_it(tmp_path):
    root = tmp_path / "runs"
    steps = study.expand(TINY, root=root)
    (root / "resnet20-digits").mkdir(parents=True)
    (root / "resnet20-digits" / "notes.txt").write_text("not a run")
    assert study.state(steps[0]).startswith("conflict: ")
    outcomes = {outcome.step.name: outcome for outcome in study.run_sequential(steps)}
    assert outcomes["teacher resnet20-digits"].status == "failed"
    assert "is not a nodekd run folder; remove it, or give the study another --runs folder." in (
        outcomes["teacher resnet20-digits"].message
    )
    assert {name: o.status for name, o in outcomes.items() if o.status != "failed"} == {
        "student node-digits-t1_1": "finished",
        "student kd-resnet20-digits-T3-t1_1": "blocked",
        "pgd resnet20-digits": "blocked",
        "pgd node-digits-t1_1": "finished",
        "pgd kd-resnet20-digits-T3-t1_1": "blocked",
        "check node-digits-t1_1": "finished",
        "check kd-resnet20-digits-T3-t1_1": "blocked",
    }
    assert "teacher resnet20-digits" in outcomes["student kd-resnet20-digits-T3-t1_1"].message


# The tiny study without its masking checks (three quarters of its time; test_tiny_study_skips... runs them): for
# the tests of the command and of Ray, which run the study's steps through the same `study.execute`.
UNCHECKED = dataclasses.replace(TINY, checks=False)


def test_cli_runs_the_study_then_does_nothing_new(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(study.PRESETS, "tiny", UNCHECKED)

    def invoke(*args):
        result = CliRunner().invoke(app, ["reproduce", "--preset", "tiny", *args], env={"COLUMNS": "250"})
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.exit_code, " ".join(result.output.replace("│", " ").split())

    code, text = invoke("--dry-run")
    assert code == 0 and "0 of 6 steps done" in text and "runs/kd-resnet20-digits-T3-t1_1" in text
    code, text = invoke()
    assert code == 0, text
    assert "Study: 6 ran now." in text and "Table 2" in text
    assert (tmp_path / "runs" / "report" / "figure1-digits.png").exists()
    code, text = invoke()
    assert code == 0 and "Study: 6 done before." in text
    code, text = invoke("--dry-run")
    assert "6 of 6 steps done" in text


def test_wrong_workers_or_threads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for option in ("--workers", "--threads"):
        result = CliRunner().invoke(app, ["reproduce", option, "0"])
        assert result.exit_code == 1 and "--workers and --threads must be at least 1" in result.output
    result = CliRunner().invoke(app, ["reproduce", "--preset", "huge", "--dry-run"])
    assert result.exit_code == 1 and "Unknown preset 'huge'; choose one of: quick, small, paper." in result.output


def test_workers_without_ray_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study, "ray_available", lambda: False)
    result = CliRunner().invoke(app, ["reproduce", "--workers", "2"])
    assert result.exit_code == 1
    assert "pip install 'nodekd[cluster]'" in " ".join(result.output.split())


def report_cells(root):
    from nodekd_cli import report

    document = json.loads(report.to_json(report.build(root)))
    return {key: [(c["column"], c["value"]) for c in table["cells"]] for key, table in document["tables"].items()}


def test_ray_with_two_workers_gives_the_sequential_results(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="the test extra installs Ray")
    del ray
    # Under a TMPDIR so long that Ray's socket paths would pass the 107 bytes AF_UNIX allows (a cluster's job folder).
    import tempfile

    long_temp = tmp_path / ("t" * 60) / ("m" * 60)
    long_temp.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(long_temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert len(tempfile.gettempdir()) > 107
    # Floating-point sums depend on the thread count: Ray's 1-CPU tasks use one thread, so does the reference.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sequential = study.run_sequential(study.expand(UNCHECKED, root=tmp_path / "sequential"))
    finally:
        torch.set_num_threads(threads)
    assert set(statuses(sequential).values()) == {"finished"}
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    steps = study.expand(UNCHECKED, root=(tmp_path / "ray").resolve())
    parallel = study.run_on_ray(steps, workers=2, device="cpu")
    assert statuses(parallel) == statuses(sequential)
    files = {side: sorted((tmp_path / side).rglob("*.json")) for side in ("sequential", "ray")}
    assert [p.relative_to(tmp_path / "sequential") for p in files["sequential"]] == [
        p.relative_to(tmp_path / "ray") for p in files["ray"]
    ]
    compared = 0
    for a, b in zip(files["sequential"], files["ray"]):
        left, right = runs.read_json(a), runs.read_json(b)
        if a.name == "metrics.json":
            for key in ("train_seconds", "model_sha256"):  # the file holds when it was saved
                left.pop(key), right.pop(key)
            assert left == right, a
        elif a.parent.name == "attacks":
            assert left["accuracy"] == right["accuracy"], a
        else:
            continue
        compared += 1
    assert compared == 3 + 3  # three runs, three sweeps
    assert report_cells(tmp_path / "ray") == report_cells(tmp_path / "sequential")
