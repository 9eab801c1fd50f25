#!/usr/bin/env bash
# Snakemake runs this inside a freshly created conda environment: install the deepsea package from the workflow
# checkout (the working directory Snakemake runs in, or DEEPSEA_ROOT) without touching the conda-managed deps.
set -euo pipefail
pip install --no-deps --no-build-isolation -e "${DEEPSEA_ROOT:-.}"
