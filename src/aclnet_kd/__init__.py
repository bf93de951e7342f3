"""aclnet-kd: a reproducible pipeline for ACLNet-KD (RGB-D teacher distilled into an RGB-only student).

The package mirrors the pipeline's DAG:

    data/      prepare the synthetic or real datasets, the fast cache and the torch datasets
    models/    Shunted Transformer backbones (timm-registered), ACLNet-T and ACLNet-S, complexity
    losses/    label loss and the three distillation losses (CLD, MGMD, ATD)
    train/     the training loop for teacher, plain student and distilled student
    evaluate/  saliency-map prediction and PySODMetrics evaluation
    report/    the paper's tables (reported against reproduced) and figures

``import aclnet_kd`` loads neither torch nor timm: the ONNX inference path runs without them, and the
Snakefile imports ``aclnet_kd.workflow.plan`` on every `snakemake -n`. Importing ``aclnet_kd.models``
registers the Shunted variants in timm's model registry.
"""

__version__ = "0.1.0"
