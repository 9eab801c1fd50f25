"""`deepsea plot-rulegraph`: the workflow's rule graph as a picture, without Graphviz.

`snakemake --dag` prints the graph of jobs in Graphviz's DOT language; drawing it usually takes Graphviz's `dot`, a
system package a user may not have. This draws the rules with matplotlib: each rule in the layer of its earliest
job (the job graph's longest path to it: data flows down), ordered within a layer by the mean position of its inputs
(the barycentre heuristic of layered graph drawing, Sugiyama et al. 1981). Laying the rules out from the jobs, not
from `--rulegraph`, places a rule that serves two stages where it is first needed, and the same workflow always
gives the same picture, so the README's docs/rulegraph.png is remade by `make docs` on any machine.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepsea.errors import DataMismatchError  # noqa: E402
from deepsea.io import atomic_path  # noqa: E402

NODE = re.compile(r'^\s*(\d+)\[label = "([^"\\]+)', re.M)  # the label up to its first "\n": the rule
EDGE = re.compile(r"^\s*(\d+) -> (\d+)", re.M)


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(rule name by node id, edges as (from, to) node ids, ordered by rule names) of `snakemake --dag` (a node per
    job) or `--rulegraph` (a node per rule) output. Snakemake numbers and orders them differently from run to run;
    the order by name keeps the picture the same."""
    names = dict(NODE.findall(text))
    if not names:
        raise DataMismatchError("plot-rulegraph: no rules found; give the output of `snakemake --dag`.")
    edges = sorted(EDGE.findall(text), key=lambda edge: (names.get(edge[0], ""), names.get(edge[1], ""), edge))
    return names, edges


def job_depths(names: dict[str, str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's longest path from a node without inputs. The job graph has no cycles; in a rule graph, where one
    rule serves two stages (predict_tta for the convnets and for the pseudo-label models), an input still being
    measured closes a cycle and is not counted."""
    inputs: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        inputs[b].append(a)
    depth: dict[str, int | None] = {}

    def depth_of(node: str) -> int:
        if depth.get(node, -1) is None:  # in progress: a cycle
            return -1
        if node not in depth:
            depth[node] = None
            depth[node] = 1 + max((depth_of(p) for p in inputs[node]), default=-1)
        return depth[node]  # type: ignore[return-value]

    for node in sorted(names, key=lambda n: (names[n], n)):
        depth_of(node)
    return {node: value for node, value in depth.items() if value is not None}


def layers(names: dict[str, str], edges: list[tuple[str, str]]) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """(rule names by layer, the edges between rules). A rule sits at the layer of its earliest job (the job graph's
    longest path to it), so a rule that serves two stages appears where it is first needed; within a layer, rules
    are ordered by the mean position of their inputs in the layers above (two sweeps; the barycentre heuristic),
    ties by name."""
    depth = job_depths(names, edges)
    rule_depth: dict[str, int] = {}
    for node, rule in names.items():
        rule_depth[rule] = min(rule_depth.get(rule, depth[node]), depth[node])
    rule_edges = sorted({(names[a], names[b]) for a, b in edges if names[a] != names[b]})
    inputs: dict[str, list[str]] = defaultdict(list)
    for a, b in rule_edges:
        inputs[b].append(a)
    grouped: dict[int, list[str]] = defaultdict(list)
    for rule in sorted(rule_depth):
        grouped[rule_depth[rule]].append(rule)
    rows = [grouped[k] for k in sorted(grouped)]
    position = {rule: i for row in rows for i, rule in enumerate(row)}
    for _ in range(2):
        for row in rows[1:]:
            row.sort(key=lambda r: (sum(position[p] for p in inputs[r]) / max(len(inputs[r]), 1), r))
            position.update({rule: i for i, rule in enumerate(row)})
    return rows, rule_edges


def plot_rulegraph(dot_text: str, out: str | os.PathLike[str]) -> None:
    """Draw the rules (one box each) and the files between them (grey arrows, down the page; an arrow up is a rule
    that serves a later stage too) into a PNG."""
    rows, edges = layers(*parse_dot(dot_text))
    width = max(len(row) for row in rows)
    xy = {rule: ((i + 0.5) * width / len(row), -k) for k, row in enumerate(rows) for i, rule in enumerate(row)}
    fig, ax = plt.subplots(figsize=(2.0 * width + 1, 0.9 * len(rows) + 1))
    for a, b in edges:
        (x0, y0), (x1, y1) = xy[a], xy[b]
        gap = 0.18 if y1 < y0 else -0.18  # leave the boxes from below, enter from above (up: the other way)
        ax.annotate("", (x1, y1 + gap), (x0, y0 - gap),
                    arrowprops={"arrowstyle": "->", "color": "grey", "alpha": 0.5, "lw": 0.8})  # fmt: skip
    for rule, (x, y) in xy.items():
        ax.text(x, y, rule, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": "#dbe9f6", "ec": "#4a7bb7"})  # fmt: skip
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.axis("off")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
