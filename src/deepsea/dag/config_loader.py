"""The workflow's config outside Snakemake, built exactly as the Snakefile builds it, for commands that take
`--config` (`deepsea train --config my.yaml --model NAME`): the embedded config.yaml of the workflow folder, the
user's files merged over it as `snakemake --configfile` merges them (named sections replaced: config.py), then
validated by the workflow's JSON schema with its defaults filled in (Snakemake's own `validate`), the settings that
follow the data's size resolved (data_size.py), then the cross-key checks (checks.py). The file names are the
Snakefile's (paths.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsea.dag import paths
from deepsea.dag.checks import check_config
from deepsea.dag.config import load_yaml, replace_named_sections
from deepsea.dag.data_size import apply_data_size
from deepsea.dag.runs import all_runs
from deepsea.errors import ConfigError

EMBEDDED = paths.CONFIG
SCHEMA = Path(paths.SCHEMA)


def load_workflow_config(
    workdir: str | os.PathLike[str], user_files: Sequence[str | os.PathLike[str]]
) -> dict[str, Any]:
    """The config a `snakemake --configfile <user_files>` run in `workdir` would see (validated, defaults filled)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import update_config, validate

    workdir = Path(workdir)
    if not (workdir / EMBEDDED).is_file() or not (workdir / SCHEMA).is_file():
        raise ConfigError(
            f"{workdir.resolve()}: not a deepsea workflow folder (no {EMBEDDED} or {SCHEMA}); run the command "
            "where the Snakefile is, or name that folder with --workdir."
        )
    config = load_yaml(workdir / EMBEDDED) or {}
    for path in user_files:
        update_config(config, load_yaml(path) or {})
    replace_named_sections(config, user_files)
    try:
        validate(config, str(workdir / SCHEMA))
    except WorkflowError as err:
        raise ConfigError(f"config ({', '.join(map(str, user_files)) or EMBEDDED}): {err}") from err
    apply_data_size(config)
    check_config(config, *all_runs(config))
    return config
