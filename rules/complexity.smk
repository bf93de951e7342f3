# complexity: parameters and MACs of each architecture at 256 x 256 (the paper's Params / FLOPs columns).


rule complexity:
    output:
        "results/complexity/{model}.json",
    log:
        "results/logs/complexity/{model}.log",
    benchmark:
        "results/benchmarks/complexity/{model}.tsv"
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    shell:
        "aclnet complexity --model {wildcards.model} --size 256 --out {output} > {log} 2>&1"
