# tables: Table I (rail) and Table II (RGB-D SOD), the paper's reported numbers beside ours (mean ± std over
# seeds), the S* − S / T − S differences with intervals, plus one ablation table per track when ablations are
# configured.


rule tables:
    input:
        inputs_of("tables"),
        code=code_of("tables"),
    output:
        [report(path, caption="../report/tables.rst", category="Tables") for path in TABLES],
    log:
        log_of("tables"),
    benchmark:
        benchmark_of("tables")
    params:
        reads=reads("tables"),
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    conda:
        CONDA_ENV
    shell:
        shell_of("tables")
