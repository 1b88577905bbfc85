# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint types unit demo bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned, so nothing pulls the CUDA build
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium, for the forensics report test (headless screenshot); a no-op when already there.
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint types unit

demo: $(STAMP)
	$(BIN)/python examples/build_examples.py
	-$(BIN)/sas scan examples/aws-digits
	-$(BIN)/sas scan examples/vulnerable
	$(BIN)/sas scan examples --format json --fail-on critical > /dev/null || test $$? -eq 1

bench: $(STAMP)
	$(BIN)/python benchmarks/scan_models.py

clean:
	rm -rf $(VENV) build dist *.egg-info
