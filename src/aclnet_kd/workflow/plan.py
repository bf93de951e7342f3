"""The pipeline's DAG, written once: each stage's command, the params keys it reads, the `aclnet`
subcommands it runs (its code deps follow from their imports) and the path templates of its files.

Both front ends follow from here: the Snakemake rules (workflow/rules/*.smk) import this module, and
``aclnet dvc-yaml`` renders dvc.yaml from it (aclnet_kd.workflow.dvc_yaml). Templates are ``str.format``
strings; each front end fills the fields its own way (Snakemake: ``{wildcards.track}``, DVC:
``${item.seed}``). Standard library only: the Snakefile imports it on every `snakemake -n`.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from aclnet_kd.config import lookup
from aclnet_kd.constants import MEASURE_SIZE, ROLES  # noqa: F401  (ROLES: params `models.<role>`, re-export)
from aclnet_kd.workflow.runs import (
    ABLATIONS, EXTERNAL, FIXED, KD_METHODS, KINDS, PAPER_RUNS, RELEASE_RUN, SEEDED_RUNS, TEACHER, RunKind,
    configured_runs, trained_runs,
)

PARAMS_FILE = "params.yaml"  # what DVC's commands read; a DVC experiment sets a preset's values in it (-S)
# What every job of a Snakemake run reads: params.yaml with the run's presets (--configfile) merged in, rewritten
# only when that changes. One path for every preset, so a job's command does not depend on which preset supplied
# its values; Snakemake reruns a job when a value it reads changes (its `params:`), as DVC does.
RUN_PARAMS = "results/params.yaml"

# ---- paths (docs/architecture.md, "Paths") ----
PREPARED_ROOT = "data/prepared"
TRAIN_ROOT = "results/train"
PREDICT_ROOT = "results/predict"
EVAL_ROOT = "results/evaluate"
COMPLEXITY_DIR = "results/complexity"
LATENCY_DIR = "results/latency"
TABLES_DIR = "results/tables"
FIGURES_DIR = "results/figures"
PAGE = "results/index.html"  # the one self-contained results page (aclnet page; the Snakemake report opens on it)
# Every job's log (its commands' output, appended across attempts) and Snakemake's benchmark of it, under
# these roots by the same name: the stage (train_*: "train"), then the job's part of its folder (log_name).
LOGS_ROOT = "results/logs"
BENCHMARKS_ROOT = "results/benchmarks"

RUN_SUBDIR = "{track}/{run}/seed{seed}"  # one trained model, under each results root
PREPARED = PREPARED_ROOT + "/{dataset}"
TRAIN_DIR = f"{TRAIN_ROOT}/{RUN_SUBDIR}"
PREDICT_DIR = f"{PREDICT_ROOT}/{RUN_SUBDIR}/{{split}}"
EVAL_DIR = f"{EVAL_ROOT}/{RUN_SUBDIR}/{{split}}"
COMPLEXITY = COMPLEXITY_DIR + "/{model}.json"
LATENCY = LATENCY_DIR + "/{model}.json"
CHECKPOINT = TRAIN_DIR + "/best.pt"
# params `external` (issue 20): rows readers bring, one `aclnet external` folder each. Under EVAL_ROOT, which
# the report stages already read, so both front ends run them before the tables; `external` is no track.
EXTERNAL_ROOT = EVAL_ROOT + "/external"
EXTERNAL_DIR = EXTERNAL_ROOT + "/{name}"
RUN_RECORD = TRAIN_DIR + "/run.json"  # holds the operating point that `aclnet evaluate --run-record` scores

# ---- the report's file stems: a table is <stem>.csv + .md (+ .tex: LATEX_TABLES), a figure <stem>.png + .pdf ----
# The paper's tables: track -> (file stem, table number). The tracks are fixed because each feeds one table.
PAPER_TABLES = {"rail": ("table1", "I"), "sod": ("table2", "II")}
DIFFERENCES = "differences"  # S* − S and T − S with intervals, every track: written with the paper tables
OPERATING_POINT = "operating_point"  # the binary metrics at each run's operating point, every track: likewise
ABLATION_TABLE = "ablation_{track}"  # the KD-loss ablations of one track (params ablations)
KD_METHODS_TABLE = "table3_kd_methods"  # Table III, every track (params kd_methods)
PR_FIGURE = "pr_{track}_{split}"  # precision-recall curves of one test split
THRESHOLD_FIGURES = {"fmeasure": "fcurve_{track}_{split}",  # curves.csv column -> its curve against the
                     "emeasure": "ecurve_{track}_{split}"}  # threshold, one test split
QUALITATIVE_FIGURE = "qualitative_{track}"  # inputs, GT and maps of a few test images
TRAINING_FIGURE = "training_{track}"  # the dvclive logs per epoch
KD_METHODS_FIGURE = "kd_methods_{track}"  # Table III's differences with their intervals
TRACKS = tuple(PAPER_TABLES)
# What the runs are (name, role, seeds, KD terms, which tables take them): the run table, workflow/runs.py.


def under(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or inside it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def template_regex(template: str) -> re.Pattern:
    """A template as a regex with one named group per field (``seed{seed}`` -> ``seed(?P<seed>...)``)."""
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(re.escape(p) if i % 2 == 0 else rf"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{pattern}$")


SEED_DIR = template_regex(RUN_SUBDIR.rsplit("/", 1)[1])  # "seed{seed}": the folder name of one seed


@dataclass(frozen=True)
class Output:
    """One declared output (a path template). ``kind``: out, metric (a small JSON) or plot (a small CSV,
    or a folder of TSVs: the data of dvc.yaml's top-level plots); DVC keeps metrics and plots in git
    (``cache: false``)."""

    path: str
    kind: str = "out"
    folder: bool = False


@dataclass(frozen=True)
class Stage:
    """A kind of job. ``commands`` run back to back; their fields are paths, wildcards or params values
    (``values``: field -> params key, interpolated by each front end)."""

    name: str
    commands: tuple[str, ...]
    reads: tuple[str, ...]  # params keys (templates over the same fields as the commands)
    subcommands: tuple[str, ...]  # `aclnet` subcommands run: code deps are their imports, + LOADS (job_code)
    folder: str = ""  # the job's own folder or file: the commands' ``{out}``
    outputs: tuple[Output, ...] = ()
    values: dict[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # templates; a results root stands for every output under it
    log_group: str = ""  # the folder of its logs and benchmarks under their roots (default: its name)

    @property
    def all_reads(self) -> tuple[str, ...]:
        """``reads`` and the params keys of ``values`` (a value in the command is read too)."""
        return self.reads + tuple(key for key in self.values.values() if key not in self.reads)

    @property
    def log_name(self) -> str:
        """A job's log and benchmark name: the log group, then the part of its folder from the first field
        on, suffix dropped (``train/{track}/{run}/seed{seed}``); a single job's is the group alone."""
        parts = self.folder.split("/")
        first = next((i for i, part in enumerate(parts) if "{" in part), len(parts))
        job = "/".join(parts[first:]).split(".")[0]
        return "/".join(filter(None, (self.log_group or self.name, job)))


# A training's resume state (last.pt), not a result: `aclnet train` writes it and deletes it (a finished run's
# keeps only its record). Neither front end declares it, so neither requires, deletes, caches or pushes it: a
# killed job resumes from it, and a clone that pulled the results (without it) is complete in both.
RESUME_STATE = "last.pt"
TRAIN_FILES = ("best.pt", "config.yaml", "train.log", "run.json", "dvclive/params.yaml")
# The plot data (kind "plot") are drawn by dvc.yaml's top-level plots (dvc_plots), T, S and S* overlaid.
TRAIN_OUTPUTS = tuple(Output(f"{TRAIN_DIR}/{name}") for name in TRAIN_FILES) + (
    Output(f"{TRAIN_DIR}/dvclive/metrics.json", "metric"),
    Output(f"{TRAIN_DIR}/dvclive/plots", "plot", True),  # one TSV per metric (dvclive)
)
EVAL_OUTPUTS = (
    Output(PREDICT_DIR, folder=True),  # the saliency maps
    Output(f"{EVAL_DIR}/metrics.json", "metric"),
    Output(f"{EVAL_DIR}/curves.csv", "plot"),
    Output(f"{EVAL_DIR}/per_image.csv"),
)
DVCLIVE_TSV = TRAIN_DIR + "/dvclive/plots/metrics/{name}.tsv"  # dvclive's file of the logged metric {name}
_LAUNCHER = {"launcher": "compute.launcher"}
# --restart-finished: last.pt survives a rerun (no front end declares it, so that a preempted job resumes from it);
# a finished run found there is trained again, since the DAG reruns a training only when its inputs changed.
_TRAIN = ("{launcher} train --role %s --kd %s --data {data} --out {out} {params} --seed {seed} --track {track} "
          "--restart-finished")
_TRAIN_READS = ("train", "models.%s", "tracks.{track}.train", "operating_point")  # + compute.launcher (a value)


def _train(kind: RunKind) -> Stage:
    """The training stage of a kind of run (the run table's role and KD terms)."""
    command = _TRAIN % (kind.role, "on" if kind.kd else "off")
    reads = tuple(key % kind.role if "%" in key else key for key in _TRAIN_READS)
    inputs: tuple[str, ...] = ("{data}",)
    if kind.kd:  # only distilled students read `kd`: KD settings never invalidate the other runs
        options = " ".join(filter(None, ("--teacher {teacher}", kind.kd_option)))
        command = command.replace(" --data ", f" {options} --data ")
        reads += tuple(filter(None, (kind.kd_reads, "kd")))
        inputs += ("{teacher}",)
    return Stage(kind.stage, (command,), reads, ("train",), TRAIN_DIR, TRAIN_OUTPUTS, _LAUNCHER, inputs,
                 log_group="train")


STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("prepare", ("aclnet prepare {params} --dataset {dataset} --out {out}",), ("datasets.{dataset}",),
          ("prepare",), PREPARED, (Output(PREPARED, folder=True),)),
    *(_train(kind) for kind in KINDS if kind.trained),
    Stage("predict_evaluate", (
        "aclnet predict --checkpoint {checkpoint} --dataset {data} --split {split} --out {pred} "
        "--protocol {protocol} --batch-size {batch_size}",
        "aclnet evaluate --pred {pred} --gt {data} --split {split} --out {out}/metrics.json "
        "--curves {out}/curves.csv --per-image {out}/per_image.csv --workers {workers} --run-record {record}",
    ), (), ("predict", "evaluate"),
        EVAL_DIR, EVAL_OUTPUTS,
        {"protocol": "predict.protocol", "batch_size": "predict.batch_size", "workers": "evaluate.workers"},
        ("{checkpoint}", "{data}")),
    Stage("complexity", (f"aclnet complexity {{params}} --role {{role}} --size {MEASURE_SIZE} --out {{out}}",),
          ("models.{role}",), ("complexity",), COMPLEXITY, (Output(COMPLEXITY, "metric"),)),
    # Table I's ms/img; Snakemake reserves compute.latency_cores for it (a scheduling setting, not a read)
    Stage("latency", (f"aclnet latency {{params}} --role {{role}} --size {MEASURE_SIZE} --warmup {{warmup}} "
                      "--iters {iters} --out {out}",),
          ("models.{role}",), ("latency",), LATENCY, (Output(LATENCY, "metric"),),
          {"warmup": "latency.warmup", "iters": "latency.iters"}),
    Stage("tables", (f"aclnet tables {{params}} --train-root {TRAIN_ROOT} --eval-root {EVAL_ROOT} "
                     f"--complexity-dir {COMPLEXITY_DIR} --latency-dir {LATENCY_DIR} --out-dir {TABLES_DIR}",),
          ("seeds", "tracks", "ablations", "kd_methods", "external", "tables"), ("tables",), TABLES_DIR, (Output(TABLES_DIR, folder=True),),
          inputs=(EVAL_ROOT, TRAIN_ROOT, COMPLEXITY_DIR, LATENCY_DIR)),
    Stage("figures", (f"aclnet figures {{params}} --train-root {TRAIN_ROOT} --eval-root {EVAL_ROOT} "
                      f"--pred-root {PREDICT_ROOT} --data-root {PREPARED_ROOT} --out-dir {FIGURES_DIR}",),
          ("seeds", "tracks", "kd_methods", "external", "figures"), ("figures",), FIGURES_DIR, (Output(FIGURES_DIR, folder=True),),
          inputs=(EVAL_ROOT, PREDICT_ROOT, TRAIN_ROOT, PREPARED_ROOT)),
    # one row readers bring: predict (a checkpoint entry) and evaluate every test split of its track
    Stage("external", (f"aclnet external {{params}} --name {{name}} --data-root {PREPARED_ROOT} --out {{out}}",),
          ("external.{name}", "tracks.{track}", "models", "train", "predict.batch_size", "evaluate.workers"),
          ("external",), EXTERNAL_DIR, (Output(EXTERNAL_DIR, folder=True),), inputs=(PREPARED_ROOT,)),
    # the tables, verdicts and figures on one page, with the records' provenance (commits, packages, machines)
    Stage("page", (f"aclnet page {{params}} --tables-dir {TABLES_DIR} --figures-dir {FIGURES_DIR} "
                   f"--train-root {TRAIN_ROOT} --eval-root {EVAL_ROOT} --out {PAGE}",),
          ("tracks", "ablations", "kd_methods"), ("page",), PAGE, (Output(PAGE),),
          inputs=(TABLES_DIR, FIGURES_DIR, TRAIN_ROOT, EVAL_ROOT)),
)}
# tables and figures also read the source of each track's dataset (synthetic or real): added per track.
REPORT_SOURCE = "datasets.{dataset}.source"
REPORT_STAGES = ("tables", "figures", "page")


# ---- code: the source files a job runs (aclnet_kd.workflow.code), per job, in both front ends ----
# Its `aclnet` subcommands' modules and all they import, plus the modules it loads by name: a distilled
# student's loss terms of weight > 0 (their builders in losses/registry.py), a prepare job its dataset
# source's generator (constants.SYNTHETIC_GENERATORS). The teacher, the plain and the distilled students share
# `aclnet train`, so the imports alone cannot tell them apart: LOADS says it per job.
def _module(spec: str) -> str:
    return spec.partition(":")[0]  # "module:function" -> module


def _loss_modules(weights: dict) -> list[str]:
    from aclnet_kd.losses.registry import REGISTRY

    return [_module(REGISTRY[name].builder) for name, weight in weights.items() if name in REGISTRY and weight > 0]


def _ablation_losses(params: dict, fields: dict) -> list[str]:
    from aclnet_kd.train.recipe import parse_kd_weights  # --kd-weights over kd.weights, as `aclnet train` does

    return _loss_modules({**params["kd"]["weights"], **parse_kd_weights(params["ablations"][fields["run"]])})


def _kd_method_losses(params: dict, fields: dict) -> list[str]:
    from aclnet_kd.train.recipe import kd_method_weights

    return _loss_modules(kd_method_weights(params, fields["run"]))


def _generator(params: dict, fields: dict) -> list[str]:
    from aclnet_kd.constants import SYNTHETIC_GENERATORS

    source = params["datasets"][fields["dataset"]]["source"]
    return [_module(SYNTHETIC_GENERATORS[source])] if source in SYNTHETIC_GENERATORS else []


def _generators() -> list[str]:
    from aclnet_kd.constants import SYNTHETIC_GENERATORS

    return list(SYNTHETIC_GENERATORS.values())


def _loss_builders() -> list[str]:
    from aclnet_kd.losses.registry import TERMS

    return [term.builder for term in TERMS]


@dataclass(frozen=True)
class Loads:
    """What a stage's jobs load by name: ``job(params, fields)`` the modules of one job; ``possible()`` every
    module spec one of them may load, whatever the params."""

    job: Callable[[dict, dict], list[str]]
    possible: Callable[[], list[str]]


# stage -> what its jobs load by name
LOADS: dict[str, Loads] = {
    "prepare": Loads(_generator, _generators),
    RELEASE_RUN.stage: Loads(lambda params, fields: _loss_modules(params["kd"]["weights"]), _loss_builders),
    ABLATIONS.stage: Loads(_ablation_losses, _loss_builders),
    KD_METHODS.stage: Loads(_kd_method_losses, _loss_builders),
}


def loadable(stage: Stage) -> list[str]:
    """Every module a job of ``stage`` may load by name, whatever the params (DVC's stage groups over params
    values, whose deps are fixed before it reads them)."""
    return sorted({_module(spec) for spec in LOADS[stage.name].possible()}) if stage.name in LOADS else []


def dvc_loads(stage: Stage, fields: dict, foreach: Any, matrix: Any, params: dict) -> list[str]:
    """What the jobs of a dvc.yaml stage group load by name. A group of one job (no foreach or matrix, e.g.
    ``prepare_<track>``): what that job loads, its fields read from ``params`` (params.yaml at render time),
    so a changed dataset source needs a new render, which `aclnet dvc-yaml --check` asks for. A foreach or
    matrix group: every module its stage may load, since DVC fixes a group's deps before it reads the params
    values (weights, run names) that pick them. ``fields``, ``foreach``, ``matrix``: the group's (dvc_groups)."""
    if stage.name not in LOADS:
        return []
    if foreach is None and matrix is None:
        return LOADS[stage.name].job(params, {key: _dvc_resolve(value, params) for key, value in fields.items()})
    return loadable(stage)


def code_files(stage: Stage, loaded: tuple[str, ...] = ()) -> list[str]:
    """The source files (repository paths, module by module) a job of ``stage`` runs when it loads the
    modules ``loaded`` by name."""
    return list(_code_files(stage.subcommands, tuple(sorted(loaded))))


@functools.lru_cache(maxsize=None)
def _code_files(subcommands: tuple[str, ...], loaded: tuple[str, ...]) -> tuple[str, ...]:
    from aclnet_kd.cli import SUBCOMMANDS
    from aclnet_kd.workflow.code import module_closure, module_paths

    return tuple(module_paths(module_closure([SUBCOMMANDS[name][0] for name in subcommands] + list(loaded))))


def job_code(stage: Stage, params: dict, **fields: Any) -> list[str]:
    """The source files one job of ``stage`` runs, for ``params``: its code dependencies."""
    loads = LOADS.get(stage.name)
    return code_files(stage, tuple(loads.job(params, fields)) if loads else ())


# ---- the jobs of each stage, for the params of one run (Snakemake) ----
def runs(params: dict) -> list[tuple[str, int]]:
    """(run, seed) of every trained model of a track, teacher first (the run table's order)."""
    return trained_runs(params)


def kd_methods(params: dict) -> dict[str, dict]:
    """params ``kd_methods`` ({} when absent: the section is optional)."""
    return configured_runs(params, KD_METHODS)


def external(params: dict) -> dict[str, dict]:
    """params ``external`` ({} when absent: the section is optional)."""
    return configured_runs(params, EXTERNAL)


def _train_jobs(kind: RunKind) -> Callable[[dict], list[dict]]:
    """The jobs of a kind's training stage: per track, run and seed (a configured run's entry as the field
    run table's ``entry_field`` names, e.g. an ablation's --kd-weights)."""
    field = kind.entry_field

    def jobs(params: dict) -> list[dict]:
        seeds = params["seeds"] if kind.all_seeds else params["seeds"][:1]
        named = configured_runs(params, kind) if kind.configured else {kind.name: None}
        return [dict(track=track, run=run, seed=seed, **({field: entry} if field else {}))
                for track in params["tracks"] for run, entry in named.items() for seed in seeds]
    return jobs


def _evaluate_jobs(params: dict) -> list[dict]:
    return [dict(track=track, run=run, seed=seed, split=split) for track, spec in params["tracks"].items()
            for run, seed in runs(params) for split in spec["test_splits"]]


# stage -> its jobs' fields, from the params. Adding a stage: one entry here, one in DVC_GROUPS.
JOBS: dict[str, Callable[[dict], list[dict]]] = {
    "prepare": lambda p: [dict(dataset=d) for d in dict.fromkeys(t["dataset"] for t in p["tracks"].values())],
    **{kind.stage: _train_jobs(kind) for kind in KINDS if kind.trained},
    "predict_evaluate": _evaluate_jobs,
    "complexity": lambda p: [dict(role=role, model=p["models"][role]["name"]) for role in ROLES],
    "latency": lambda p: [dict(role=role, model=p["models"][role]["name"]) for role in ROLES],
    "external": lambda p: [dict(name=name, track=entry["track"]) for name, entry in external(p).items()],
    "tables": lambda p: [{}],
    "figures": lambda p: [{}],
    "page": lambda p: [{}],
}


# ---- the same jobs as dvc.yaml stage groups: values DVC reads from params.yaml when it runs ----
# group -> (stage, fields in DVC syntax, foreach, matrix). One group per track where a track's dataset or
# test splits drive the loop: DVC cannot look up `tracks.<track>.dataset` from a looped track name.
def _track_groups(track: str) -> dict[str, tuple[str, dict, Any, Any]]:
    data = PREPARED.format(dataset=f"${{tracks.{track}.dataset}}")
    first = "${seeds[0]}"
    train = dict(track=track, data=data, teacher=CHECKPOINT.format(track=track, run=TEACHER.name, seed=first))
    splits = f"${{tracks.{track}.test_splits}}"
    evaluate = dict(track=track, data=data, split="${item.split}")
    ablations, methods = f"${{{ABLATIONS.name}}}", f"${{{KD_METHODS.name}}}"
    once = [kind for kind in FIXED if kind.trained and not kind.all_seeds]  # the teacher: at seeds[0] only
    groups = {f"{kind.stage}_{track}": (kind.stage, dict(train, run=kind.name, seed="${item}" if kind.all_seeds
                                                         else first), "${seeds}" if kind.all_seeds else None, None)
              for kind in FIXED if kind.trained and kind is not TEACHER}  # the teacher: one group, all tracks
    return groups | {
        f"{ABLATIONS.stage}_{track}": (ABLATIONS.stage, dict(train, run="${key}", seed=first, weights="${item}"),
                                       ablations, None),
        f"{KD_METHODS.stage}_{track}": (KD_METHODS.stage, dict(train, run="${item.run}", seed="${item.seed}"),
                                        None, {"run": methods, "seed": "${seeds}"}),
        **{f"predict_evaluate_{kind.name}_{track}": ("predict_evaluate", dict(evaluate, run=kind.name, seed=first),
                                                     None, {"split": splits}) for kind in once},
        f"predict_evaluate_{track}": ("predict_evaluate", dict(evaluate, run="${item.run}", seed="${item.seed}"),
                                      None, {"run": list(SEEDED_RUNS), "seed": "${seeds}", "split": splits}),
        f"predict_evaluate_ablation_{track}": ("predict_evaluate", dict(evaluate, run="${item.run}", seed=first),
                                               None, {"run": ablations, "split": splits}),
        f"predict_evaluate_kd_method_{track}": ("predict_evaluate", dict(evaluate, run="${item.run}",
                                                                         seed="${item.seed}"),
                                                None, {"run": methods, "seed": "${seeds}", "split": splits}),
    }


def dvc_groups() -> dict[str, tuple[str, dict, Any, Any]]:
    """Every dvc.yaml stage group in DAG order: {group: (stage, fields, foreach, matrix)}."""
    # one prepare group per track (not a foreach over tracks): each depends on its own generator (dvc_loads)
    groups: dict[str, tuple[str, dict, Any, Any]] = {
        f"prepare_{track}": ("prepare", dict(dataset=f"${{tracks.{track}.dataset}}"), None, None)
        for track in TRACKS}
    groups |= {
        "complexity": ("complexity", dict(role="${key}", model="${item.name}"), "${models}", None),
        "latency": ("latency", dict(role="${key}", model="${item.name}"), "${models}", None),
        TEACHER.stage: (TEACHER.stage, dict(track="${key}", run=TEACHER.name, seed="${seeds[0]}",
                                            dataset="${item.dataset}"), "${tracks}", None),
    }
    for track in TRACKS:
        groups.update(_track_groups(track))
    groups["external"] = ("external", dict(name="${key}", track="${item.track}"), "${external}", None)
    groups.update({name: (name, {}, None, None) for name in REPORT_STAGES})
    return groups


# ---- the dvc.yaml stages of the params DVC reads, by address: what `dvc commit` takes after a Snakemake run ----
_DVC_EXPR = re.compile(r"\$\{\s*([^}]+?)\s*\}")  # ${tracks.rail.dataset}, ${item.seed}, ${seeds[0]}


def _dvc_str(value: Any) -> str:
    """A value as DVC writes it into a name or a path (dvc.parsing's to_str): booleans lower case."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _dvc_value(expr: str, context: dict) -> Any:
    """The value of one ``${...}`` expression (dotted keys, ``[i]`` indices) in ``context``."""
    value: Any = context
    for part in re.findall(r"[^.\[\]]+", expr):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _dvc_resolve(template: Any, context: dict) -> Any:
    """``template`` with its ``${...}`` filled from ``context``; a template that is one expression keeps
    the value's type (a list, a dict), as DVC's interpolation does."""
    if not isinstance(template, str):
        return template
    whole = _DVC_EXPR.fullmatch(template)
    if whole:
        return _dvc_value(whole.group(1), context)
    return _DVC_EXPR.sub(lambda m: _dvc_str(_dvc_value(m.group(1), context)), template)


def _dvc_iterations(foreach: Any, matrix: Any, params: dict) -> list[tuple[str, dict]]:
    """(name suffix, loop variables) of each stage a group generates, named as DVC names them: a foreach over
    a dict by its keys, over a list of scalars by the values, over a list of dicts or lists by the indices; a
    matrix by its values joined with "-" (a dict or list value by ``<axis><index>``), axes in order."""
    if foreach is not None:
        items = _dvc_resolve(foreach, params)
        if isinstance(items, dict):
            return [(_dvc_str(k), {"key": k, "item": v}) for k, v in items.items()]
        composite = any(isinstance(v, (dict, list)) for v in items)  # (a list has no ${key} in DVC)
        return [(_dvc_str(i if composite else v), {"item": v}) for i, v in enumerate(items)]
    if matrix is None:
        return [("", {})]
    axes = {axis: list(enumerate(_dvc_resolve(values, params))) for axis, values in matrix.items()}
    return [("-".join(f"{axis}{i}" if isinstance(v, (dict, list)) else _dvc_str(v)
                      for axis, (i, v) in zip(axes, combo)), {"item": {a: v for a, (_, v) in zip(axes, combo)}})
            for combo in itertools.product(*axes.values())]


def dvc_addresses(params: dict) -> dict[str, list[str]]:
    """Every stage that dvc.yaml (dvc_groups) defines for ``params`` (params.yaml's values, which DVC reads),
    by its DVC address (``group``, ``group@key``, ``group@a-b-c``), with its output paths (outs, metrics and
    plot data), in DAG order. A params key a group loops over or names that is missing: KeyError."""
    stages: dict[str, list[str]] = {}
    for group, (name, fields, foreach, matrix) in dvc_groups().items():
        outs = [path for path, _ in output_paths(STAGES[name], **fields)]  # in DVC syntax, as in dvc.yaml
        for suffix, loop in _dvc_iterations(foreach, matrix, params):
            context = {**params, **loop}
            stages[f"{group}@{suffix}" if suffix else group] = [_dvc_resolve(path, context) for path in outs]
    return stages


def dvc_addresses_writing(params: dict, written: set[str]) -> list[str]:
    """The DVC addresses (``dvc_addresses``) of the stages with an output that is a path of ``written`` or a
    folder holding one: the stages a run wrote, in DAG order."""
    stages = dvc_addresses(params)
    owner = {out: address for address, outs in stages.items() for out in outs}
    found = set()
    for path in written:  # the path, then each folder above it (thousands of maps: no scan of every out)
        while path:
            if path in owner:
                found.add(owner[path])
            path = path.rpartition("/")[0]
    return [address for address in stages if address in found]


def fill(template: str, **fields: Any) -> str:
    """``template`` with ``fields`` filled in; a field left out is an error naming it."""
    try:
        return template.format(**fields)
    except KeyError as err:
        raise KeyError(f"template {template!r}: no value for field {err}") from None


def output_paths(stage: Stage, **fields: Any) -> list[tuple[str, Output]]:
    """(path, spec) of each output of one job of ``stage``."""
    return [(fill(o.path, **fields), o) for o in stage.outputs]


# Fields that follow from others when a caller leaves them out.
DERIVED = {"data": PREPARED, "checkpoint": CHECKPOINT, "pred": PREDICT_DIR, "record": RUN_RECORD}


def job_fields(stage: Stage, **fields: Any) -> dict[str, Any]:
    """``fields`` completed: ``out`` defaults to the stage's folder, ``DERIVED`` fields to their templates
    filled from the others."""
    fields.setdefault("out", fill(stage.folder, **fields))
    used = " ".join(stage.commands + stage.inputs)
    for name, template in DERIVED.items():
        if name not in fields and f"{{{name}}}" in used:
            fields[name] = fill(template, **fields)
    return fields


def command(stage: Stage, **fields: Any) -> list[str]:
    """The commands of one job."""
    fields = job_fields(stage, **fields)
    return [fill(cmd, **fields) for cmd in stage.commands]


def inputs(stage: Stage, **fields: Any) -> list[str]:
    """The input paths of one job (a results root where the stage reads a whole tree)."""
    fields = job_fields(stage, **fields)
    return [fill(path, **fields) for path in stage.inputs]


def get_key(params: dict, key: str) -> Any:
    """The value of a dotted params key; a key that is not there is a KeyError naming it (a misspelt key
    would otherwise track nothing)."""
    try:
        return lookup(params, key)
    except KeyError as err:
        raise KeyError(f"params key '{err.args[0]}' (of '{key}') does not exist") from None


def reads(stage: Stage, params: dict, **fields: Any) -> dict[str, Any]:
    """{key: value} of the params one job of ``stage`` reads; every key must exist."""
    keys = [fill(key, **fields) for key in stage.all_reads]
    if stage.name in REPORT_STAGES:
        keys[2:2] = [fill(REPORT_SOURCE, dataset=spec["dataset"]) for spec in params["tracks"].values()]
    return {key: get_key(params, key) for key in keys}


def all_outputs(params: dict, skip: tuple[str, ...] = ()) -> list[str]:
    """Every output path of every job (but those of the stages in ``skip``), in plan order."""
    return [path for name, stage in STAGES.items() if name not in skip
            for fields in JOBS[name](params) for path, _ in output_paths(stage, **fields)]


def log_path(stage: Stage) -> str:
    """The template of a job's log (the commands append to it): ``LOGS_ROOT/<log_name>.log``."""
    return f"{LOGS_ROOT}/{stage.log_name}.log"


def benchmark_path(stage: Stage) -> str:
    """The template of a job's benchmark (Snakemake's time and memory): ``BENCHMARKS_ROOT/<log_name>.tsv``."""
    return f"{BENCHMARKS_ROOT}/{stage.log_name}.tsv"


class _Kept(dict):
    def __missing__(self, key: str) -> str:
        return f"{{{key}}}"


def pattern(template: str, **fields: Any) -> str:
    """``template`` with ``fields`` filled in and the others left as ``{field}`` (a Snakemake wildcard)."""
    return template.format_map(_Kept(fields))


def table_stems(params: dict) -> list[str]:
    """The files the tables stage writes (csv + md each): one paper table per track, the differences table,
    ablations if any."""
    stems = [PAPER_TABLES[track][0] for track in params["tracks"] if track in PAPER_TABLES]
    stems += [DIFFERENCES, OPERATING_POINT] if stems else []
    stems += [fill(ABLATION_TABLE, track=track) for track in params["tracks"] if params["ablations"]]
    return stems + ([KD_METHODS_TABLE] if kd_methods(params) else [])


# The tables also written as LaTeX (<stem>.tex, booktabs): the paper's tables and Table III.
LATEX_TABLES = (*(stem for stem, _ in PAPER_TABLES.values()), KD_METHODS_TABLE)


def latex_stems(params: dict) -> list[str]:
    """The tables the tables stage also writes as ``<stem>.tex``."""
    return [stem for stem in table_stems(params) if stem in LATEX_TABLES]


COMPARED_RUNS = PAPER_RUNS  # T, S, S*: the runs the paper's tables and the DVC plots compare
VAL_PLOTS = {"sm": "S-measure", "mae": "MAE"}  # dvclive's validation metrics, <train.val_split>/<key>


def dvc_plots(params: dict) -> list[dict]:
    """dvc.yaml's top-level plots: per track, the PR curve of each test split and the validation Sm and MAE
    per epoch, each with T, S and S* overlaid (every seed its own line). They name the files of ``params``'
    seeds and tracks: DVC cannot loop in this section, so `aclnet dvc-yaml` lists them."""
    plots: list[dict] = []
    for track, spec in params["tracks"].items():
        jobs = [dict(track=track, run=run, seed=seed) for run, seed in runs(params) if run in COMPARED_RUNS]
        for split in spec["test_splits"]:
            files = {fill(f"{EVAL_DIR}/curves.csv", split=split, **job): "precision" for job in jobs}
            plots.append({f"pr_{track}_{split}": {
                "title": f"Precision-recall, {track} / {split}: T, S, S* (one line per seed)", "x": "recall",
                "y": files, "x_label": "Recall", "y_label": "Precision"}})
        val = params["train"]["val_split"]
        for key, name in VAL_PLOTS.items():
            files = {fill(DVCLIVE_TSV, name=f"{val}/{key}", **job): key for job in jobs}
            plots.append({f"val_{key}_{track}": {
                "title": f"Validation {name} per epoch, {track}: T, S, S* (one line per seed)", "x": "step",
                "y": files, "x_label": "Epoch", "y_label": f"{val} {name}"}})
    return plots


def figure_stems(params: dict) -> list[str]:
    """The figures (png + pdf each): PR, F- and E-curves per test split, qualitative and training per track."""
    stems = [fill(template, track=track, split=split) for track, spec in params["tracks"].items()
             for split in spec["test_splits"] for template in (PR_FIGURE, *THRESHOLD_FIGURES.values())]
    stems += [fill(template, track=track) for track in params["tracks"]
              for template in (QUALITATIVE_FIGURE, TRAINING_FIGURE)]
    return stems + ([fill(KD_METHODS_FIGURE, track=track) for track in params["tracks"]] if kd_methods(params) else [])
