# The aclnet-kd DAG: prepare -> teacher -> students (per seed) -> predict + evaluate -> complexity, latency -> tables
# -> figures. Every job runs `aclnet` commands (predict_evaluate: two, back to back); dvc.yaml runs the same
# commands with the same paths (tests/workflow/test_dag.py proves it). Run:  snakemake --cores all [--configfile config/X.yaml]
from snakemake.utils import validate

configfile: "params.yaml"
report: "workflow/report/workflow.rst"
validate(config, "workflow/schemas/params.schema.yaml")

include: "rules/common.smk"
include: "rules/prepare.smk"
include: "rules/train.smk"
include: "rules/predict_evaluate.smk"
include: "rules/complexity.smk"
include: "rules/latency.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"


rule all:
    input:
        TABLES,
        FIGURES,
    default_target: True
