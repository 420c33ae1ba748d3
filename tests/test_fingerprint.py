"""A distilled student knows its teacher: it records the SHA-256 of the teacher's model, a training command refuses to
call the student finished once the teacher has changed, and the report marks it."""

import json
import shutil

from tests.test_faults import invoke

TEACHER = ["--dataset", "digits", "--epochs", "1", "--device", "cpu"]
STUDENT = ["--T", "3", "--epochs", "1", "--channels", "8", "--train-images", "256", "--device", "cpu"]


def test_a_student_whose_teacher_changed_is_refused_and_reported(tmp_path):
    teacher, student = tmp_path / "runs" / "teacher", tmp_path / "runs" / "kd"
    assert invoke("teacher", "train", "resnet20", *TEACHER, "--out", str(teacher))[0] == 0
    assert invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))[0] == 0
    recorded = json.loads((student / "config.json").read_text())["teacher_sha256"]
    assert recorded == json.loads((teacher / "metrics.json").read_text())["model_sha256"]
    code, _, out = invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))
    assert code == 0 and "nothing to do" in out  # the same teacher: the finished run is found
    report = json.loads(invoke("report", "--runs", str(tmp_path / "runs"), "--format", "json")[2])
    assert {r["folder"]: r["teacher_check"] for r in report["runs"]}[str(student)] == "same"
    # The teacher is trained again at the same path (another seed, another model).
    shutil.rmtree(teacher)
    assert invoke("teacher", "train", "resnet20", *TEACHER, "--seed", "1", "--out", str(teacher))[0] == 0
    code, lines, _ = invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))
    assert (code, len(lines)) == (1, 1) and "the teacher has changed since" in lines[0], lines
    report = json.loads(invoke("report", "--runs", str(tmp_path / "runs"), "--format", "json")[2])
    assert {r["folder"]: r["teacher_check"] for r in report["runs"]}[str(student)] == "changed since"
    # A student made before fingerprints existed: its teacher is unknown, never a match.
    config = json.loads((student / "config.json").read_text())
    del config["teacher_sha256"]
    (student / "config.json").write_text(json.dumps(config))
    report = json.loads(invoke("report", "--runs", str(tmp_path / "runs"), "--format", "json")[2])
    assert {r["folder"]: r["teacher_check"] for r in report["runs"]}[str(student)] == "unknown"
