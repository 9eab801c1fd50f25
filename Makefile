# deepsea: set-up and everyday commands. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
CORES ?= all
# The rules call the `deepsea` command: put the venv first on PATH for every recipe.
export PATH := $(BIN):$(PATH)

.PHONY: help install demo-data run report test test-fast test-slurm lint docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build on disk here; an open range would pull GBs of CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install deepsea with its dependencies

demo-data: install  ## generate the synthetic demo data set (data/demo)
	$(BIN)/snakemake --cores $(CORES) data/demo/manifest.json

run: demo-data  ## run the whole DAG on the demo data and print its wall time
	@start=$$(date +%s); \
	$(BIN)/snakemake --cores $(CORES) final_submission && \
	echo "make run: final_submission done in $$(( $$(date +%s) - start )) s -> results/submission/submission.csv.gz"

report: install  ## the results report results/report.html (runs whatever final_submission still lacks first)
	$(BIN)/snakemake --cores $(CORES) final_submission
	$(BIN)/snakemake --report results/report.html final_submission
	@echo "make report: results/report.html (self-contained; open it in a browser)"

test: install  ## unit, property and end-to-end tests, two complete demo runs among them (SLURM: make test-slurm)
	$(BIN)/pytest -m "not slurm"

test-fast: install  ## the tests without the end-to-end Snakemake runs
	$(BIN)/pytest -m "not slow and not slurm"

test-slurm: install  ## start a localhost SLURM (root, apt), run the profile test on it, stop it
	bash tests/workflow/slurm/setup_localhost_slurm.sh
	$(BIN)/pytest -m slurm tests/workflow/slurm; status=$$?; bash tests/workflow/slurm/teardown_localhost_slurm.sh; exit $$status

lint: install  ## ruff, mypy, snakefmt and snakemake --lint
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

docs: install  ## remake docs/configuration.md (the config schema), docs/rules.md and docs/rulegraph.png (the rules)
	$(BIN)/deepsea config-docs --schema workflow/schemas/config.schema.yaml --out docs/configuration.md
	$(BIN)/deepsea rule-docs --rules workflow/rules --out docs/rules.md
	$(BIN)/snakemake --dag -- final_submission > docs/rulegraph.dot
	$(BIN)/deepsea plot-rulegraph --dot docs/rulegraph.dot --out docs/rulegraph.png
	rm docs/rulegraph.dot

clean:  ## remove the results and Snakemake's records of them (not the venv or the data)
	rm -rf results .snakemake
