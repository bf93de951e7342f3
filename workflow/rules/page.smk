# page: results/index.html, the tables, verdicts and figures on one self-contained page with the records'
# provenance. The first result of the Snakemake report (category "Results"; `aclnet report-landing` makes
# results/report.html open on it).


rule page:
    input:
        TABLES,
        FIGURES,
        inputs_of("page"),  # the runs' records (the tables and figures are listed file by file above)
        code=code_of("page"),
    output:
        report(plan.PAGE, caption="../report/page.rst", category="Results"),
    log:
        log_of("page"),
    benchmark:
        benchmark_of("page")
    params:
        reads=reads("page"),
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    conda:
        CONDA_ENV
    shell:
        shell_of("page")
