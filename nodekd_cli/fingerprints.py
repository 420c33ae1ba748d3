"""Fingerprints of models: how a distilled student knows whether its teacher is still the model it learned from.

A fingerprint is the SHA-256 of a saved model's weights (every array in model.keras's model.weights.h5, by name,
dtype, shape and bytes), not of the file: Keras stamps the save time into model.keras, so the same weights saved
again (a teacher imported again from the same checkpoint, on another machine, say) give another file hash but the
same fingerprint. A finished run records its own as `MODEL` in metrics.json; a distilled student records its
teacher's as `TEACHER` in config.json.

Runs made before fingerprints existed recorded the SHA-256 of the file instead (`LEGACY_TEACHER` and
`LEGACY_MODEL`); they are compared as they were recorded: file hash against file hash.
"""

import hashlib
import io
import zipfile
from pathlib import Path

import h5py
import numpy as np

MODEL = "model_fingerprint"  # a finished run's own, in metrics.json
TEACHER = "teacher_fingerprint"  # a distilled student's, of its teacher, in config.json
LEGACY_MODEL = "model_sha256"  # the SHA-256 of model.keras's bytes (which hold the save time)
LEGACY_TEACHER = "teacher_sha256"  # a student's, of its teacher's model.keras bytes
RECORDED = (TEACHER, LEGACY_TEACHER)  # the keys a student's config may hold, most telling first


def file_sha256(path):
    """The SHA-256 of the file at `path`, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(path):
    """The fingerprint of the model saved at `path` (a model.keras), in hex; None when the file is no readable Keras
    model (a fingerprint is evidence; a damaged file is found out when it is loaded)."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as archive:
            weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    with weights:
        names = []
        weights.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        for name in sorted(names):
            value = np.ascontiguousarray(weights[name][()])
            digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def of_model(path):
    """What a finished run records of its own model at `path`: {MODEL: fingerprint, LEGACY_MODEL: file SHA-256} (the
    file hash stays, for students made before fingerprints existed)."""
    return {MODEL: model_fingerprint(path), LEGACY_MODEL: file_sha256(path)}


def recorded(config):
    """(key, value) of the teacher a student's config names: its fingerprint, or the file hash a student made before
    fingerprints recorded; None without either."""
    return next(((key, config[key]) for key in RECORDED if config.get(key)), None)


def current(key, model_path=None, metrics=None):
    """The teacher's value of kind `key` (`TEACHER` or `LEGACY_TEACHER`) now: computed from its model file when
    `model_path` exists, else read from its metrics.json's `metrics` (a committed run without weights); None when
    neither says."""
    if model_path is not None and Path(model_path).is_file():
        return model_fingerprint(model_path) if key == TEACHER else file_sha256(model_path)
    return (metrics or {}).get(MODEL if key == TEACHER else LEGACY_MODEL)


def teacher_changed(old, new, model_path):
    """Whether a student's config `new` names another teacher model than the config `old` it was trained with: their
    fingerprints differ, or (`old` made before fingerprints) the teacher file at `model_path` is no longer the one
    whose hash `old` recorded. False when either has no record."""
    before, now = recorded(old), recorded(new)
    if before is None or now is None:
        return False
    if before[0] == now[0]:
        return before[1] != now[1]
    value = current(before[0], model_path)
    return value is not None and value != before[1]
