"""What a run folder may hold, checked where it is read: a run folder is untrusted input (shared, downloaded).

One pydantic model per file: `config.json` (a teacher's or a student's), `metrics.json` and the results in
`attacks/`. Types are strict (no "3" for 3, no true for 1), numbers finite and in range, and the keys every reader
indexes are required; other keys pass, so runs made by earlier versions still read. `runs.read_run` and
`runs.Run.read_results` call `check`, so every reader (the report, the attacks, the study) gets a valid run or a
short reason. pydantic rather than hand-written checks: its errors name the field and the rule, its types are the
documentation, and one declaration serves every reader; it comes with Typer already.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
AtLeastOne = Annotated[int, Field(ge=1)]
Name = Annotated[str, Field(min_length=1)]
Outcomes = Annotated[str, Field(pattern=r"^[01]+$")]  # `runs.correct_bits`


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class Solver(_Strict):
    method: Name
    rtol: Positive
    atol: Positive
    step_size: Positive | None = None
    max_num_steps: AtLeastOne | None = None
    adjoint: bool = False


class TeacherConfig(_Strict):
    kind: Literal["teacher"]
    model: Name
    dataset: Name
    seed: Count = 0
    epochs: Count | None = None


class StudentConfig(_Strict):
    kind: Literal["student"]
    model: Name
    dataset: Name
    t1: Positive
    T: Positive | None = None
    lambda_: Fraction = Field(0.0, alias="lambda")
    teacher: Name | None = None
    teacher_model: Name | None = None
    solver: Solver
    seed: Count = 0
    epochs: AtLeastOne | None = None
    batch_size: AtLeastOne | None = None
    channels: AtLeastOne | None = None
    downsample: Count | None = None
    train_images: AtLeastOne | None = None
    optimizer: Name | None = None
    lr: Positive | None = None
    precision: Name = "float32"
    dynamics: dict | None = None

    @model_validator(mode="after")
    def _distilled(self):
        if self.teacher is not None and (self.teacher_model is None or self.T is None):
            raise ValueError("a distilled student needs teacher_model and T")
        return self


class Metrics(_Strict):
    test_accuracy: Fraction
    test_loss: Finite | None = None
    test_images: AtLeastOne | None = None
    params: Count | None = None
    epochs: Count | None = None
    train_seconds: NonNegative | None = None
    test_nfe: NonNegative | None = None
    test_correct: Outcomes | None = None

    @model_validator(mode="after")
    def _outcomes(self):
        if self.test_correct is not None and self.test_images not in (None, len(self.test_correct)):
            raise ValueError("test_correct does not have one outcome per test image")
        return self


class AttackResult(_Strict):
    eps: list[Count]
    accuracy: list[Fraction]
    n: AtLeastOne | None = None
    steps: list[Count] | None = None
    images: list[Count] | None = None
    correct: list[Outcomes | None] | None = None
    settings: dict | None = None

    @model_validator(mode="after")
    def _per_eps(self):
        if len(self.accuracy) != len(self.eps) or (self.correct is not None and len(self.correct) != len(self.eps)):
            raise ValueError("accuracy and correct need one entry per eps")
        return self


class CheckResult(_Strict):
    masking: bool
    checks: list[dict]


def check(model, data, name):
    """`data` (read from the file `name`) against `model`; a `ValueError` whose message is a short reason naming the
    first field at fault, e.g. "config.json: t1: input should be a finite number"."""
    try:
        model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        raise ValueError(f"{name}: {field + ': ' if field else ''}{message}") from None


def check_config(config, name="config.json"):
    """A run's config.json: a teacher's or a student's, by its kind."""
    if not isinstance(config, dict):
        raise ValueError(f"{name}: not a JSON object")
    kind = config.get("kind")
    check(StudentConfig if kind == "student" else TeacherConfig, config, name)
