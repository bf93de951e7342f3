# latency: ms/image of each configured model (params `models`, backbone included) at 256 x 256, batch 1,
# PyTorch eager fp32, on the CPU of this run (Table I's latency column). By default it reserves every core
# (compute.latency_cores: 0), so Snakemake runs it alone and no other job skews the timing.


rule latency:
    input:
        code=code_of("latency"),
    output:
        outputs_of("latency", model="{model}"),
    log:
        log_of("latency"),
    benchmark:
        benchmark_of("latency")
    params:
        role=lambda w: ROLE_OF_MODEL[w.model],
        reads=lambda w: reads("latency", role=ROLE_OF_MODEL[w.model]),
    threads: COMPUTE["latency_cores"] or workflow.cores
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    conda:
        CONDA_ENV
    shell:
        shell_of("latency", role="{params.role}")
