"""The run table: what each run of the study is, written once.

A run is a model trained under a name (``results/train/<track>/<run>/seed<k>``), or a row a reader brings
(params ``external``). Each :class:`RunKind` says which plan stage makes it, the model role and the
``build_model`` entry that builds it, its label and colour in tables and figures, where its KD terms come
from, how many seeds it gets, and which tables, comparisons and figures it takes part in (``parts``).
A fixed kind is one run (its name is the folder name); a configured kind is one run per key of the params
section it is named after (``ablations``, ``kd_methods``, ``external``).

The plan (:mod:`aclnet_kd.workflow.plan`), the Snakemake rules and the report (tables, differences, Table
III, figures) read it. Adding a run kind is one entry in ``KINDS``; its stage goes into the plan.
Standard library only: the Snakefile imports it through the plan on every ``snakemake -n``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aclnet_kd.constants import STUDENT_MODEL, TEACHER_MODEL
from aclnet_kd.losses.registry import LABEL, REGISTRY, RELEASE_TERMS

# What a run takes part in (RunKind.parts):
PAPER = "paper"  # the paper's Tables I/II (a row each), the curves, qualitative and training figures, DVC plots
ABLATION = "ablation"  # the KD-loss ablation table (label only, + one KD loss, all)
TABLE3 = "table3"  # Table III, KD methods against no KD, and its figure
OPERATING_POINT = "operating_point"  # the detector's binary metrics at each run's threshold
PARTS = (PAPER, ABLATION, TABLE3, OPERATING_POINT)

# Where a run's KD terms come from (RunKind.kd):
NO_KD = ""  # the label loss only, no teacher
RELEASE = "release"  # the release's KD terms (registry in_release) at params kd.weights


@dataclass(frozen=True)
class RunKind:
    """One kind of run (see the module docstring)."""

    name: str  # a fixed run: its folder name; a configured kind: the params section naming its runs
    stage: str  # the plan stage that makes it
    role: str = "student"  # params models.<role>, `aclnet train --role`
    model: str = STUDENT_MODEL  # the build_model entry (its complexity and latency in Table I)
    label: str = ""  # its name in tables and figures (a configured kind's runs: from params)
    short: str = ""  # its name in a comparison ("S*" in "S* − S")
    colour: str = ""  # its line colour in the figures
    kd: str = NO_KD  # NO_KD, RELEASE, or the params section holding each run's KD terms
    # A configured kind's KD terms on `aclnet train`'s command line: the option, the params key it reads
    # (a job's `params:`), and the job field carrying the run's params entry into the option ("" if none).
    kd_option: str = ""
    kd_reads: str = ""
    entry_field: str = ""
    all_seeds: bool = True  # once per params seed (False: seeds[0] only)
    parts: tuple[str, ...] = ()
    configured: bool = False  # one run per key of params <name>

    def __post_init__(self) -> None:
        if not set(self.parts) <= set(PARTS):
            raise ValueError(f"RunKind {self.name!r}: parts {self.parts} not in {PARTS}")

    @property
    def trained(self) -> bool:
        """Trained by a plan stage (an external row is measured, not trained)."""
        return self.stage.startswith("train_")

    @property
    def terms(self) -> tuple[str, ...]:
        """The KD terms of a fixed run (a configured kind's come from params)."""
        return RELEASE_TERMS if self.kd == RELEASE else ()


TEACHER = RunKind("teacher", "train_teacher", "teacher", TEACHER_MODEL, "ACLNet-T", "T", "tab:blue",
                  all_seeds=False, parts=(PAPER, OPERATING_POINT))
STUDENT = RunKind("student", "train_student", label="ACLNet-S", short="S", colour="tab:orange",
                  parts=(PAPER, ABLATION, TABLE3, OPERATING_POINT))
STUDENT_KD = RunKind("student_kd", "train_student_kd", label="ACLNet-S*", short="S*", colour="tab:green",
                     kd=RELEASE, parts=(PAPER, ABLATION, TABLE3, OPERATING_POINT))
# --kd-weights per run (params ablations), at seeds[0]
ABLATIONS = RunKind("ablations", "train_ablation", kd="ablations", kd_option="--kd-weights {weights}",
                    entry_field="weights", all_seeds=False, configured=True, parts=(ABLATION, TABLE3, OPERATING_POINT))
# --kd-method per run (params kd_methods: its loss weights), at every seed
KD_METHODS = RunKind("kd_methods", "train_kd_method", kd="kd_methods", kd_option="--kd-method {run}",
                     kd_reads="kd_methods.{run}", configured=True, parts=(TABLE3,))
# rows readers bring (released weights or maps), measured by `aclnet external` beside the paper's rows
EXTERNAL = RunKind("external", "external", role="", model="", configured=True, parts=(PAPER,))

KINDS: tuple[RunKind, ...] = (TEACHER, STUDENT, STUDENT_KD, ABLATIONS, KD_METHODS, EXTERNAL)
FIXED: tuple[RunKind, ...] = tuple(kind for kind in KINDS if not kind.configured)
KIND: dict[str, RunKind] = {kind.name: kind for kind in KINDS}

# The paper's rows (Tables I and II, in table order) and what each plotted line is drawn in.
PAPER_RUNS: tuple[str, ...] = tuple(kind.name for kind in FIXED if PAPER in kind.parts)
LABELS: dict[str, str] = {kind.name: kind.label for kind in FIXED}
COLOURS: dict[str, str] = {kind.name: kind.colour for kind in FIXED}
MODELS: dict[str, str] = {kind.name: kind.model for kind in FIXED}
SEEDED_RUNS: tuple[str, ...] = tuple(kind.name for kind in FIXED if kind.all_seeds)  # once per seed
# The study's two questions, A − B: does distillation help (S* − S)? does depth help (T − S)?
COMPARISONS: dict[str, tuple[str, str]] = {f"{a.short} − {b.short}": (a.name, b.name)
                                           for a, b in ((STUDENT_KD, STUDENT), (TEACHER, STUDENT))}
DISTILLATION = next(iter(COMPARISONS))  # "S* − S": the paper's claim
BASELINE = STUDENT  # no KD: Table III's and the ablation table's reference row
RELEASE_RUN = STUDENT_KD  # ACLNet-S*: the release's KD terms


def terms_title(terms: tuple[str, ...]) -> str:
    """``("cld", "mgmd")`` -> ``CLD + MGMD`` (the registry's titles)."""
    return " + ".join(REGISTRY[term].title for term in terms)


def losses_title(kind: RunKind) -> str:
    """A fixed run's student losses: ``label only`` or ``label + CLD + MGMD + ATD``."""
    return f"{LABEL} + {terms_title(kind.terms)}" if kind.terms else f"{LABEL} only"


def configured_runs(params: dict, kind: RunKind) -> dict:
    """{run: its params entry} of a configured kind ({} when the optional section is absent)."""
    return params.get(kind.name) or {}


def part_runs(params: dict, part: str) -> list[str]:
    """The runs that take part in ``part`` (one of PARTS), in the table's order."""
    names: list[str] = []
    for kind in KINDS:
        if part in kind.parts:
            names += list(configured_runs(params, kind)) if kind.configured else [kind.name]
    return names


def trained_runs(params: dict) -> list[tuple[str, int]]:
    """(run, seed) of every trained model of a track: the table's order, each kind's runs, each run's seeds."""
    seeds = list(params["seeds"])
    found = []
    for kind in KINDS:
        if kind.trained:
            names = list(configured_runs(params, kind)) if kind.configured else [kind.name]
            found += [(run, seed) for run in names for seed in (seeds if kind.all_seeds else seeds[:1])]
    return found
