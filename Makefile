# Set-up and everyday commands. Each target creates the virtual environment on
# first use, so on a fresh machine `make demo` and `make test` need nothing else.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN = $(VENV)/bin
# The oldest versions pyproject.toml accepts, in a second environment.
OLDEST_PYTHON ?= python3.11
OLDEST_VENV ?= .venv-oldest
OLDEST_CONSTRAINTS = .ci/oldest-constraints.txt
# Long MNIST trainings whose outcome depends on torch alone, the same release in
# both sets; `make test-oldest OLDEST_PYTEST_ARGS=` runs them too.
OLDEST_PYTEST_ARGS ?= \
	--deselect tests/test_quality.py::test_default_autoencoder_does_not_lose_to_pca \
	--deselect tests/test_autoencoder.py::test_chapter_model_matches_the_chapter_loop \
	--deselect 'tests/test_examples.py::test_example_runs[quickstart.py]'

.PHONY: install demo test test-kernels test-oldest lint format clean bench bench-data docs mutation

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
	$(BIN)/python scripts/tested_with.py record newest

# The suite again on a second family of kernels: torch's generic ones and MKL
# held to AVX2, which split and sum matrix products in another order than the
# AVX-512 and AMX kernels. A test that passes on one CPU only fails here first.
# The machine's OpenBLAS variables are left as they are.
KERNEL_ENV = ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=AVX2
# The tests that start processes (torch.distributed, marked "ranks") check the
# exchange between ranks, not the kernels: they run in the other two suites.
test-kernels: install
	$(KERNEL_ENV) $(BIN)/python -m pytest -m "not ranks"

# The suite again with every lower bound of pyproject.toml (wheels only, so no
# source build hides a missing wheel); fails if README's table says otherwise.
$(OLDEST_VENV)/.installed: pyproject.toml $(OLDEST_CONSTRAINTS)
	rm -rf $(OLDEST_VENV)
	$(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --only-binary=:all: \
		-c $(OLDEST_CONSTRAINTS) torch -e ".[test]"
	touch $@

test-oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python scripts/tested_with.py record oldest --check
	$(OLDEST_VENV)/bin/python -m pytest $(OLDEST_PYTEST_ARGS)

# Mutation testing of the keep-or-return-PCA rule, now and then (not in CI):
# mutmut mutates skae/_selection.py in a copy of the tree and runs its tests;
# docs/contributing.rst says what survived and why.
MUTATION_DIR = build/mutation
mutation: install
	$(BIN)/python -m pip install --quiet "mutmut==3.8.1"
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	cp -r skae tests pyproject.toml conftest.py $(MUTATION_DIR)/
	printf '[mutmut]\nsource_paths = skae/_selection.py\npytest_add_cli_args_test_selection = tests/test_selection.py\n' > $(MUTATION_DIR)/setup.cfg
	cd $(MUTATION_DIR) && $(CURDIR)/$(BIN)/mutmut run > mutmut.log 2>&1; $(CURDIR)/$(BIN)/mutmut results

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
	rm -rf $(VENV) $(OLDEST_VENV) build *.egg-info .pytest_cache docs/_build docs/generated docs/auto_examples docs/_generated
