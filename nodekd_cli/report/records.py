"""The report's typed records: what a comparison estimates, how it was judged, and the claims built on them.

Every record is frozen: a function that judges a comparison returns a new record rather than adding to the one it
was given. `as_dict` turns each into the JSON and CSV rows users read.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Estimate:
    """A difference in points with its 95% interval, p-value and where its variance comes from (`stats`)."""

    difference: float
    low: float
    high: float
    p_value: float
    df: float
    method: str  # stats.SEED_PAIRED, SEED_UNPAIRED, ONE_RUN or UNPAIRED_IMAGES
    seeds: int  # runs in the smaller arm (a teacher, one given model, counts as many as the other arm)
    seed_variance: float  # the seeds' share of the variance of the difference (points^2)
    image_variance: float  # the test images' share
    exact_test: bool = False  # p_value from the exact McNemar test


@dataclass(frozen=True)
class Learning:
    """Whether a comparison has stopped moving from half to full budget (`stats.learning`)."""

    state: str  # stats.FINISHED, LEARNING, UNDETERMINED or UNCHECKED
    changes: tuple = ()  # per seed, points
    low: float | None = None  # 95% interval of the mean change
    high: float | None = None
    margin: float | None = None


@dataclass(frozen=True)
class Power:
    """Seeds an arm needed to decide an effect of the size seen (`stats.power`)."""

    seeds: int | None
    cap: float | None  # the power more seeds cannot exceed, for the test images there are
    images_factor: float | None  # how many times as many test images 80% power needs, when capped
    sd_upper: float | None  # upper 95% bound of the per-seed differences' standard deviation
    alpha: float
    text: str


@dataclass(frozen=True)
class Side:
    """One arm of a comparison on one measure: its runs (seeds), their values and per-image scores."""

    label: str
    values: tuple  # one per run, points
    seeds: tuple  # one per run; None for a teacher, whose seed draws no student's training images
    runs: tuple  # folders
    n: int | None  # test images, when all runs used the same number
    images: object = None  # which images the scores are of, when every run has them on the same ones
    scores: tuple | None = field(default=None, repr=False)  # per run, per image (fractions)
    twin_values: tuple = ()  # per run: its half-budget twin's value, or None
    gains: tuple = ()  # per run: points from its twin to itself, or None
    budget: str | None = None
    paper_fraction: float | None = None
    teacher: bool = False

    @property
    def value(self):
        return sum(self.values) / len(self.values)

    def as_dict(self):
        return {
            "label": self.label,
            "value": self.value,
            "n": self.n,
            "values": list(self.values),
            "seeds": list(self.seeds),
            "runs": list(self.runs),
            "images": self.images,
            "gains": list(self.gains),
            "budget": self.budget,
            "paper_fraction": self.paper_fraction,
        }


@dataclass(frozen=True)
class Comparison:
    """`first` against `second` on one measure, with what the report makes of the difference."""

    dataset: str
    pair: str  # "kd", "kd (paper)", "optimizer", "teacher" or "horizon"
    measure: str
    attack: str | None  # the attack's result key; None for clean accuracy
    primary: bool  # the claim's declared measure (clean accuracy, or PGD over eps 4..20)
    first: Side
    second: Side
    estimate: Estimate | None  # None: no number of test images to judge by
    learning: Learning
    power: Power | None
    same_budget: bool | None
    budget_text: str
    eps: tuple = ()  # the eps (in 1/255) the robustness measure averages over

    @property
    def difference(self):
        return self.first.value - self.second.value

    @property
    def key(self):
        """What tells one comparison from another in a report: data set, pair, measure and the two arms."""
        return (self.dataset, self.pair, self.measure, self.first.label, self.second.label)

    @property
    def verdict(self):
        """ "higher", "lower" or "within noise" by the 95% interval (no interval: by the sign alone)."""
        if self.estimate is None or self.estimate.low <= 0 <= self.estimate.high:
            if self.estimate is None:
                return "higher" if self.difference > 0 else "lower" if self.difference < 0 else "equal"
            return "within noise"
        return "higher" if self.difference > 0 else "lower"


@dataclass(frozen=True)
class Counted:
    """A comparison a claim counts, with its Holm-adjusted p-value over the claim's family."""

    comparison: Comparison
    holm_p: float | None


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims on one data set, with the verdict these runs give."""

    dataset: str
    claim: str  # the registry's key
    statement: str
    verdict: str
    summary: str
    convergence: str
    budget: str
    evidence: tuple  # sentences
    counted: tuple = ()  # `Counted`
    shown: tuple = ()  # comparisons shown beside the counted ones (secondary measures, the paper's own pairing)

    def as_dict(self):
        keys = ("dataset", "claim", "statement", "verdict", "summary", "convergence", "budget")
        return {key: getattr(self, key) for key in keys} | {"evidence": list(self.evidence)}
