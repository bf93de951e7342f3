# train: the RGB-D teacher once per track (seeds[0]); the plain student (no KD) and the distilled student
# (all KD losses) once per seed, distilled from the teacher of the same track; the optional KD ablations
# (label + one KD loss) at seeds[0]. With compute.train_gpus > 1 the launcher is torchrun (one process per
# GPU, DDP); otherwise one `aclnet` process. Only the runs with --kd on read (and list) the `kd` params.


def _train_shell(role: str, kd: str, extra: str = "") -> str:
    return (
        f"{LAUNCHER} train --role {role} --kd {kd}{extra} --data {{input.data}} --out {{params.out}} {PARAMS} "
        "--seed {wildcards.seed} --track {wildcards.track} > {log} 2>&1"
    )


def _train_outputs(run: str) -> list:
    folder = f"results/train/{{track}}/{run}/seed{{seed}}"
    # config.yaml is the resolved recipe of the run: it goes into the HTML report.
    files = [f"{folder}/{name}" for name in TRAIN_FILES]
    files[TRAIN_FILES.index("config.yaml")] = report(
        f"{folder}/config.yaml", caption="../workflow/report/config.rst", category="Configuration",
        subcategory="{track}",
    )
    return files + [directory(f"{folder}/dvclive/plots")]


TRAIN_RESOURCES = dict(mem_mb=COMPUTE["train_mem_mb"], gpu=COMPUTE["train_gpus"])


rule train_teacher:
    input:
        data=lambda w: prepared_dir(w.track),
    output:
        _train_outputs("teacher"),
    params:
        out="results/train/{track}/teacher/seed{seed}",
        reads=lambda w: reads("train", "models.teacher", f"tracks.{w.track}.train", "compute.launcher"),
    log:
        "results/logs/train/{track}/teacher/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{track}/teacher/seed{seed}.tsv"
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        _train_shell("teacher", "off")


rule train_student:
    input:
        data=lambda w: prepared_dir(w.track),
    output:
        _train_outputs("student"),
    params:
        out="results/train/{track}/student/seed{seed}",
        reads=lambda w: reads("train", "models.student", f"tracks.{w.track}.train", "compute.launcher"),
    log:
        "results/logs/train/{track}/student/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{track}/student/seed{seed}.tsv"
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        _train_shell("student", "off")


rule train_student_kd:
    input:
        data=lambda w: prepared_dir(w.track),
        teacher=lambda w: f"{train_dir(w.track, 'teacher', FIRST_SEED)}/best.pt",
    output:
        _train_outputs("student_kd"),
    params:
        out="results/train/{track}/student_kd/seed{seed}",
        reads=lambda w: reads("train", "models.student", f"tracks.{w.track}.train", "kd", "compute.launcher"),
    log:
        "results/logs/train/{track}/student_kd/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{track}/student_kd/seed{seed}.tsv"
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        _train_shell("student", "on", " --teacher {input.teacher}")


rule train_ablation:
    input:
        data=lambda w: prepared_dir(w.track),
        teacher=lambda w: f"{train_dir(w.track, 'teacher', FIRST_SEED)}/best.pt",
    output:
        _train_outputs("{ablation}"),
    params:
        out="results/train/{track}/{ablation}/seed{seed}",
        reads=lambda w: reads("train", "models.student", f"tracks.{w.track}.train", "kd", "compute.launcher"),
        weights=lambda w: ABLATIONS[w.ablation],
    wildcard_constraints:
        ablation="|".join(ABLATIONS) or "kd_(?!x)x",  # no ablation configured: matches nothing
    log:
        "results/logs/train/{track}/{ablation}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{track}/{ablation}/seed{seed}.tsv"
    threads: COMPUTE["train_threads"]
    resources:
        **TRAIN_RESOURCES,
    shell:
        _train_shell("student", "on", " --teacher {input.teacher} --kd-weights {params.weights}")
