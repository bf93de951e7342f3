# predict_evaluate: one job per (track, run, seed, test split) runs the two commands back to back: the
# saliency maps of one trained model (8-bit PNGs at the GT's original size), then their PySODMetrics scores
# (flat metrics.json, the PR / F / E curves, per-image scores). One job instead of two halves the jobs that
# only wait on process start-up; the maps stay an output, so the figures and `dvc pull` still see them.


rule predict_evaluate:
    input:
        checkpoint="results/train/{track}/{run}/seed{seed}/best.pt",
        data=lambda w: prepared_dir(w.track),
    output:
        pred=directory("results/predict/{track}/{run}/seed{seed}/{split}"),
        metrics="results/evaluate/{track}/{run}/seed{seed}/{split}/metrics.json",
        curves="results/evaluate/{track}/{run}/seed{seed}/{split}/curves.csv",
        per_image="results/evaluate/{track}/{run}/seed{seed}/{split}/per_image.csv",
    log:
        "results/logs/predict_evaluate/{track}/{run}/seed{seed}/{split}.log",
    benchmark:
        "results/benchmarks/predict_evaluate/{track}/{run}/seed{seed}/{split}.tsv"
    threads: config["evaluate"]["workers"]
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=COMPUTE["predict_gpus"],
    params:
        protocol=config["predict"]["protocol"],
        batch_size=config["predict"]["batch_size"],
        workers=config["evaluate"]["workers"],
    shell:
        "aclnet predict --checkpoint {input.checkpoint} --dataset {input.data} --split {wildcards.split} "
        "--out {output.pred} --protocol {params.protocol} --batch-size {params.batch_size} > {log} 2>&1 && "
        "aclnet evaluate --pred {output.pred} --gt {input.data} --split {wildcards.split} "
        "--out {output.metrics} --curves {output.curves} --per-image {output.per_image} "
        "--workers {params.workers} >> {log} 2>&1"
