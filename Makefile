# Two commands for a newcomer: `make demo` (the whole pipeline) and `make test`.
# Both create .venv on first use. torch goes in first as the 2.13 CPU wheel when
# the venv has none: PyPI's Linux torch is a CUDA build of several GB, so the wheel
# comes from PyTorch's CPU index (2.13.0+cpu ranks above PyPI's 2.13.0), torch alone
# (--no-deps: its dependencies come with odernn's, from PyPI). A user's own CUDA
# torch in an existing environment is kept.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.odernn-installed
TORCH ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup demo test test-gpu fuzz lint notebooks clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet --no-deps \
		--extra-index-url $(TORCH_INDEX) "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/odernn demo --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The CUDA path (tests marked gpu, left out of `make test`): run on a machine with a GPU.
test-gpu: $(STAMP)
	ODERNN_GPU_TESTS=1 $(BIN)/python -m pytest -q -m gpu

# The randomised exploration of the property tests (ten times the examples, fresh each run):
# run before each submission; pin what it finds with @example.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_properties.py tests/test_store.py \
		tests/test_statistics.py tests/test_random_streams.py tests/test_forcing_rows.py

lint: $(STAMP)
	$(BIN)/ruff check odernn cli tests benchmarks notebooks docs

notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb notebooks/[0-9]*.py

clean:
	rm -rf $(VENV) odernn-demo .pytest_cache
