"""The workflow plan (one DAG for Snakemake and DVC) and the dvc.yaml renderer."""
