"""The package's shape, checked: imports point one way, only the dag layer knows the Snakemake workflow, functions are
short and take few positional arguments. docs/development.md describes the rule."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
PACKAGE = REPO / "src" / "deepsea"

# Lowest first: a module may import from its own layer and the layers below it, never from one above.
LAYERS = ["base", "data", "nets", "training", "inference", "blending", "deploy", "report", "dag", "cli"]
MAX_FUNCTION_LINES = 60
MAX_POSITIONAL = 5


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    """deepsea.<package>... -> its layer; top-level modules (errors, io, metrics, means, predictions, records,
    device) are the base layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "base"


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every `deepsea` module imported anywhere in a module (also inside functions), with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(node.lineno, node.module)] + [(node.lineno, n) for n in names if n.count(".") <= 2]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name == "deepsea" or name.startswith("deepsea.")]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _target_layer(name: str) -> str | None:
    """The layer of an imported name, or None for the bare package (`import deepsea`)."""
    parts = name.split(".")
    if len(parts) < 2:
        return None
    if parts[1] in LAYERS:
        return parts[1]
    return "base" if (PACKAGE / f"{parts[1]}.py").exists() else None


def test_the_layers_cover_the_package() -> None:
    """Every sub-package is a layer; a new one must be placed in LAYERS (and in docs/development.md's layout) first."""
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages <= set(LAYERS), f"sub-packages not in a layer: {packages - set(LAYERS)}"


def test_imports_point_down_the_layers() -> None:
    upward = []
    for path in _modules():
        source = _layer(_module_name(path))
        for line, name in _imports(ast.parse(path.read_text())):
            target = _target_layer(name)
            if target is not None and LAYERS.index(target) > LAYERS.index(source):
                upward.append(f"{path.relative_to(REPO)}:{line}: {source} imports {name} ({target})")
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_only_the_dag_layer_knows_the_workflow() -> None:
    """Below deepsea.dag no module imports Snakemake or names a results/ path or the workflow's files."""
    below = [p for p in _modules() if LAYERS.index(_layer(_module_name(p))) < LAYERS.index("dag")]
    found = []
    for path in below:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{path.relative_to(REPO)}:{node.lineno}: imports {n}" for n in names if "snakemake" in n]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.search(r"(^|[\s`'\"(])results/|workflow/schemas|workflow/rules", node.value):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: names {node.value[:60]!r}")
    assert not found, "\n".join(found)


def test_rules_import_only_the_dag_layer() -> None:
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    imports = [
        (f.name, m.group(1)) for f in files for m in re.finditer(r"^(?:from|import) (deepsea\S*)", f.read_text(), re.M)
    ]
    assert imports, "the rules import the dag layer"
    wrong = [f"{name}: {module}" for name, module in imports if not module.startswith("deepsea.dag")]
    assert not wrong, wrong


def _functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    return [
        (f"{path.relative_to(REPO)}:{node.lineno} {node.name}", node)
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_functions_fit_on_a_screen() -> None:
    lines = [(where, node.end_lineno - node.lineno + 1) for where, node in _functions() if node.end_lineno]
    long = [f"{where}: {n} lines" for where, n in lines if n > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_many_parameters_are_keywords() -> None:
    crowded = []
    for where, node in _functions():
        positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
        if len(positional) > MAX_POSITIONAL:
            crowded.append(f"{where}: {len(positional)} positional parameters")
    assert not crowded, f"more than {MAX_POSITIONAL} positional parameters (take a record or keywords):\n" + "\n".join(
        crowded
    )


@pytest.mark.parametrize("label", [r"\bseed 00\d\b", r"\bStages? \d+\b", r"\(issues? \d+\)"])
def test_sources_are_cited_not_internal_labels(label: str) -> None:
    """Docstrings and comments name the public sources (the Deep Sea blog post and documentation), not the
    project's internal labels or stage numbers."""
    files = [*_modules(), REPO / "Snakefile", *(REPO / "workflow").rglob("*.smk"), *(REPO / "workflow").rglob("*.yaml")]
    files += [*(REPO / "benchmarks").glob("*.py"), REPO / "README.md", REPO / "config.yaml"]
    files += [page for page in (REPO / "docs").glob("*.md") if page.name != "results.md"]  # results.md: history
    hits = [f"{f.relative_to(REPO)}" for f in files if re.search(label, f.read_text(), re.I)]
    assert not hits, hits
