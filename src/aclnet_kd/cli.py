"""The `aclnet` command: one subcommand per pipeline stage.

Each stage module exposes ``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only
when their subcommand runs, so `aclnet --help` stays fast and one broken stage cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from aclnet_kd.errors import AclnetError

# subcommand -> (module, one-line help), in pipeline order.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("aclnet_kd.data.prepare", "generate or adapt a dataset, validate it and build its cache"),
    "train": ("aclnet_kd.train.cli", "train the teacher, the plain student or the distilled student"),
    "predict": ("aclnet_kd.deploy.predict_command", "write saliency maps or defect masks from a checkpoint or an "
                "ONNX export"),
    "evaluate": ("aclnet_kd.evaluate.evaluate", "score saliency maps with PySODMetrics"),
    "external": ("aclnet_kd.evaluate.external", "measure a row readers bring (released weights or maps; params external)"),
    "export": ("aclnet_kd.deploy.export", "export a checkpoint to ONNX (sigmoid inside, JSON sidecar), verified"),
    "complexity": ("aclnet_kd.measure.complexity", "count parameters and MACs of a model"),
    "latency": ("aclnet_kd.measure.latency", "time a model at batch 1 on this CPU (ms/image, for Table I)"),
    "tables": ("aclnet_kd.report.tables", "write Table I / Table II, reported against reproduced"),
    "figures": ("aclnet_kd.report.figures", "write PR curves, qualitative grids and training curves"),
    "page": ("aclnet_kd.report.page", "write results/index.html: tables, verdicts, figures, provenance (offline)"),
    "report-landing": ("aclnet_kd.report.landing", "make the Snakemake report open on results/index.html"),
    "dvc-yaml": ("aclnet_kd.workflow.dvc_yaml", "render dvc.yaml from the workflow plan (--check: compare)"),
    "params": ("aclnet_kd.workflow.presets", "merge and check params files; --dvc-set: presets as `dvc exp run -S` args"),
}


def _top_level_help() -> str:
    lines = ["usage: aclnet <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "Run `aclnet <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"aclnet: unknown command {command!r}\n\n{_top_level_help()}", file=sys.stderr)
        return 2
    module_name, help_text = SUBCOMMANDS[command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"aclnet {command}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.main(args) or 0)
    except AclnetError as err:
        print(f"aclnet {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
