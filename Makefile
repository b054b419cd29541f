# Quick start:  make demo   (set up .venv with what the main job needs, run it on the bundled genomes)
#               make test   (set up .venv with the dev tools, run the test suite)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; set TORCH_SPEC (and PIP_EXTRA_INDEX_URL) for a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2 -m "not slow"

.PHONY: setup setup-dev demo test test-all lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"

# the main job needs the analysis extra (matplotlib, scikit-learn, scipy) and, for its
# atlas and static explorer, the atlas extra (duckdb, pyarrow)
setup: $(VENV)/.installed-main
$(VENV)/.installed-main: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[analysis,atlas]"
	touch $@

# tests and lint need every extra plus the dev tools
setup-dev: $(VENV)/.installed-dev
$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $@ $(VENV)/.installed-main

demo: setup
	$(VENV)/bin/dnatlas demo --out runs/demo

test: setup-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: setup-dev
	$(PY) -m pytest -n 2

lint: setup-dev
	$(VENV)/bin/ruff check src tests bench

bench: setup-dev
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf runs/demo .pytest_cache
