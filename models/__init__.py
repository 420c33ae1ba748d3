"""nodekd's Keras 3 networks and layers.

Importing this package selects Keras's torch backend (unless ``KERAS_BACKEND`` already names another one) and
registers every custom layer, so ``keras.saving.load_model`` can rebuild a saved nodekd model afterwards.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from models.distiller import Distiller, distillation_loss
from models.layers import BatchNorm, GroupNorm, OptionAShortcut, PixelNormalization
from models.ode import ConvODEFunc, InvalidSolver, ODEBlock, Solver, SolverError, ode_blocks
from models.registry import TEACHERS, TeacherArchitecture, build_teacher, register_teacher, teacher_architecture
from models.resnet import BasicBlock, cifar_resnet
from models.student import build_student

# The precisions nodekd trains in, as Keras dtype policies: a teacher's whole network takes it, a student's dynamics
# (`ConvODEFunc`: its convolutions in bfloat16, the solver's state in float32). float16 would need loss scaling and is
# no faster than bfloat16 on the GPUs and CPUs that have either.
PRECISIONS = ("float32", "mixed_bfloat16")

__all__ = [
    "PRECISIONS",
    "TEACHERS",
    "BasicBlock",
    "BatchNorm",
    "ConvODEFunc",
    "Distiller",
    "GroupNorm",
    "InvalidSolver",
    "ODEBlock",
    "OptionAShortcut",
    "PixelNormalization",
    "Solver",
    "SolverError",
    "TeacherArchitecture",
    "build_student",
    "build_teacher",
    "cifar_resnet",
    "distillation_loss",
    "ode_blocks",
    "register_teacher",
    "teacher_architecture",
]
