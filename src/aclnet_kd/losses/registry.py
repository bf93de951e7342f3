"""The registry of loss terms: every name a loss weight, an ablation or a report row may use, written once.

One line per term (``TERMS``). Everything else reads its names from here: the params schema's
``kd.weights`` keys and ``ablations`` pattern (filled in by :mod:`aclnet_kd.config`), the training recipe
(``--kd-weights``), :class:`~aclnet_kd.losses.distillation.DistillationLoss` (which terms it builds and what
they consume), the training loop's loss log, and the report's ablation rows.

This module imports neither torch nor the loss modules: a term names its builder as ``"module:function"``,
imported when a :class:`DistillationLoss` builds it, so the config and the report read the names for free.

Adding a KD loss (docs/losses.md, "Adding a loss"):
  1. a module ``losses/<name>.py`` with the loss and a builder
     ``build(options: Mapping[str, Any], channels: tuple[int, ...]) -> nn.Module`` whose module has a method
     ``distill(student, teacher) -> Tensor`` (the unweighted term), ``student``/``teacher`` mapping each field of
     ``consumes`` to its per-level tensors (the teacher's detached);
  2. its line in ``TERMS`` below;
  3. its section in docs/losses.md.
Its weight then defaults to 0 (off) and may be set in params ``kd.weights`` or ``--kd-weights``.
"""

from __future__ import annotations

from dataclasses import dataclass

# The model outputs a term may consume (fields of models.ACLNetOutput).
OUTPUT_FIELDS = ("side_logits", "stage_feats", "decoder_feats")
# Besides model outputs a term may read the batch's ground truth (CIRKD's regions): ``[gt]``, (B, 1, S, S).
GT_FIELD = "gt"
# How a term's own parameters (adapters, projections) are trained:
#   "switch"  params `kd.train_kd_modules` decides (the release never optimises them: random init, frozen);
#   "always"  optimised with the student whatever that switch says (e.g. a FitNet regressor);
#   "none"    the term has no parameters.
OPTIMISED = ("switch", "always", "none")


@dataclass(frozen=True)
class KDTerm:
    """One distillation term: its weight key, its report title, how it is built and what it reads."""

    name: str  # the key in params kd.weights, --kd-weights, the loss log (train/<name>) and kd_<name> runs
    title: str  # its name in tables ("label + CLD")
    builder: str  # "module:function" (see the module docstring)
    consumes: tuple[str, ...]  # model outputs it reads, from OUTPUT_FIELDS
    optimised: str = "switch"  # from OPTIMISED
    in_release: bool = False  # part of ACLNet-S* in the paper (the run table's RELEASE kind, workflow/runs.py)

    def __post_init__(self) -> None:
        if not set(self.consumes) <= {*OUTPUT_FIELDS, GT_FIELD} or self.optimised not in OPTIMISED:
            raise ValueError(f"KDTerm {self.name!r}: consumes {self.consumes} / optimised {self.optimised!r}")


# The label loss's weight sits beside the KD terms in `kd.weights`; the trainer applies it to LabelLoss.
LABEL = "label"

# Build order is this order (it fixes which random numbers initialise which module).
TERMS: tuple[KDTerm, ...] = (
    KDTerm("cld", "CLD", "aclnet_kd.losses.cld:build_term", ("stage_feats",), in_release=True),
    KDTerm("mgmd", "MGMD", "aclnet_kd.losses.mgmd:build_term", ("stage_feats",), in_release=True),
    KDTerm("atd", "ATD", "aclnet_kd.losses.atd:build_term", ("decoder_feats",), in_release=True),
    # Classic KD methods (issue 12; docs/losses.md "Classic KD methods"): compared in table3, not in the release.
    KDTerm("response", "response KD", "aclnet_kd.losses.response:build_term", ("side_logits",), "none"),
    KDTerm("fitnet", "FitNet", "aclnet_kd.losses.fitnet:build_term", ("stage_feats",), "always"),
    KDTerm("at", "AT", "aclnet_kd.losses.at:build_term", ("stage_feats",), "none"),
    # Dense-prediction baselines (issue 25; docs/losses.md "Dense-prediction baselines"). CWD reads am1..am4 by
    # default, the saliency logits with kd.options.cwd_on; CIRKD reads am1 and the GT (its regions).
    KDTerm("cwd", "CWD", "aclnet_kd.losses.cwd:build_term", ("decoder_feats", "side_logits"), "none"),
    KDTerm("cirkd", "CIRKD pixel-to-region", "aclnet_kd.losses.cirkd:build_term", ("decoder_feats", GT_FIELD),
           "always"),
)

REGISTRY: dict[str, KDTerm] = {term.name: term for term in TERMS}
KD_TERMS: tuple[str, ...] = tuple(REGISTRY)
WEIGHT_KEYS: tuple[str, ...] = (LABEL, *KD_TERMS)  # every key of params kd.weights / --kd-weights
RELEASE_TERMS: tuple[str, ...] = tuple(term.name for term in TERMS if term.in_release)


def get_term(name: str) -> KDTerm:
    """The registered term ``name`` (KeyError naming the known ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no KD term {name!r}; registered: {list(KD_TERMS)}") from None


def weights_pattern() -> str:
    """The regex of a ``--kd-weights`` value (``cld=1,mgmd=0``), for the params schema's ``ablations``."""
    names = "|".join(WEIGHT_KEYS)
    return rf"^({names})=[0-9.eE+-]+(,({names})=[0-9.eE+-]+)*$"


def ablation_title(name: str) -> str:
    """The ablation table's row for the run ``kd_<name>`` (label + that one term)."""
    return f"label + {get_term(name).title}"
