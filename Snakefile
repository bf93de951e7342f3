# The aclnet-kd DAG: prepare -> teacher -> students (per seed) -> predict + evaluate -> complexity, latency -> tables
# -> figures. Every job runs `aclnet` commands (predict_evaluate: two, back to back). Each stage's command,
# outputs and params keys are written once, in src/aclnet_kd/workflow/plan.py; the rules here and dvc.yaml
# (rendered by `aclnet dvc-yaml`) both follow from it. Run:  snakemake --cores all [--configfile config/X.yaml]
import copy
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from aclnet_kd.config import select_tracks, validate_params
from aclnet_kd.errors import AclnetError

min_version("8.20")

configfile: "params.yaml"
report: "workflow/report/workflow.rst"
try:
    validate_params(config)  # the same check, and message, as every `aclnet` command (aclnet_kd.config)
except AclnetError as err:
    raise WorkflowError(str(err)) from None
RUN_PARAMS = copy.deepcopy(config)  # the merged params, before the cut below: what every job reads (common.smk)
config["tracks"] = select_tracks(config)["tracks"]  # params only_tracks (as load_params does)

include: "workflow/rules/common.smk"
# One file per stage (its rule(s)); a new stage's file is picked up here without an edit.
for _rules in sorted(Path(workflow.basedir, "workflow", "rules").glob("*.smk")):
    if _rules.name != "common.smk":
        include: str(_rules)


rule all:
    input:
        FINAL,
    default_target: True
