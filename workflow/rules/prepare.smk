# prepare: generate (synthetic) or adapt (real) one dataset, validate it, and build its memory-mapped cache.
# Only the datasets that a track names are built.


rule prepare:
    input:
        code=lambda w: code_of("prepare", dataset=w.dataset),
    output:
        outputs_of("prepare", dataset="{dataset}"),
    log:
        log_of("prepare"),
    benchmark:
        benchmark_of("prepare")
    params:
        reads=lambda w: reads("prepare", dataset=w.dataset),
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    conda:
        CONDA_ENV
    shell:
        shell_of("prepare")
