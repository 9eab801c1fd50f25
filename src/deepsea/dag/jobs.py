"""The shell commands of the training rules, and one model run's training job worked out from the config.

`TRAIN_CONVNET` and `TRAIN_PSEUDOLABEL` are the `shell:` of the `train_convnet` and `train_pseudolabel` rules
(convnets.smk, pseudo_labels.smk). `deepsea train --config FILE --model NAME` fills the same template in with the
run's settings, inputs and outputs (`TrainJob.command`), so the command it logs and the command the workflow runs
cannot drift apart; tests/workflow/test_train_job.py checks them for every run of the demo.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from deepsea.dag.runs import Config, all_runs, model_file, settings_json, train_inputs
from deepsea.errors import ConfigError

_TRAIN_OUTPUTS = (
    "--out {output.model} --log-csv {output.log_csv} --device {params.device} --threads {threads} {params.preinit} "
    "> {log} 2>&1"
)
_TRAIN_INPUTS = (
    "deepsea train --settings {params.settings:q} --data {input.data} --split {input.split} "
    "--orientation {params.orientation} --mirror {params.mirror} --pack-report {input.pack_report} "
)
TRAIN_CONVNET = _TRAIN_INPUTS + _TRAIN_OUTPUTS
TRAIN_PSEUDOLABEL = (
    _TRAIN_INPUTS + "--test-data {input.test} --shards {input.shards} --pseudo-labels {input.targets} " + _TRAIN_OUTPUTS
)


class _Value(str):
    """A string that formats as Snakemake formats shell values: `{x:q}` is shell-quoted."""

    def __format__(self, spec: str) -> str:
        return shlex.quote(self) if spec == "q" else format(str(self), spec)


def _fields(values: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**{key: _Value(value) for key, value in values.items()})


@dataclass(frozen=True)
class TrainJob:
    run: str
    settings: str  # the JSON of --settings
    inputs: dict[str, str]  # by train_inputs key: data, split, [preinit], [test, shards, targets]
    out: str
    log_csv: str
    device: str
    threads: int
    orientation: str  # data.orientation and data.mirror, resolved when the job runs (data/orientation.py)
    mirror: str

    def command(self) -> str:
        """The rule's command for this run, filled in as Snakemake fills it, without its log redirection."""
        template = TRAIN_PSEUDOLABEL if "test" in self.inputs else TRAIN_CONVNET
        preinit = f"--preinit {self.inputs['preinit']}" if "preinit" in self.inputs else ""
        filled = template.removesuffix(" > {log} 2>&1").format(
            input=_fields(self.inputs),
            output=_fields({"model": self.out, "log_csv": self.log_csv}),
            params=_fields(
                {
                    "settings": self.settings,
                    "device": self.device,
                    "preinit": preinit,
                    "orientation": self.orientation,
                    "mirror": self.mirror,
                }
            ),
            threads=self.threads,
        )
        return filled.rstrip()

    def missing_inputs(self, workdir: Path) -> list[str]:
        return [path for path in self.inputs.values() if not (workdir / path).exists()]


def train_job(config: Config, run: str) -> TrainJob:
    """The job that trains `run` (a `models` entry, a bag member or a pseudo-label shard model) of a validated
    config; paths relative to the workflow folder."""
    convnet, pseudo_label = all_runs(config)
    runs = {**convnet, **pseudo_label}
    if run not in runs:
        raise ConfigError(f"train --model: '{run}' is not a model of this config; its models are {sorted(runs)}.")
    out = model_file(run)
    return TrainJob(
        run=run,
        settings=settings_json(run, runs[run]),
        inputs=train_inputs(runs[run], run in pseudo_label),
        out=out,
        log_csv=str(Path(out).with_name("train_log.csv")),
        device=config["device"],
        threads=config["threads"]["train"],
        orientation=config["data"]["orientation"],
        mirror=config["data"]["mirror"],
    )
