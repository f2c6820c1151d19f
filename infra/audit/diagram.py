"""A picture of the boundaries: workloads by namespace, the allowed flows, the credentials held.

Graphviz lays it out (`dot`); the format follows the file extension. Solid
edges are flows both sides allow; dashed edges cross the bundle's edge
(addresses, pods outside it); red marks anything open to the internet or to
every namespace.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import graphviz

from infra import naming
from infra.audit.core import Audit
from infra.audit.network import Peer
from infra.audit.report import Namer

FORMATS = {".svg": "svg", ".png": "png"}
COLORS = {
    naming.COMPONENT_MCP_SERVER: "#dbeafe",
    naming.COMPONENT_TUNNEL: "#fef3c7",
    naming.COMPONENT_SANDBOX: "#fce7f3",
    naming.COMPONENT_PROVISIONER: "#e5e7eb",
}
RED = "#dc2626"
LEGEND = (
    "solid: flow both sides allow · dashed: to/from outside the bundle · "
    "red: open to the internet or every namespace"
)


class DiagramError(ValueError):
    """The diagram cannot be written (unknown extension, graphviz missing)."""


def _workload_label(audit: Audit, ref: str, name: Namer) -> str:
    w = audit.inventory.workloads[ref]
    rows = [f"<b>{escape(name(ref))}</b>", f'<font point-size="9">{escape(w.component)}</font>']
    for c in audit.credentials.credentials:
        if ref in c.reader_workloads:
            rows.append(
                f'<font point-size="8">holds {escape(c.name)} ({escape(c.kind or "?")})</font>'
            )
    cells = "".join(f'<tr><td align="left">{r}</td></tr>' for r in rows)
    return f'<<table border="0" cellborder="0" cellspacing="1">{cells}</table>>'


def build_graph(audit: Audit) -> graphviz.Digraph:
    name = Namer(audit.namespaces)
    g = graphviz.Digraph(
        "boundaries",
        graph_attr={
            "rankdir": "LR",
            "label": f"agent-perimeter boundaries: {audit.label}\n{LEGEND}",
            "labelloc": "t",
            "fontname": "Helvetica",
            "fontsize": "12",
            "nodesep": "0.25",
            "ranksep": "1.2",
        },
        node_attr={"fontname": "Helvetica", "fontsize": "10"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8"},
    )
    ids = {ref: f"w{i}" for i, ref in enumerate(audit.network.workloads)}
    by_ns: dict[str, list[str]] = {}
    for ref, net in audit.network.workloads.items():
        by_ns.setdefault(net.workload.namespace, []).append(ref)
    for i, (ns, refs) in enumerate(sorted(by_ns.items())):
        with g.subgraph(name=f"cluster_{i}") as sub:
            sub.attr(label=f"namespace {ns}", style="rounded", color="#9ca3af")
            for ref in refs:
                net = audit.network.workloads[ref]
                open_ = not (net.ingress.isolated and net.egress.isolated)
                sub.node(
                    ids[ref],
                    _workload_label(audit, ref, name),
                    shape="box",
                    style="rounded,filled",
                    fillcolor=COLORS.get(net.workload.component, "#ffffff"),
                    color=RED if open_ else "#374151",
                    penwidth="2" if open_ else "1",
                )
    for flow in audit.network.flows:
        g.edge(ids[flow.source], ids[flow.target], label=flow.ports.text())
    outside: dict[Peer, str] = {}
    for ref, net in audit.network.workloads.items():
        for direction, d in (("in", net.ingress), ("out", net.egress)):
            for a in d.allowances:
                if a.peer.kind == "workload":
                    continue
                node = outside.get(a.peer)
                if node is None:
                    node = outside[a.peer] = f"x{len(outside)}"
                    wide = a.peer.internet or a.peer.all_namespaces
                    g.node(
                        node,
                        a.peer.describe(),
                        shape="ellipse" if a.peer.kind == "pods" else "box",
                        style="dashed",
                        color=RED if wide else "#6b7280",
                        fontcolor=RED if wide else "#111827",
                    )
                wide = a.peer.internet or a.peer.all_namespaces
                ends = (node, ids[ref]) if direction == "in" else (ids[ref], node)
                g.edge(
                    *ends, label=a.ports.text(), style="dashed", color=RED if wide else "#6b7280"
                )
    return g


def diagram_format(path: str | Path) -> str:
    """`svg` or `png`, from the file's extension."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DiagramError(f"{path}: the diagram must be a .svg or .png file")
    return fmt


def render_diagram(audit: Audit, path: str | Path) -> Path:
    """Write the diagram; SVG or PNG by the file's extension."""
    target = Path(path)
    fmt = diagram_format(target)
    try:
        data = build_graph(audit).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DiagramError("graphviz's `dot` is not installed: run `make setup`") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
