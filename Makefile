# Quick start:  make demo   (set up .venv, run the main job on the bundled genomes)
#               make test   (set up .venv, run the test suite)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; set TORCH_SPEC (and PIP_EXTRA_INDEX_URL) for a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2 -m "not slow"

.PHONY: setup demo test test-all bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $@

demo: setup
	$(VENV)/bin/dnatlas demo --out runs/demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -n 2

bench: setup
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf runs/demo .pytest_cache
