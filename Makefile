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

unit: $(STAMP) chromium
	$(BIN)/python -m pytest

test: lint types unit

# The main job on the bundled examples. Each step checks its exit code: 0 where nothing may be found,
# 1 where the example is built to fail.
OUT := build/demo
demo: $(STAMP) chromium
	mkdir -p $(OUT)
	$(BIN)/python examples/build_examples.py
	@echo "== 1. pre-deployment: the clean digits function passes (exit 0)"
	$(BIN)/sas scan examples/aws-digits
	@echo "== 2. the same function with planted problems fails (exit 1): model, code, dependencies, template"
	$(BIN)/sas scan examples/vulnerable; test $$? -eq 1
	@echo "== 3. as a deployment zip, with the clean function's layer view: paths inside archives chain with '!'"
	rm -f $(OUT)/vulnerable.zip && cd examples/vulnerable && ../../$(BIN)/python -m zipfile -c ../../$(OUT)/vulnerable.zip .
	$(BIN)/sas scan $(OUT)/vulnerable.zip --fail-on critical --format markdown > $(OUT)/vulnerable.md; test $$? -eq 1
	$(BIN)/sas scan examples/aws-digits --layer examples/vulnerable --format json -o $(OUT)/layered.json; test $$? -eq 1
	@echo "== 4. deployment configuration on three clouds: misconfigured (exit 1) and clean (exit 0)"
	for d in aws-sam aws-serverless aws-terraform azure-functions gcp-terraform; do \
	  $(BIN)/sas scan examples/iac/$$d-bad --fail-on high > $(OUT)/iac-$$d-bad.txt; test $$? -eq 1 || exit 1; \
	  $(BIN)/sas scan examples/iac/$$d-good --fail-on high > /dev/null || exit 1; \
	done
	$(BIN)/sas scan examples/iac/aws-sam-bad; test $$? -eq 1
	@echo "== 5. sign what was scanned, verify it, and write the SBOM"
	rm -f $(OUT)/signer.key $(OUT)/signer.pub
	$(BIN)/sas keygen --out $(OUT)/signer
	$(BIN)/sas manifest build examples/aws-digits --key $(OUT)/signer.key --out $(OUT)/aws-digits.manifest.json --fail-on high
	$(BIN)/sas manifest verify examples/aws-digits --manifest $(OUT)/aws-digits.manifest.json --pub $(OUT)/signer.pub
	$(BIN)/sas scan examples/aws-digits --format cyclonedx -o $(OUT)/aws-digits.cdx.json
	@echo "== 6. runtime: the shielded function under benign traffic and attacks, recorded in a signed ledger"
	$(BIN)/python examples/demo/attack_demo.py $(OUT)/runtime
	@echo "== 7. forensics: verify the ledger, list incidents, write the report and its screenshot"
	$(BIN)/sas forensics verify $(OUT)/runtime/ledger.db --pub $(OUT)/runtime/ledger.pub --anchor sqlite:$(OUT)/runtime/anchor.db
	$(BIN)/sas forensics incidents $(OUT)/runtime/ledger.db
	$(BIN)/sas forensics report $(OUT)/runtime/ledger.db --html $(OUT)/runtime/report.html --pub $(OUT)/runtime/ledger.pub --anchor sqlite:$(OUT)/runtime/anchor.db
	/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --no-first-run --hide-scrollbars --window-size=1280,1600 --screenshot=$(CURDIR)/$(OUT)/runtime/report.png file://$(CURDIR)/$(OUT)/runtime/report.html 2>/dev/null
	@echo "demo outputs in $(OUT)/ (report: $(OUT)/runtime/report.html, screenshot: $(OUT)/runtime/report.png)"

# Every performance figure the README quotes; each script builds its own inputs and prints its figures.
bench: $(STAMP)
	$(BIN)/python benchmarks/scan_models.py
	$(BIN)/python benchmarks/scan_model_formats.py 256
	$(BIN)/python benchmarks/walk_archives.py --size-mib 1024
	$(BIN)/python benchmarks/scan_package.py
	$(BIN)/python benchmarks/scan_iac.py
	$(BIN)/python benchmarks/manifest.py
	$(BIN)/python benchmarks/runtime_overhead.py
	$(BIN)/python benchmarks/minimal_request_path.py
	$(BIN)/python benchmarks/detector_overhead.py
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/sas bench detect --out build/bench-detect.json

clean:
	rm -rf $(VENV) build dist *.egg-info
