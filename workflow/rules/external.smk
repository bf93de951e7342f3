# external: one job per entry of params `external` (rows readers bring: the authors' released weights or
# published maps). A checkpoint entry's maps are made first (protocol of the entry), then every test split of
# its track is scored; results/evaluate/external/<name>/ holds the metrics, curves, maps and row.json that
# Tables I / II and the PR / F-curve figures read.
EXTERNAL = plan.external(config)


def external_sources(name: str) -> list[str]:
    """The files an entry reads: its checkpoint, or its maps folder of each test split (a missing one is
    Snakemake's "missing input" error, naming it, before any job starts)."""
    from aclnet_kd.external import maps_folder

    entry = EXTERNAL[name]
    if "checkpoint" in entry:
        return [entry["checkpoint"]]
    return [str(maps_folder(entry, split)) for split in TRACKS[entry["track"]]["test_splits"]]


rule external:
    input:
        data=inputs_of("external"),  # the prepared datasets (GT), as in dvc.yaml
        source=lambda w: external_sources(w.name),
        code=code_of("external"),
    output:
        outputs_of("external", name="{name}"),
    log:
        log_of("external"),
    benchmark:
        benchmark_of("external")
    wildcard_constraints:
        name="[A-Za-z0-9][A-Za-z0-9_.-]*",
    threads: config["evaluate"]["workers"]
    resources:
        mem_mb=COMPUTE["mem_mb"],
        gpu=COMPUTE["predict_gpus"],
    params:
        reads=lambda w: reads("external", name=w.name, track=EXTERNAL[w.name]["track"]),
    conda:
        CONDA_ENV
    shell:
        shell_of("external", name="{wildcards.name}")
