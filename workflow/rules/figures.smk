# figures: PR and F-measure curves per test split, qualitative grids and training curves per track.


rule figures:
    input:
        outputs_under(*plan.STAGES["figures"].inputs),
        code=code_of("figures"),
    output:
        [report(path, caption="../report/figures.rst", category="Figures") for path in FIGURES],
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
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
