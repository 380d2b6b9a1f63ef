# optbench: every target creates the virtual environment when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXPERIMENT ?= logreg_schedules
HOST ?= 127.0.0.1
PORT ?= 5000
RUNS := $(CURDIR)/runs

.PHONY: run test sweep report ui lint bench venv clean

venv: $(STAMP)

# torch is installed first, pinned: 2.13.0 is the CPU build on local disk (an unpinned torch
# pulls a multi-GB CUDA build). The vendored data sets are in the package (optbench/data).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

## run: the default experiment at quick scale (sweep + report); prints the table and where it is
run: $(STAMP)
	$(BIN)/optbench -m experiment=$(EXPERIMENT)

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## sweep: an experiment's sweep (EXPERIMENT=name, ARGS=extra overrides)
sweep: $(STAMP)
	$(BIN)/optbench -m experiment=$(EXPERIMENT) $(ARGS)

## report: tables and plots of an experiment's logged runs
report: $(STAMP)
	$(BIN)/optbench-report experiment=$(EXPERIMENT) $(ARGS)

## ui: the MLflow dashboard over runs/mlflow.db on http://$(HOST):$(PORT)
ui: $(STAMP)
	mkdir -p $(RUNS)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///$(RUNS)/mlflow.db \
		--default-artifact-root $(RUNS)/artifacts --host $(HOST) --port $(PORT) --workers 1

## lint: ruff
lint: $(STAMP)
	$(BIN)/ruff check optbench tests benchmarks

## bench: the performance benchmarks (figures printed and written to runs/benchmarks)
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf runs
