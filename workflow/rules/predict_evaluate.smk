# predict_evaluate: one job per (track, run, seed, test split) runs the two commands back to back: the
# saliency maps of one trained model (8-bit PNGs at the GT's original size), then their PySODMetrics scores
# (flat metrics.json, the PR / F / E curves, per-image scores). One job instead of two halves the jobs that
# only wait on process start-up; the maps stay an output, so the figures and `dvc pull` still see them.


rule predict_evaluate:
    input:
        checkpoint=plan.fill(plan.CHECKPOINT, track="{track}", run="{run}", seed="{seed}"),
        data=lambda w: prepared_dir(w.track),
        code=code_of("predict_evaluate"),
    output:
        outputs_of("predict_evaluate", track="{track}", run="{run}", seed="{seed}", split="{split}"),
    log:
        log_of("predict_evaluate"),
    benchmark:
        benchmark_of("predict_evaluate")
    threads: config["evaluate"]["workers"]
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=COMPUTE["predict_gpus"],
    params:
        reads=reads("predict_evaluate"),
    conda:
        CONDA_ENV
    shell:
        shell_of("predict_evaluate", run="{wildcards.run}", data="{input.data}")
