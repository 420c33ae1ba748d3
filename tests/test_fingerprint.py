"""A distilled student knows its teacher: it records the fingerprint of the teacher's weights, a training command
refuses to call the student finished once the teacher has changed, and the report marks it. The fingerprint is of the
weights, not of the file: the same teacher saved again (Keras stamps the save time into model.keras) is the same."""

import json
import os
import shutil
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from nodekd_cli import fingerprints
from tests.test_faults import invoke

TEACHER = ["--dataset", "digits", "--epochs", "1", "--device", "cpu"]
STUDENT = ["--T", "3", "--epochs", "1", "--channels", "8", "--train-images", "256", "--device", "cpu"]


def teacher_check(tmp_path, student):
    report = json.loads(invoke("report", "--runs", str(tmp_path / "runs"), "--format", "json")[2])
    return {r["folder"]: r["teacher_check"] for r in report["runs"]}[str(student)]


def save_again(model_path):
    """The model at `model_path` loaded and saved again, a second later: the same weights, another file."""
    time.sleep(1.1)
    keras.models.load_model(model_path, compile=False).save(model_path)


def test_the_fingerprint_is_of_the_weights_not_of_the_file(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    path = tmp_path / "model.keras"
    model.save(path)
    before = fingerprints.of_model(path)
    save_again(path)
    after = fingerprints.of_model(path)
    assert after[fingerprints.MODEL] == before[fingerprints.MODEL]
    assert after[fingerprints.LEGACY_MODEL] != before[fingerprints.LEGACY_MODEL]  # the file holds its save time
    kernel = model.layers[1].kernel
    value = keras.ops.convert_to_numpy(kernel).copy()
    value[0, 0] = np.nextafter(value[0, 0], np.float32(np.inf))  # one weight, one ulp
    kernel.assign(value)
    model.save(path)
    assert fingerprints.model_fingerprint(path) != before[fingerprints.MODEL]
    (tmp_path / "broken.keras").write_bytes(b"not a model")
    assert fingerprints.model_fingerprint(tmp_path / "broken.keras") is None


def test_a_student_whose_teacher_changed_is_refused_and_reported(tmp_path):
    teacher, student = tmp_path / "runs" / "teacher", tmp_path / "runs" / "kd"
    assert invoke("teacher", "train", "resnet20", *TEACHER, "--out", str(teacher))[0] == 0
    assert invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))[0] == 0
    recorded = json.loads((student / "config.json").read_text())[fingerprints.TEACHER]
    assert recorded == json.loads((teacher / "metrics.json").read_text())[fingerprints.MODEL]
    code, _, out = invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))
    assert code == 0 and "nothing to do" in out  # the same teacher: the finished run is found
    assert teacher_check(tmp_path, student) == "same"
    # The same teacher saved again (imported again from the same checkpoint, say): still the same teacher.
    save_again(teacher / "model.keras")
    code, _, out = invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))
    assert code == 0 and "nothing to do" in out
    assert teacher_check(tmp_path, student) == "same"
    # The teacher is trained again at the same path (another seed, another model).
    shutil.rmtree(teacher)
    assert invoke("teacher", "train", "resnet20", *TEACHER, "--seed", "1", "--out", str(teacher))[0] == 0
    code, lines, _ = invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))
    assert (code, len(lines)) == (1, 1) and "the teacher has changed since" in lines[0], lines
    assert teacher_check(tmp_path, student) == "changed since"
    markdown = invoke("report", "--runs", str(tmp_path / "runs"), "--format", "markdown")[2]
    assert "| kd | student (teacher changed since) |" in markdown
    # Without the teacher's weights (a committed run's light files), its metrics.json says which model it was.
    (teacher / "model.keras").unlink()
    assert teacher_check(tmp_path, student) == "changed since"
    # A student made before fingerprints existed: its teacher is unknown, never a match.
    config = json.loads((student / "config.json").read_text())
    del config[fingerprints.TEACHER]
    (student / "config.json").write_text(json.dumps(config))
    assert teacher_check(tmp_path, student) == "unknown"


def test_a_student_that_recorded_its_teachers_file_hash_is_judged_by_that_hash(tmp_path):
    """Students made before fingerprints recorded the SHA-256 of the teacher's model.keras: compared file against
    file, and a resumed run with a fingerprint is refused only when that file is no longer the one recorded."""
    teacher, student = tmp_path / "runs" / "teacher", tmp_path / "runs" / "kd"
    assert invoke("teacher", "train", "resnet20", *TEACHER, "--out", str(teacher))[0] == 0
    assert invoke("distill", "--teacher", str(teacher), *STUDENT, "--out", str(student))[0] == 0
    config = json.loads((student / "config.json").read_text())
    old = {k: v for k, v in config.items() if k != fingerprints.TEACHER}
    old[fingerprints.LEGACY_TEACHER] = fingerprints.file_sha256(teacher / "model.keras")
    (student / "config.json").write_text(json.dumps(old))
    assert teacher_check(tmp_path, student) == "same"
    model = teacher / "model.keras"
    assert not fingerprints.teacher_changed(old, config, model)
    save_again(model)  # the file recorded is gone; the weights are the same, but a file hash cannot tell
    assert fingerprints.teacher_changed(old, config, model)
    assert teacher_check(tmp_path, student) == "changed since"
    assert not fingerprints.teacher_changed({}, config, model)  # no record: nothing to compare
