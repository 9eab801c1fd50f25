"""The documentation stays true: the configuration reference is what the schema makes, the rule picture is laid out
the same whatever snakemake's numbering, every link points at a file that exists, the README stays a short guide,
and every `snakemake` and `deepsea` command in the README's and docs/usage.md's bash blocks runs (a dry run, or
`--help` with every flag it uses), unless listed below with why. A renamed target, rule, profile, preset, subcommand
or flag breaks a test here."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from deepsea.dag.config_docs import config_reference

REPO = Path(__file__).parents[2]
GUIDES = ["README.md", "docs/usage.md"]
EXCLUDED: dict[str, str] = {}  # command prefixes that cannot run here, and why


def _pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_rule_table_is_what_the_rule_files_make() -> None:
    from deepsea.dag.rule_table import rule_commands, rule_reference

    committed = (REPO / "docs/rules.md").read_text()
    assert committed == rule_reference(REPO / "workflow/rules"), "docs/rules.md is stale: run `make docs`"
    rows = {rule: command for rule, command, _ in rule_commands(REPO / "workflow/rules")}
    assert rows["train_convnet"] == rows["train_pseudolabel"] == "train" and rows["bag_average"] == "average"
    assert rows["classify"] == ""  # a target


def test_the_configuration_reference_is_what_the_schema_makes() -> None:
    import yaml

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    committed = (REPO / "docs/configuration.md").read_text()
    assert committed == config_reference(schema), "docs/configuration.md is stale: run `make docs`"
    for key in schema["properties"]:
        assert f"## `{key}`" in committed
    assert "|  |\n" not in committed, "a key without a description in the schema"


def test_the_readme_is_a_short_guide_whose_links_resolve() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make run" in readme and "make test" in readme
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", readme), "dated history belongs in docs/results.md"
    for page in _pages():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target):
                assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to missing {target}"
    linked = set(re.findall(r"\]\(docs/([^)]+\.md)\)", readme))
    assert linked >= {p.name for p in (REPO / "docs").glob("*.md")}, "a docs page the README does not link"


def _commands() -> list[tuple[str, str]]:
    """(guide, command line) of every snakemake or deepsea line in the guides' bash blocks, comments stripped."""
    found = []
    for guide in GUIDES:
        for block in re.findall(r"```bash\n(.*?)```", (REPO / guide).read_text(), re.S):
            for line in block.splitlines():
                command = shlex.join(shlex.split(line, comments=True)) if line.strip() else ""
                if command.startswith(("snakemake ", "deepsea ")):
                    found.append((guide, command))
    return found


def test_the_guides_have_commands_to_check() -> None:
    assert len(_commands()) >= 15


def _deepsea_help(sub: str) -> str:
    result = subprocess.run([sys.executable, "-m", "deepsea.cli", sub, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, f"deepsea {sub}: {result.stderr[-500:]}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("guide, command", _commands())
def test_a_documented_command_runs(guide: str, command: str, tmp_path: Path) -> None:
    if any(command.startswith(prefix) for prefix in EXCLUDED):
        pytest.skip(next(why for prefix, why in EXCLUDED.items() if command.startswith(prefix)))
    words = shlex.split(command)
    if words[0] == "deepsea":
        help_text = _deepsea_help(words[1])
        for flag in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
            assert flag in help_text, f"{guide}: `deepsea {words[1]}` has no {flag}"
        return
    from conftest import run_snakemake, workflow_copy

    workdir = workflow_copy(tmp_path / "wf")
    sample = tmp_path / "new_sample"
    sample.mkdir()
    (workdir / "mine.yaml").write_text("data: {train_dir: data/demo/train, test_dir: data/demo/test}\n")
    for folder in ("data/ndsb/train", "data/ndsb/test"):  # where ndsb-full.yaml expects the competition's images
        (workdir / folder).mkdir(parents=True)
    args = [w.replace("/data/new_sample", str(sample)) for w in words[1:]]
    result = run_snakemake(workdir, *([] if "-n" in args else ["-n"]), *args)
    assert result.returncode == 0, f"{guide}: {command}\n{result.stderr[-3000:]}"


def _dot(jobs: dict[int, str], edges: list[tuple[int, int]]) -> str:
    nodes = "".join(f'\t{k}[label = "{label}", color = "0.1 0.6 0.85"];\n' for k, label in jobs.items())
    return "digraph snakemake_dag {\n" + nodes + "".join(f"\t{a} -> {b}\n" for a, b in edges) + "}\n"


def test_the_rule_picture_places_a_reused_rule_where_it_is_first_needed_whatever_the_numbering() -> None:
    """predict_tta serves the convnets and, later, the pseudo-label model: a cycle between rules, none between
    jobs. It sits below train, not below the pseudo-label training, and renumbering or reordering the jobs (as
    snakemake does from run to run) changes nothing."""
    from deepsea.report.rulegraph import layers, parse_dot

    jobs = {1: "train\\nmodel: a", 2: "predict_tta\\nmodel: a", 3: "ensemble", 4: "train_pl",
            5: "predict_tta\\nmodel: pl", 6: "blend"}  # fmt: skip
    edges = [(1, 2), (2, 3), (3, 4), (4, 5), (3, 6), (5, 6)]
    rows, rule_edges = layers(*parse_dot(_dot(jobs, edges)))
    assert rows == [["train"], ["predict_tta"], ["ensemble"], ["train_pl"], ["blend"]]
    assert ("train_pl", "predict_tta") in rule_edges and ("predict_tta", "predict_tta") not in rule_edges
    renumbered = {k + 10: label for k, label in reversed(list(jobs.items()))}
    again = layers(*parse_dot(_dot(renumbered, [(a + 10, b + 10) for a, b in reversed(edges)])))
    assert again == (rows, rule_edges)
