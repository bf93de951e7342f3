# tables: Table I (rail) and Table II (RGB-D SOD), the paper's reported numbers beside ours (mean ± std over
# seeds), plus one ablation table per track when ablations are configured.


rule tables:
    input:
        metrics=ALL_METRICS,
        runs=[path for path in ALL_TRAIN if path.endswith("/run.json")],
        complexity=ALL_COMPLEXITY,
        latency=ALL_LATENCY,
    output:
        [report(path, caption="../workflow/report/tables.rst", category="Tables") for path in TABLES],
    log:
        "results/logs/tables.log",
    benchmark:
        "results/benchmarks/tables.tsv"
    params:
        reads=report_reads("tables"),
    threads: 1
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=0,
    shell:
        "aclnet tables {PARAMS} --train-root results/train --eval-root results/evaluate "
        "--complexity-dir results/complexity --latency-dir results/latency --out-dir results/tables > {log} 2>&1"
