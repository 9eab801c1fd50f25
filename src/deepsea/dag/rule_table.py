"""`deepsea rule-docs`: docs/rules.md, the table of every Snakemake rule and the `deepsea` command it runs.

Rule names say what a job makes in the DAG (`train_convnet`, `bag_average`), command names what the package does
(`deepsea train`, `deepsea average`); several rules run one command with other inputs. The table is read from
the rule files themselves (a rule's `shell:` string, or the `jobs.*` template it names), so it cannot drift from
them (tests/workflow/test_docs.py regenerates it and compares).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from deepsea.dag import jobs
from deepsea.io import atomic_path

HEADER = """# Rules and the commands they run

Every rule of the workflow (`workflow/rules/*.smk`), the `deepsea` subcommand its job runs (`deepsea <command>
--help` says what it takes; every stage also runs by hand), and the file it is in. Written by `make docs` from the
rule files. A rule's log is `results/logs/<rule>/...`; rules without a command are targets or run in Snakemake.

| rule | runs | file |
|---|---|---|
"""
_RULE = re.compile(r"^(?:local)?rule (\w+):\n(.*?)(?=^(?:local)?rule |\Z)", re.S | re.M)
_SHELL = re.compile(r"^    shell:\n\s+(jobs\.\w+|\"[^\n]*)", re.M)
_COMMAND = re.compile(r"\bdeepsea ([a-z][a-z0-9-]*)")


def rule_commands(rules_dir: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """(rule, `deepsea` subcommand or "", rule file) for every rule, file by file in name order."""
    rows = []
    for path in sorted(Path(rules_dir).glob("*.smk")):
        for name, body in _RULE.findall(path.read_text()):
            shell = _SHELL.search(body)
            text = shell.group(1) if shell else ""
            if text.startswith("jobs."):
                text = getattr(jobs, text.removeprefix("jobs."))
            command = _COMMAND.search(text)
            rows.append((name, command.group(1) if command else "", path.name))
    return rows


def rule_reference(rules_dir: str | os.PathLike[str]) -> str:
    """The Markdown page of `rule_commands`."""
    lines = [
        f"| `{rule}` | {f'`deepsea {command}`' if command else '(no command)'} | `{file}` |"
        for rule, command, file in rule_commands(rules_dir)
    ]
    return HEADER + "\n".join(lines) + "\n"


def write_rule_reference(rules_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Write the page (atomically)."""
    with atomic_path(out) as tmp, open(tmp, "w") as handle:
        handle.write(rule_reference(rules_dir))
