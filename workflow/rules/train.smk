# train: the RGB-D teacher once per track (seeds[0]); the plain student (no KD) and the distilled student
# (all KD losses) once per seed, distilled from the teacher of the same track; the optional KD ablations
# (label + one KD loss) at seeds[0]. With compute.train_gpus > 1 the launcher is torchrun (one process per
# GPU, DDP); otherwise one `aclnet` process. Commands, outputs and params keys come from the plan.


def _train_outputs(stage: str, run: str) -> list:
    files = outputs_of(stage, track="{track}", run=run, seed="{seed}")
    # config.yaml is the resolved recipe of the run: it goes into the HTML report.
    config_yaml = plan.fill(f"{plan.TRAIN_DIR}/config.yaml", track="{track}", run=run, seed="{seed}")
    return [report(path, caption="../report/config.rst", category="Configuration", subcategory="{track}")
            if path == config_yaml else path for path in files]


def _train_log(run: str, kind: str = "logs") -> str:
    return f"results/{kind}/train/{{track}}/{run}/seed{{seed}}.{'log' if kind == 'logs' else 'tsv'}"


TRAIN_RESOURCES = dict(mem_mb=COMPUTE["train_mem_mb"], gpu=COMPUTE["train_gpus"])


rule train_teacher:
    input:
        data=lambda w: prepared_dir(w.track),
    output:
        _train_outputs("train_teacher", "teacher"),
    params:
        reads=lambda w: reads("train_teacher", track=w.track),
    log:
        _train_log("teacher"),
    benchmark:
        _train_log("teacher", "benchmarks")
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    conda:
        CONDA_ENV
    shell:
        shell_of("train_teacher", run="teacher", data="{input.data}")


rule train_student:
    input:
        data=lambda w: prepared_dir(w.track),
    output:
        _train_outputs("train_student", "student"),
    params:
        reads=lambda w: reads("train_student", track=w.track),
    log:
        _train_log("student"),
    benchmark:
        _train_log("student", "benchmarks")
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    conda:
        CONDA_ENV
    shell:
        shell_of("train_student", run="student", data="{input.data}")


rule train_student_kd:
    input:
        data=lambda w: prepared_dir(w.track),
        teacher=lambda w: teacher_checkpoint(w.track),
    output:
        _train_outputs("train_student_kd", "student_kd"),
    params:
        reads=lambda w: reads("train_student_kd", track=w.track),
    log:
        _train_log("student_kd"),
    benchmark:
        _train_log("student_kd", "benchmarks")
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    conda:
        CONDA_ENV
    shell:
        shell_of("train_student_kd", run="student_kd", data="{input.data}", teacher="{input.teacher}")


rule train_ablation:
    input:
        data=lambda w: prepared_dir(w.track),
        teacher=lambda w: teacher_checkpoint(w.track),
    output:
        _train_outputs("train_ablation", "{ablation}"),
    params:
        reads=lambda w: reads("train_ablation", track=w.track),
        weights=lambda w: ABLATIONS[w.ablation],
    wildcard_constraints:
        ablation="|".join(ABLATIONS) or "kd_(?!x)x",  # no ablation configured: matches nothing
    log:
        _train_log("{ablation}"),
    benchmark:
        _train_log("{ablation}", "benchmarks")
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    conda:
        CONDA_ENV
    shell:
        shell_of("train_ablation", run="{wildcards.ablation}", data="{input.data}", teacher="{input.teacher}",
                 weights="{params.weights}")
