"""`deepsea plot-rulegraph`: the workflow's rule graph as a picture, without Graphviz.

`snakemake --rulegraph` prints the graph of rules in Graphviz's DOT language; drawing it usually takes Graphviz's
`dot`, a system package a user may not have. This draws the same graph with matplotlib: rules in layers by their
longest path from the first rule (data flows down), ordered within a layer by the mean position of their inputs
(the barycentre heuristic of layered graph drawing, Sugiyama et al. 1981), so the README's picture
(docs/rulegraph.png) is remade by `make docs` on any machine that runs the workflow.
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

NODE = re.compile(r'^\s*(\d+)\[label = "([^"]+)"', re.M)
EDGE = re.compile(r"^\s*(\d+) -> (\d+)", re.M)


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(rule name by node id, edges as (from, to) node ids) of `snakemake --rulegraph` output."""
    names = dict(NODE.findall(text))
    edges = EDGE.findall(text)
    if not names:
        raise DataMismatchError("plot-rulegraph: no rules found; give the output of `snakemake --rulegraph`.")
    return names, edges


def layers(names: dict[str, str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Node ids by layer: a node sits one layer below the deepest of its inputs; within a layer, ordered by the
    mean position of its inputs in the layers above (two sweeps), ties by name."""
    inputs: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        inputs[b].append(a)
    depth: dict[str, int] = {}

    def depth_of(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            parents = [p for p in inputs[node] if p not in seen]
            depth[node] = 1 + max((depth_of(p, seen | {node}) for p in parents), default=-1)
        return depth[node]

    grouped: dict[int, list[str]] = defaultdict(list)
    for node in sorted(names, key=lambda n: names[n]):
        grouped[depth_of(node)].append(node)
    rows = [grouped[k] for k in sorted(grouped)]
    position = {n: i for row in rows for i, n in enumerate(row)}
    for _ in range(2):
        for row in rows[1:]:
            row.sort(key=lambda n: (sum(position[p] for p in inputs[n]) / max(len(inputs[n]), 1), names[n]))
            position.update({n: i for i, n in enumerate(row)})
    return rows


def plot_rulegraph(dot_text: str, out: str | os.PathLike[str]) -> None:
    """Draw the rule graph (one box per rule, grey arrows for the files between them) into a PNG."""
    names, edges = parse_dot(dot_text)
    rows = layers(names, edges)
    width = max(len(row) for row in rows)
    xy = {n: ((i + 0.5) * width / len(row), -k) for k, row in enumerate(rows) for i, n in enumerate(row)}
    fig, ax = plt.subplots(figsize=(2.0 * width + 1, 0.9 * len(rows) + 1))
    for a, b in edges:
        (x0, y0), (x1, y1) = xy[a], xy[b]
        ax.annotate("", (x1, y1 + 0.18), (x0, y0 - 0.18),
                    arrowprops={"arrowstyle": "->", "color": "grey", "alpha": 0.5, "lw": 0.8})  # fmt: skip
    for node, (x, y) in xy.items():
        ax.text(x, y, names[node], ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": "#dbe9f6", "ec": "#4a7bb7"})  # fmt: skip
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.axis("off")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
