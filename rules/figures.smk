# figures: PR and F-measure curves per test split, qualitative grids and training curves per track.


rule figures:
    input:
        curves=ALL_CURVES,
        predictions=ALL_PREDICTIONS,
        runs=ALL_TRAIN,
        data=ALL_PREPARED,
    output:
        [report(path, caption="../workflow/report/figures.rst", category="Figures") for path in FIGURES],
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    params:
        reads=report_reads("figures"),
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    shell:
        "aclnet figures {PARAMS} --train-root results/train --eval-root results/evaluate "
        "--pred-root results/predict --data-root data/prepared --out-dir results/figures > {log} 2>&1"
