"""One model run's `deepsea train` job, worked out from the config as the workflow's train rules work it out.

`deepsea train --config FILE --model NAME` runs it by hand; its explicit command line (`argv`) is the one the
`train_convnet` / `train_pseudolabel` rule runs, which tests/test_train_job.py checks for every run of the demo.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from deepsea.errors import ConfigError
from deepsea.runs import Config, all_runs, model_file, settings_json, train_inputs


@dataclass(frozen=True)
class TrainJob:
    run: str
    settings: str  # the JSON of --settings
    inputs: dict[str, str]  # by train_inputs key: data, split, [preinit], [test, shards, targets]
    out: str
    log_csv: str
    device: str
    threads: int

    def argv(self) -> list[str]:
        """The explicit `deepsea train` command (the rule's, without its log redirection)."""
        i = self.inputs
        argv = ["deepsea", "train", "--settings", self.settings, "--data", i["data"], "--split", i["split"]]
        if "test" in i:
            argv += ["--test-data", i["test"], "--shards", i["shards"], "--pseudo-labels", i["targets"]]
        argv += ["--out", self.out, "--log-csv", self.log_csv, "--device", self.device, "--threads", str(self.threads)]
        if "preinit" in i:
            argv += ["--preinit", i["preinit"]]
        return argv

    def command(self) -> str:
        return shlex.join(self.argv())

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
    )
