# latency: ms/image of each architecture at 256 x 256, batch 1, PyTorch eager fp32, on the CPU of this run
# (Table I's latency column). By default it reserves every core (compute.latency_cores: 0), so Snakemake runs
# it alone and no other job skews the timing.


rule latency:
    output:
        "results/latency/{model}.json",
    log:
        "results/logs/latency/{model}.log",
    benchmark:
        "results/benchmarks/latency/{model}.tsv"
    threads: COMPUTE["latency_cores"] or workflow.cores
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    shell:
        "aclnet latency --model {wildcards.model} --size 256 --warmup {LATENCY[warmup]} --iters {LATENCY[iters]} "
        "--out {output} > {log} 2>&1"
