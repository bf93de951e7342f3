# predict: saliency maps of one trained model on one test split, 8-bit PNGs at the GT's original size.


rule predict:
    input:
        checkpoint="results/train/{track}/{run}/seed{seed}/best.pt",
        data=lambda w: prepared_dir(w.track),
    output:
        directory("results/predict/{track}/{run}/seed{seed}/{split}"),
    log:
        "results/logs/predict/{track}/{run}/seed{seed}/{split}.log",
    benchmark:
        "results/benchmarks/predict/{track}/{run}/seed{seed}/{split}.tsv"
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=COMPUTE["predict_gpus"],
    params:
        protocol=config["predict"]["protocol"],
        batch_size=config["predict"]["batch_size"],
    shell:
        "aclnet predict --checkpoint {input.checkpoint} --dataset {input.data} --split {wildcards.split} "
        "--out {output} --protocol {params.protocol} --batch-size {params.batch_size} > {log} 2>&1"
