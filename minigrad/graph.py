"""The computation graph behind a tensor, as Graphviz DOT text."""

from __future__ import annotations

from minigrad.tensor import Tensor


def _quote(text: str) -> str:
    """A DOT string; the labels' \\n escapes are DOT's own line breaks."""
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(output: Tensor, name: str = "minigrad") -> str:
    """Describe the graph that computed `output` in the DOT language.

    Each op is a box labelled with its name, output shape and dtype; each
    leaf is an ellipse, filled when it requires a gradient.  Edges run from
    inputs to the ops that used them.  Call it before `backward()`, which frees
    the graph (unless retain_graph=True): afterwards only the last op is left.
    Render with `dot -Tpng` if you have Graphviz; producing the text needs nothing.
    """
    ids: dict[int, str] = {}
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;", '  node [fontname="monospace"];']
    stack = [output]
    while stack:
        node = stack.pop()
        if id(node) in ids:
            continue
        ids[id(node)] = f"t{len(ids)}"
        shape = "x".join(str(n) for n in node.shape) or "scalar"
        if node._parents or node._freed:
            freed = "\\n(inputs freed by backward)" if node._freed else ""
            label = f"{node._op}\\n{shape} {node.dtype}{freed}"
            lines.append(f"  {ids[id(node)]} [shape=box, label={_quote(label)}];")
        else:
            grad = "requires_grad" if node.requires_grad else "constant"
            style = ', style=filled, fillcolor="lightblue"' if node.requires_grad else ""
            label = f"{shape} {node.dtype}\\n{grad}"
            lines.append(f"  {ids[id(node)]} [shape=ellipse, label={_quote(label)}{style}];")
        stack.extend(p for p in node._parents if p is not None)
    edges = []
    seen: set[int] = set()
    stack = [output]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for parent in node._parents:
            if parent is not None:
                edges.append(f"  {ids[id(parent)]} -> {ids[id(node)]};")
                stack.append(parent)
    return "\n".join(lines + edges + ["}"]) + "\n"
