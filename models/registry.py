"""The teacher architectures nodekd knows, one record each: adding an architecture is a builder and one
`register_teacher` call, and every command, the study's plan and the report take it from here.

A builder takes keyword arguments `input_shape` ((height, width, channels) of [0, 1] pixels), `num_classes`,
`mean` and `std` (per-channel normalization of the input, or None) and `dtype` (a Keras dtype policy name or None),
and returns a Keras model whose output is the logits.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TeacherArchitecture:
    name: str  # as commands and run folders name it, e.g. "resnet20"
    build: Callable  # the builder (see the module's docstring)
    label: str  # as tables and figures name it, e.g. "ResNet20"
    relative_cost: float  # seconds of a training pass per image against ResNet20's (the study's cost model)
    lr: float = 0.1  # the default initial learning rate of `nodekd teacher train`
    paper: bool = False  # one of the paper's columns (Tables 1 and 2)


TEACHERS = {}


def register_teacher(architecture):
    """Adds `architecture` (a `TeacherArchitecture`) to `TEACHERS`, replacing one of the same name."""
    TEACHERS[architecture.name] = architecture
    return architecture


def teacher_architecture(name):
    """The registered architecture `name`; a ValueError naming the registered ones otherwise."""
    if name not in TEACHERS:
        raise ValueError(f"Unknown teacher {name!r}; valid names: {', '.join(TEACHERS)}")
    return TEACHERS[name]


def build_teacher(name, **kwargs):
    """Builds the teacher registered as `name`; keyword arguments go to its builder."""
    return teacher_architecture(name).build(**kwargs)
