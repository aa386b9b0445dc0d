# Set-up and everyday commands. Each target creates the virtual environment on
# first use, so on a fresh machine `make demo` and `make test` need nothing else.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN = $(VENV)/bin

.PHONY: install demo test lint format clean bench bench-data docs

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The main job: the autoencoder against PCA on the MNIST sample shipped with skae.
demo: install
	$(BIN)/skae compare --data mnist-sample --n-components 2 30 100 --out report/

test: install
	$(BIN)/ruff check skae tests examples bench scripts docs
	$(BIN)/ruff format --check skae tests examples bench scripts docs
	$(BIN)/python -m pytest

# Benchmarks (minutes, not part of the tests): quality against PCA, and speed.
# Both read Fashion-MNIST from Debian's package, installed by bench-data.
FASHION_MNIST = /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
bench-data:
	test -f $(FASHION_MNIST) || { apt-get update && apt-get install -y dataset-fashion-mnist; }

bench: install bench-data
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/onnx_speed.py

# The documentation site, warnings as errors, the gallery run with tiny settings.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	rm -rf docs/_build docs/generated docs/auto_examples
	SKAE_EXAMPLES_FAST=1 $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

lint: install
	$(BIN)/ruff check skae tests examples bench scripts docs
	$(BIN)/ruff format --check skae tests examples bench scripts docs

format: install
	$(BIN)/ruff check --fix skae tests examples bench scripts docs
	$(BIN)/ruff format skae tests examples bench scripts docs

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache docs/_build docs/generated docs/auto_examples docs/_generated
