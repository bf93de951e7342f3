# figures: PR and F-measure curves per test split, qualitative grids and training curves per track.


rule figures:
    input:
        inputs_of("figures"),
        code=code_of("figures"),
    output:
        [report(path, caption="../report/figures.rst", category="Figures") for path in FIGURES],
    log:
        log_of("figures"),
    benchmark:
        benchmark_of("figures")
    params:
        reads=reads("figures"),
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    conda:
        CONDA_ENV
    shell:
        shell_of("figures")
