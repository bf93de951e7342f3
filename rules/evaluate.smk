# evaluate: PySODMetrics scores of one folder of maps against the prepared GT (flat metrics.json, the
# PR / F / E curves, and per-image scores).


rule evaluate:
    input:
        pred="results/predict/{track}/{run}/seed{seed}/{split}",
        gt=lambda w: prepared_dir(w.track),
    output:
        metrics="results/evaluate/{track}/{run}/seed{seed}/{split}/metrics.json",
        curves="results/evaluate/{track}/{run}/seed{seed}/{split}/curves.csv",
        per_image="results/evaluate/{track}/{run}/seed{seed}/{split}/per_image.csv",
    log:
        "results/logs/evaluate/{track}/{run}/seed{seed}/{split}.log",
    benchmark:
        "results/benchmarks/evaluate/{track}/{run}/seed{seed}/{split}.tsv"
    threads: config["evaluate"]["workers"]
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    params:
        workers=config["evaluate"]["workers"],
    shell:
        "aclnet evaluate --pred {input.pred} --gt {input.gt} --split {wildcards.split} --out {output.metrics} "
        "--curves {output.curves} --per-image {output.per_image} --workers {params.workers} > {log} 2>&1"
