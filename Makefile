# optbench: every target creates the virtual environment when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
EXPERIMENT ?= logreg_schedules
# `make run` runs its jobs on 2 warm local workers (LAUNCHER=local: one at a time, in-process)
LAUNCHER ?= parallel
HOST ?= 127.0.0.1
PORT ?= 5000
UI_PORT ?= 5001
RUNS := $(or $(OPTBENCH_RUNS_DIR),$(CURDIR)/runs)
BACKEND ?= sqlite:///$(RUNS)/mlflow.db

.PHONY: run test sweep report server ui lint bench bench-check bench-update ci-gate venv clean

venv: $(STAMP)

# torch is installed first, pinned: 2.13.0 is the CPU build on local disk (an unpinned torch
# pulls a multi-GB CUDA build). The vendored data sets are in the package (optbench/data).
# `run` needs the package alone; `test` adds the test tools and the cluster launchers.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,cluster]'
	touch $@

## run: the default experiment at quick scale (sweep + report); prints the table and where it is
run: $(STAMP)
	$(BIN)/optbench -m experiment=$(EXPERIMENT) hydra/launcher=$(LAUNCHER)

## test: the whole test suite, on 2 processes (pytest-xdist; TEST_JOBS=1 for one). A process
##       that runs out of tests takes queued ones from the other (--dist worksteal): the suite's
##       end-to-end tests wait on servers and subprocesses for uneven times (one back-to-back
##       pair: 406 s vs 472 s with xdist's default scheduling; runs vary by ~10% here)
TEST_JOBS ?= 2
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist worksteal --durations=15

## sweep: an experiment's sweep (EXPERIMENT=name, ARGS=extra overrides)
sweep: $(STAMP)
	$(BIN)/optbench -m experiment=$(EXPERIMENT) $(ARGS)

## report: tables and plots of an experiment's logged runs
report: $(STAMP)
	$(BIN)/optbench-report experiment=$(EXPERIMENT) $(ARGS)

## server: an MLflow tracking server on http://$(HOST):$(PORT) (BACKEND=postgresql://... to change
##         the store); jobs log to it with tracking=server. Stop it with Ctrl-C.
server: $(STAMP)
	mkdir -p $(RUNS)/artifacts
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --app-name optbench \
		--backend-store-uri $(BACKEND) \
		--artifacts-destination $(RUNS)/artifacts --host $(HOST) --port $(PORT) --workers 1

## ui: the MLflow dashboard (optbench ui), read-only, over the store the runs went to
##     (OPTBENCH_RUNS_DIR, MLFLOW_TRACKING_URI; ARGS=tracking.uri=... for another) on
##     http://$(HOST):$(UI_PORT). Stop it with Ctrl-C.
ui: $(STAMP)
	$(BIN)/optbench ui --host $(HOST) --port $(UI_PORT) $(ARGS)

## lint: ruff
lint: $(TEST_STAMP)
	$(BIN)/ruff check optbench tests benchmarks

## bench-check: rerun every quick experiment with a baseline and fail on any regressed metric
bench-check: $(STAMP)
	$(BIN)/optbench-check $(EXPERIMENTS)

## ci-gate: the regression gate of CI: every family's experiment at `ci` scale against
##          benchmarks/baselines/ci; reports and verdicts kept in runs/ci-gate/<experiment>
ci-gate: $(STAMP)
	rm -rf $(RUNS)/ci-gate
	$(BIN)/optbench-check --baselines benchmarks/baselines/ci --keep $(RUNS)/ci-gate

## bench-update: rewrite the baselines (EXPERIMENTS=... to choose; default: every baseline)
bench-update: $(STAMP)
	$(BIN)/optbench-check --update $(EXPERIMENTS)

## bench: the performance benchmarks (figures printed and written to runs/benchmarks)
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf runs
