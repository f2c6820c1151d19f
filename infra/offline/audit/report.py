"""The audit as Markdown (a pull-request comment) and as JSON (for machines).

Markdown keeps the three questions reviewers ask on one screen: what is
flagged, who may talk to whom, who holds which credential; the long per-policy
detail folds away in <details>.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.offline.audit.core import Audit
from infra.offline.audit.findings import WARNING, Flag
from infra.offline.audit.network import Allowance, Direction, Peer, WorkloadNetwork

MAX_CELL_PEERS = 12
FOLD_ROWS = 10  # longer tables fold away in a pull-request comment
NO_FLAGS = (
    "None: nothing is open to the internet or to every namespace, and no credential is "
    "shared, unread or unaccounted for."
)


def md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    return f"`{text}`" if text else ""


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return lines


class Namer:
    """Short names: `Kind/name` when a report covers one namespace, the full ref otherwise;
    external ranges by what they are (`platform API (160.79.104.0/23)`), by that alone when
    `brief`."""

    def __init__(
        self,
        namespaces: Sequence[str],
        destinations: Mapping[str, str] | None = None,
        *,
        brief: bool = False,
    ):
        self.single = namespaces[0] if len(namespaces) == 1 else None
        self.destinations = dict(destinations or {})
        self.brief = brief

    def __call__(self, ref: str) -> str:
        kind, _, rest = ref.partition("/")
        ns, _, name = rest.partition("/")
        return f"{kind}/{name}" if self.single is not None and ns == self.single else ref

    def peer(self, peer: Peer) -> str:
        if peer.kind == "workload":
            return self(peer.ref)
        named = self.destinations.get(peer.ref) if peer.kind == "cidr" else None
        if named is None:
            return peer.describe()
        return named if self.brief else f"{named} ({peer.describe()})"


def flag_rows(flags: Iterable[Flag], name: Namer) -> list[list[str]]:
    return [
        [
            "⚠️ warning" if f.severity == WARNING else "note",
            code(f.code),
            code(name(f.subject)),
            f.message,
        ]
        for f in flags
    ]


def _cell(d: Direction, name: Namer) -> str:
    if not d.isolated:
        return "⚠️ **open**: no NetworkPolicy selects it"
    if not d.allowances:
        return "nothing (denied)"
    items = [_allowance(a, name) for a in d.allowances]
    if len(items) > MAX_CELL_PEERS:
        items = [*items[:MAX_CELL_PEERS], f"… {len(items) - MAX_CELL_PEERS} more (see JSON)"]
    return "<br>".join(items)


def _allowance(a: Allowance, name: Namer) -> str:
    mark = "⚠️ " if a.peer.internet or a.peer.all_namespaces else ""
    return f"{mark}{code(name.peer(a.peer))} {a.ports.text()}"


def _workload_row(net: WorkloadNetwork, name: Namer) -> list[str]:
    services = ", ".join(name(s) for s in net.services)
    return [
        code(name(net.workload.ref)) + (f"<br>via {services}" if services else ""),
        _cell(net.ingress, name),
        _cell(net.egress, name),
    ]


def _fold(summary: str, lines: list[str]) -> list[str]:
    return [f"<details><summary>{summary}</summary>", "", *lines, "", "</details>"]


def _header(audit: Audit) -> list[str]:
    inv, flags = audit.inventory, audit.flags
    warnings = sum(f.severity == WARNING for f in flags)
    return [
        f"## Boundary audit: {audit.label}",
        "",
        f"Tier `{audit.tier}` · namespace {', '.join(map(code, audit.namespaces)) or '—'} · "
        f"{len(inv.workloads)} workloads · {len(inv.policies)} NetworkPolicies · "
        f"{len(inv.secrets)} Secrets · {len(inv.services)} Services",
        "",
        f"**{warnings} warning(s)**, {len(flags) - warnings} note(s) · policy rules: "
        + _policy_summary(audit),
    ]


def _flags_section(audit: Audit, name: Namer) -> list[str]:
    out = ["### Flags", ""]
    if not audit.flags:
        return [*out, NO_FLAGS]
    return out + md_table(["", "flag", "subject", "finding"], flag_rows(audit.flags, name))


def _network_section(audit: Audit, name: Namer) -> list[str]:
    net = audit.network
    out = ["### Network", "", "Who may reach each workload, and what it may reach.", ""]
    out += md_table(
        ["workload", "ingress from", "egress to"],
        (_workload_row(w, name) for w in net.workloads.values()),
    )
    out += ["", "#### Flows between workloads", ""]
    out.append("Both the source's egress and the target's ingress allow these.")
    out.append("")
    if net.flows:
        rows = ([code(name(f.source)), code(name(f.target)), f.ports.text()] for f in net.flows)
        out += md_table(["from", "to", "ports"], rows)
    else:
        out.append("No workload may reach another.")
    selects = (
        [code(name(p)), ", ".join(code(name(w)) for w in ws) or "nothing"]
        for p, ws in net.policy_selects.items()
    )
    summary = f"NetworkPolicies ({len(net.policy_selects)})"
    return [*out, "", *_fold(summary, md_table(["policy", "selects"], selects))]


def _credentials_section(audit: Audit, name: Namer) -> list[str]:
    creds = audit.credentials
    out = ["### Credentials", ""]
    rows = [
        [
            code(c.name),
            code(c.kind or "?"),
            c.grants,
            "<br>".join(code(name(w)) for w in c.reader_workloads) or "⚠️ nobody",
            "<br>".join(f"{r.how}: {r.detail}" for r in c.readers) or "—",
        ]
        for c in creds.credentials
    ]
    out += (
        md_table(["Secret", "credential", "grants", "read by", "how"], rows)
        if rows
        else ["No Secrets."]
    )
    out += [
        f"- ⚠️ {code(name(r.workload))} reads {code(name(secret))}, which the bundle does not "
        f"declare ({r.how})"
        for secret, r in creds.undeclared
    ]
    return out


def _vault_section(audit: Audit) -> list[str]:
    out = ["### Vault credentials", ""]
    if not audit.vault_credentials:
        return [*out, "Not known: audit a stack (`--stack`) to list them."]
    rows = (
        [
            code(c["credential"]),
            code(c["vault"]),
            code(c["mcp_server"]),
            code(c["mcp_server_url"]),
            code(c["token_secret"]),
            ", ".join(map(code, c["agents"])) or "—",
        ]
        for c in audit.vault_credentials
    )
    return out + md_table(
        ["credential", "vault", "holds the token of", "for URL", "in-cluster Secret", "agents"],
        rows,
    )


def _policy_section(audit: Audit, name: Namer) -> list[str]:
    policy = audit.policy
    out = ["### Policy rules", ""]
    if not policy.available:
        return [*out, f"Not run: {policy.note}."]
    if not policy.violations:
        return [*out, f"No violations ({policy.note})."]
    rows = (
        [code(v.rule_id), v.enforcement, code(name(v.resource)), v.message]
        for v in policy.violations
    )
    table = md_table(["rule", "level", "resource", "message"], rows)
    if len(policy.violations) > FOLD_ROWS:
        table = _fold(f"{len(policy.violations)} violations", table)
    return out + table


def _admission_section(audit: Audit, name: Namer) -> list[str]:
    out = ["### Admission policies", ""]
    if not audit.admission:
        return [*out, "None: only a preview or `check` stops what the rules forbid."]
    rows = (
        [
            code(g.rule_id),
            code(g.policy),
            ", ".join(g.actions) or "not bound",
            ", ".join(g.namespaces),
        ]
        for g in audit.admission
    )
    return out + md_table(["rule", "policy", "action", "namespaces"], rows)


def render_markdown(audit: Audit) -> str:
    name = Namer(audit.namespaces, audit.destinations)
    sections = [
        _header(audit),
        _flags_section(audit, name),
        _network_section(audit, name),
        _credentials_section(audit, name),
        _vault_section(audit),
        _policy_section(audit, name),
        _admission_section(audit, name),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _policy_summary(audit: Audit) -> str:
    p = audit.policy
    if not p.available:
        return "not run"
    return f"{len(p.mandatory)} mandatory, {len(p.violations) - len(p.mandatory)} advisory violation(s)"


# --- JSON --------------------------------------------------------------------------------------


def peer_dict(peer: Peer, destinations: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": peer.kind, "description": peer.describe()}
    if peer.kind == "cidr" and destinations and peer.ref in destinations:
        out["name"] = destinations[peer.ref]
    if peer.kind == "workload":
        out["ref"] = peer.ref
    elif peer.kind == "cidr":
        out.update(cidr=peer.ref, excepts=list(peer.excepts))
    elif peer.kind == "pods":
        out.update(
            namespaces=peer.namespaces, pods=peer.pods or None, every_namespace=peer.every_namespace
        )
    out["internet"] = peer.internet
    out["all_namespaces"] = peer.all_namespaces
    return out


def _direction_dict(d: Direction, destinations: Mapping[str, str]) -> dict[str, Any]:
    return {
        "isolated": d.isolated,
        "policies": list(d.policies),
        "allowed": [
            {
                "peer": peer_dict(a.peer, destinations),
                "ports": a.ports.describe(),
                "policies": list(a.policies),
            }
            for a in d.allowances
        ],
    }


def to_dict(audit: Audit) -> dict[str, Any]:
    """Ports are strings: `TCP/8080`, `TCP/8000-8100`, `UDP/all`, `TCP/<name>`, or `all`."""
    inv, net, creds, policy = audit.inventory, audit.network, audit.credentials, audit.policy
    return {
        "label": audit.label,
        "tier": audit.tier,
        "namespaces": audit.namespaces,
        "summary": {
            "workloads": len(inv.workloads),
            "network_policies": len(inv.policies),
            "secrets": len(inv.secrets),
            "services": len(inv.services),
            "flags": len(audit.flags),
            "policy_violations": len(policy.violations),
            "mandatory_violations": len(policy.mandatory),
        },
        "flags": [f.to_dict() for f in audit.flags],
        "vault_credentials": audit.vault_credentials,
        "network": {
            "workloads": [
                {
                    "ref": w.workload.ref,
                    "kind": w.workload.kind,
                    "namespace": w.workload.namespace,
                    "name": w.workload.name,
                    "component": w.workload.component,
                    "labels": w.workload.labels,
                    "host_network": w.workload.host_network,
                    "services": w.services,
                    "ingress": _direction_dict(w.ingress, audit.destinations),
                    "egress": _direction_dict(w.egress, audit.destinations),
                }
                for w in net.workloads.values()
            ],
            "flows": [
                {"from": f.source, "to": f.target, "ports": f.ports.describe()} for f in net.flows
            ],
            "policies": [{"ref": p, "selects": ws} for p, ws in net.policy_selects.items()],
        },
        "credentials": {
            "secrets": [
                {
                    "ref": c.ref,
                    "namespace": c.namespace,
                    "name": c.name,
                    "credential": c.kind,
                    "grants": c.grants,
                    "database_role": c.role,
                    "privileges": c.privileges,
                    "mcp_server_url": c.mcp_server_url,
                    "readers": [
                        {"workload": r.workload, "how": r.how, "detail": r.detail}
                        for r in c.readers
                    ],
                }
                for c in creds.credentials
            ],
            "undeclared_reads": [
                {"secret": s, "workload": r.workload, "how": r.how, "detail": r.detail}
                for s, r in creds.undeclared
            ],
        },
        "admission_policies": [g.to_dict() for g in audit.admission],
        "policy": {
            "available": policy.available,
            "note": policy.note,
            "violations": [v.to_dict() for v in policy.violations],
        },
    }


def render_json(audit: Audit) -> str:
    return json.dumps(to_dict(audit), indent=2) + "\n"
