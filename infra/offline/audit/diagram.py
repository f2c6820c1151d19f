"""A picture of the boundaries: workloads by namespace, the allowed flows, the credentials held.

Graphviz lays it out (`dot`); the format follows the file extension. Solid
edges are flows both sides allow; dashed edges cross the bundle's edge
(addresses, pods outside it); red marks anything open to the internet or to
every namespace.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from pathlib import Path

import graphviz

from infra.offline.audit.core import Audit
from infra.offline.audit.network import Peer
from infra.offline.audit.report import Namer
from infra.pure import naming

FORMATS = {".svg": "svg", ".png": "png"}
COLORS = {
    naming.COMPONENT_MCP_SERVER: "#dbeafe",
    naming.COMPONENT_TUNNEL: "#fef3c7",
    naming.COMPONENT_SANDBOX: "#fce7f3",
    naming.COMPONENT_PROVISIONER: "#e5e7eb",
}
RED = "#dc2626"
HELD_BY_NAME = 3  # more credentials than this on one workload are counted by kind
PATH = "#2563eb"  # the request path: platform -> tunnel edge -> tunnel -> MCP server
LEGEND = (
    "solid: flow both sides allow · dashed: to/from outside the bundle · "
    "blue: how an MCP call arrives · red: open to the internet or every namespace"
)


class DiagramError(ValueError):
    """The diagram cannot be written (unknown extension, graphviz missing)."""


def _workload_label(audit: Audit, ref: str, name: Namer) -> str:
    """Name, component, and the credentials held: by name when few, counted by kind when many."""
    w = audit.inventory.workloads[ref]
    rows = [f"<b>{escape(name(ref))}</b>", f'<font point-size="9">{escape(w.component)}</font>']
    held = [c for c in audit.credentials.credentials if ref in c.reader_workloads]
    if len(held) <= HELD_BY_NAME:
        lines = [f"holds {c.name} ({c.kind or '?'})" for c in held]
    else:
        kinds = Counter(c.kind or "?" for c in held)
        lines = [f"holds {n} {kind}" for kind, n in sorted(kinds.items())]
    rows += [f'<font point-size="8">{escape(line)}</font>' for line in lines]
    cells = "".join(f'<tr><td align="left">{r}</td></tr>' for r in rows)
    return f'<<table border="0" cellborder="0" cellspacing="1">{cells}</table>>'


def _is_dns(peer: Peer, ports: str) -> bool:
    """The cluster DNS every workload may ask: folded into one note instead of an edge each."""
    return peer.kind == "pods" and ports in {"TCP/53, UDP/53", "UDP/53, TCP/53", "UDP/53", "TCP/53"}


def build_graph(audit: Audit) -> graphviz.Digraph:
    """Workloads sorted by name within their namespace; external ranges one node per name
    (`tunnel edge`, with its CIDRs); the request path platform → tunnel edge → tunnel →
    server drawn bold; DNS as one note."""
    name = Namer(audit.namespaces, audit.destinations, brief=True)
    g = graphviz.Digraph(
        "boundaries",
        graph_attr={
            "rankdir": "LR",
            "label": f"agent-perimeter boundaries: {audit.label}\n{LEGEND}",
            "labelloc": "t",
            "fontname": "Helvetica",
            "fontsize": "12",
            "nodesep": "0.15",
            "ranksep": "0.9",
            "newrank": "true",
            "ordering": "out",  # sorted edges keep the servers in name order
        },
        node_attr={"fontname": "Helvetica", "fontsize": "10"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8"},
    )
    workloads = audit.network.workloads
    ordered = sorted(workloads, key=lambda ref: (workloads[ref].workload.namespace, name(ref)))
    ids = {ref: f"w{i}" for i, ref in enumerate(ordered)}
    by_ns: dict[str, list[str]] = {}
    for ref in ordered:
        by_ns.setdefault(workloads[ref].workload.namespace, []).append(ref)
    for i, (ns, refs) in enumerate(sorted(by_ns.items())):
        with g.subgraph(name=f"cluster_{i}") as sub:
            sub.attr(label=f"namespace {ns}", style="rounded", color="#9ca3af")
            for ref in refs:
                net = workloads[ref]
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
    tunnels = {r for r in ordered if workloads[r].workload.component == naming.COMPONENT_TUNNEL}
    for flow in sorted(audit.network.flows, key=lambda f: (name(f.source), name(f.target))):
        request = flow.source in tunnels
        g.edge(
            ids[flow.source],
            ids[flow.target],
            label=flow.ports.text(),
            color=PATH if request else "#111827",
            penwidth="2" if request else "1",
            # only the request path places the servers, which keeps them in name order
            constraint="true" if request else "false",
        )
    outside: dict[str, str] = {}  # label -> node id
    cidrs: dict[str, list[str]] = {}
    edges: dict[tuple[str, str], set[str]] = {}
    dns: list[str] = []
    dns_peer = ""
    for ref in ordered:
        net = workloads[ref]
        for direction, d in (("in", net.ingress), ("out", net.egress)):
            for a in d.allowances:
                if a.peer.kind == "workload":
                    continue
                ports = a.ports.text()
                if direction == "out" and _is_dns(a.peer, ports):
                    dns.append(name(ref))
                    dns_peer = a.peer.describe()
                    continue
                wide = a.peer.internet or a.peer.all_namespaces
                label = name.peer(a.peer)
                node = outside.get(label)
                if node is None:
                    node = outside[label] = f"x{len(outside)}"
                    g.node(
                        node,
                        label,
                        shape="ellipse" if a.peer.kind == "pods" else "box",
                        style="dashed",
                        color=RED if wide else "#6b7280",
                        fontcolor=RED if wide else "#111827",
                    )
                if a.peer.kind == "cidr" and label != a.peer.ref:
                    cidrs.setdefault(node, []).append(a.peer.ref)
                # The tunnel dials out to its edge, but calls come in that way: the edge is
                # drawn before the tunnel, the arrow still pointing outwards.
                inward = direction == "in" or (ref in tunnels and label == "tunnel edge")
                ends = (node, ids[ref]) if inward else (ids[ref], node)
                key = (ends[0], ends[1])
                if key not in edges:
                    edges[key] = set()
                    g.edge(
                        *ends,
                        label=ports,
                        style="dashed",
                        color=RED if wide else "#6b7280",
                        dir="back" if direction == "out" and inward else "forward",
                    )
                edges[key].add(ports)
    for label, node in outside.items():
        if node in cidrs:
            ranges = "\n".join(sorted(set(cidrs[node])))
            g.node(node, f"{label}\n{ranges}")
    _request_path(g, audit, outside, tunnels, ids)
    if dns:
        g.node(
            "dns",
            f"DNS: {len(dns)} workload(s) may ask\n{dns_peer} (TCP/UDP 53)",
            shape="note",
            color="#6b7280",
            fontsize="9",
        )
    return g


def _request_path(
    g: graphviz.Digraph,
    audit: Audit,
    outside: dict[str, str],
    tunnels: set[str],
    ids: dict[str, str],
) -> None:
    """How a call arrives: the platform, through the tunnel edge, down the tunnel's own
    outbound connection (nothing inbound is opened)."""
    edge = outside.get("tunnel edge")
    if edge is None or not tunnels:
        return
    g.node(
        "platform",
        "agent platform\n(managed side)",
        shape="box",
        style="rounded,bold",
        color=PATH,
    )
    g.edge("platform", edge, label="MCP calls", color=PATH, penwidth="2")
    for ref in sorted(tunnels):
        g.edge(
            edge,
            ids[ref],
            label="over the tunnel's outbound connection",
            color=PATH,
            penwidth="2",
        )


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
