# train: the RGB-D teacher once per track (seeds[0]); the plain student (no KD) and the distilled student
# (all KD losses) once per seed, distilled from the teacher of the same track; the optional KD ablations
# (label + one KD loss) at seeds[0]; the optional KD methods (params kd_methods, table3) at every seed. With compute.train_gpus > 1 the launcher is torchrun (one process per
# GPU, DDP); otherwise one `aclnet` process. Commands, outputs and params keys come from the plan.


# One rule per fixed run of the run table (src/aclnet_kd/workflow/runs.py: ACLNet-T, -S and -S*), named by
# its plan stage; a distilled run also reads the teacher of its track. Defined in a function, not in the loop's
# body: Snakemake evaluates `shell:` again when the job runs, and `kind` must still be this rule's kind then.
def _train_rule(kind):
    rule:
        name:
            kind.stage
        input:
            data=lambda w: prepared_dir(w.track),
            **({"teacher": lambda w: teacher_checkpoint(w.track)} if kind.kd else {}),
            code=lambda w: code_of(kind.stage, track=w.track),
        output:
            train_outputs(kind.stage, kind.name),
        params:
            reads=lambda w: reads(kind.stage, track=w.track),
        log:
            log_of(kind.stage, run=kind.name),
        benchmark:
            benchmark_of(kind.stage, run=kind.name)
        threads: COMPUTE["train_threads"]
        resources:
            **TRAIN_RESOURCES,
        conda:
            CONDA_ENV
        shell:
            shell_of(kind.stage, run=kind.name, data="{input.data}", teacher="{input.teacher}")


for _kind in plan.FIXED:
    _train_rule(_kind)


rule train_ablation:
    input:
        data=lambda w: prepared_dir(w.track),
        teacher=lambda w: teacher_checkpoint(w.track),
        code=lambda w: code_of("train_ablation", track=w.track, run=w.ablation),
    output:
        train_outputs("train_ablation", "{ablation}"),
    params:
        reads=lambda w: reads("train_ablation", track=w.track),
        weights=lambda w: ABLATIONS[w.ablation],
    wildcard_constraints:
        ablation="|".join(ABLATIONS) or "kd_(?!x)x",  # no ablation configured: matches nothing
    log:
        log_of("train_ablation", run="{ablation}"),
    benchmark:
        benchmark_of("train_ablation", run="{ablation}")
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    conda:
        CONDA_ENV
    shell:
        shell_of("train_ablation", run="{wildcards.ablation}", data="{input.data}", teacher="{input.teacher}",
                 weights="{params.weights}")


rule train_kd_method:
    input:
        data=lambda w: prepared_dir(w.track),
        teacher=lambda w: teacher_checkpoint(w.track),
        code=lambda w: code_of("train_kd_method", track=w.track, run=w.run),
    output:
        train_outputs("train_kd_method", "{run}"),
    params:
        reads=lambda w: reads("train_kd_method", track=w.track, run=w.run),
    wildcard_constraints:
        run="|".join(KD_METHODS) or "kd_(?!x)x",  # no method configured: matches nothing
    log:
        log_of("train_kd_method"),
    benchmark:
        benchmark_of("train_kd_method")
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    conda:
        CONDA_ENV
    shell:
        shell_of("train_kd_method", run="{wildcards.run}", data="{input.data}", teacher="{input.teacher}")
