# complexity: parameters and MACs of each configured model (params `models`, backbone included) at
# 256 x 256: the paper's Params / FLOPs columns.


rule complexity:
    input:
        code=code_of("complexity"),
    output:
        outputs_of("complexity", model="{model}"),
    log:
        log_of("complexity"),
    benchmark:
        benchmark_of("complexity")
    params:
        role=lambda w: ROLE_OF_MODEL[w.model],
        reads=lambda w: reads("complexity", role=ROLE_OF_MODEL[w.model]),
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    conda:
        CONDA_ENV
    shell:
        shell_of("complexity", role="{params.role}")
