# Shared by every rule file: the config's plan (deepsea.dag.plan: the model runs, input functions and
# targets) and the file names (deepsea.dag.paths). The rules import nothing else from the package.
import sys
from pathlib import Path

from snakemake.logging import logger

from deepsea.dag import jobs, paths
from deepsea.dag.gpu_slots import job_environment
from deepsea.dag.plan import Plan, name_pattern, preinit_option

CONDA_CPU = "../../envs/deepsea-cpu.yaml"  # used with --sdm conda; paths are relative to this file
CONDA_GPU = "../../envs/deepsea-cuda.yaml"

# Jobs run the `deepsea` command: the interpreter running Snakemake first on PATH; GPU jobs share the GPU slots.
shell.prefix(job_environment(workflow, sys.executable))


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    subset=r"train|valid|test",
    seed=r"\d+",
    name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


plan = Plan(config)  # checks the config's cross-key rules before any job is planned
