# Two entry points for a fresh machine: `make quickstart` and `make test`. Both create the
# virtualenv on first use and are safe to re-run (install is skipped while pyproject.toml
# is unchanged).
#
# torch: the default is the 2.13.0 wheel. On a CPU-only machine with a local wheelhouse
# that is the CPU build; on Linux x86_64 from PyPI it is the CUDA build. For a specific
# CUDA build: make install TORCH_SPEC="torch==2.13.0" PIP_TORCH_ARGS="--index-url <pytorch index>"

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.sweepctl-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install quickstart test test-fast lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(PIP_TORCH_ARGS)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

quickstart: install
	$(BIN)/sweepctl validate sweeps/quickstart.yaml
	$(BIN)/sweepctl launch sweeps/quickstart.yaml --if-exists resume
	$(BIN)/sweepctl export quickstart --format yaml

# lint-imports and mypy walk folders, so they read a symlinked `sweepctl/` tree of the
# checkout (.ci/stage_package.py); the package-dir mapping itself is for Python's imports.
STAGED := build/staged

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python .ci/stage_package.py $(STAGED) >/dev/null
	cd $(STAGED) && PYTHONPATH=. ../../$(BIN)/lint-imports --config ../../pyproject.toml
	cd $(STAGED) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p sweepctl

test: lint
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -ra -m "not integration"

bench: install
	mkdir -p bench/results
	$(BIN)/python bench/trial_throughput.py --train-rows 2000 --epochs 1 --json bench/results/trial_throughput.json

clean:
	rm -rf $(VENV) sweepctl-runs .pytest_cache
