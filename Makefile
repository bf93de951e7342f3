# Two entry points: `make run` (set up, run the main job) and `make test` (set up, run the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test clean

setup: $(STAMP)

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/aclnet complexity --model aclnet_t --size 256
	$(BIN)/aclnet complexity --model aclnet_s --size 256

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .snakemake results/* data/raw data/prepared
