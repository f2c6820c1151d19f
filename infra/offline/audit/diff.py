"""What differs between two audits in reachability and credentials.

Used for promotions (staging → prod) and for live drift (program → cluster).
Each environment lives in its own namespace, so objects are matched by name
(see `_Keys`); everything else is compared as the reports print it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from infra.offline.audit.core import Audit
from infra.offline.audit.inventory import SecretObject
from infra.offline.audit.network import Peer
from infra.offline.audit.report import Namer, code, md_table
from infra.pure.naming import LABEL_CREDENTIAL, LABEL_INSTANCE

ABSENT = "—"


@dataclass(frozen=True, order=True)
class Change:
    area: str  # workload | ingress | egress | flow | credential | flag
    subject: str
    what: str
    a: str
    b: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditDiff:
    a: str
    b: str
    changes: list[Change]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "changes": [c.to_dict() for c in self.changes]}


class _Keys:
    """How one side names things so both sides compare.

    The namespace is dropped when a side has one; a workload is named by kind and
    `app.kubernetes.io/instance` when that is unique, because a Job's name carries
    a hash of what it runs and differs between environments for no reason.
    """

    def __init__(self, audit: Audit):
        self.name = Namer(audit.namespaces)
        workloads = audit.inventory.workloads.values()
        counts = Counter((w.kind, w.labels.get(LABEL_INSTANCE)) for w in workloads)
        self.alias = {
            w.ref: f"{w.kind}/{w.labels[LABEL_INSTANCE]}"
            for w in workloads
            if w.labels.get(LABEL_INSTANCE) and counts[(w.kind, w.labels[LABEL_INSTANCE])] == 1
        }
        # Likewise a Secret named after its Job's hash: its reader and what it grants name it.
        secrets = audit.inventory.secrets.values()
        owners = Counter(_secret_role(s) for s in secrets)
        self.alias.update(
            {
                s.ref: f"Secret/{'/'.join(_secret_role(s))}"
                for s in secrets
                if owners[_secret_role(s)] == 1 and all(_secret_role(s))
            }
        )

    def __call__(self, ref: str) -> str:
        return self.alias.get(ref) or self.name(ref)


def _secret_role(secret: SecretObject) -> tuple[str, str]:
    return (secret.labels.get(LABEL_INSTANCE, ""), secret.labels.get(LABEL_CREDENTIAL, ""))


def _keys(audit: Audit) -> _Keys:
    return _Keys(audit)


def _peer(peer: Peer, key: _Keys, audit: Audit, per_environment: bool) -> str:
    """A peer as both sides can name it. Between two environments, a named range compares by
    its name: each environment has its own database addresses, as expected."""
    namespaces = audit.namespaces
    if peer.kind == "workload":
        return key(peer.ref)
    named = audit.destinations.get(peer.ref) if peer.kind == "cidr" else None
    if named is not None:
        return named if per_environment else f"{named} ({peer.describe()})"
    text = peer.describe()
    if len(namespaces) == 1:
        text = text.replace(namespaces[0], "<namespace>")
    return text


def _reach(audit: Audit, per_environment: bool) -> dict[tuple[str, str, str], str]:
    key = _keys(audit)
    found: dict[tuple[str, str, str], str] = {}
    for ref, net in audit.network.workloads.items():
        for direction, d in (("ingress", net.ingress), ("egress", net.egress)):
            if not d.isolated:
                found[(direction, key(ref), "anything")] = "open (no policy selects it)"
                continue
            for a in d.allowances:
                peer = _peer(a.peer, key, audit, per_environment)
                ports = found.get((direction, key(ref), peer))
                text = a.ports.text()
                found[(direction, key(ref), peer)] = (
                    text if ports in (None, text) else f"{ports}; {text}"
                )
    return found


def _flows(audit: Audit) -> dict[tuple[str, str, str], str]:
    key = _keys(audit)
    return {
        ("flow", f"{key(f.source)} → {key(f.target)}", "ports"): f.ports.text()
        for f in audit.network.flows
    }


def _creds(audit: Audit) -> dict[tuple[str, str, str], str]:
    key = _keys(audit)
    found: dict[tuple[str, str, str], str] = {}
    for c in audit.credentials.credentials:
        subject = key(c.ref)
        found[("credential", subject, "grants")] = c.grants
        found[("credential", subject, "read by")] = (
            ", ".join(
                sorted({f"{key(r.workload)} ({r.how})" for r in c.readers}),
            )
            or "nobody"
        )
    for secret, r in audit.credentials.undeclared:
        found[("credential", key(secret), "read by (undeclared Secret)")] = (
            f"{key(r.workload)} ({r.how})"
        )
    return found


def _flags(audit: Audit) -> dict[tuple[str, str, str], str]:
    key = _keys(audit)
    return {("flag", key(f.subject), f.code): f.severity for f in audit.flags}


def _yes(present: bool) -> str:
    return "yes" if present else ABSENT


def _compare(
    a: dict[tuple[str, str, str], str], b: dict[tuple[str, str, str], str]
) -> list[Change]:
    changes = []
    for k in sorted(a.keys() | b.keys()):
        va, vb = a.get(k, ABSENT), b.get(k, ABSENT)
        if va != vb:
            changes.append(Change(k[0], k[1], k[2], va, vb))
    return changes


def diff_audits(a: Audit, b: Audit, *, per_environment: bool = True) -> AuditDiff:
    """`per_environment`: a and b are two environments, so values each environment sets for
    itself (namespace, database addresses) are not differences; False compares one
    environment at two revisions, where every value counts."""
    ka, kb = _keys(a), _keys(b)
    workloads_a = {ka(r): r for r in a.network.workloads}
    workloads_b = {kb(r): r for r in b.network.workloads}
    changes = [
        Change("workload", w, "exists", _yes(w in workloads_a), _yes(w in workloads_b))
        for w in sorted(workloads_a.keys() ^ workloads_b.keys())
    ]
    changes += _compare(_reach(a, per_environment), _reach(b, per_environment))
    for collect in (_flows, _creds, _flags):
        changes += _compare(collect(a), collect(b))
    return AuditDiff(a.label, b.label, changes)


AREAS = {
    "workload": "Workloads",
    "ingress": "Ingress (who may reach the workload)",
    "egress": "Egress (what the workload may reach)",
    "flow": "Flows between workloads",
    "credential": "Credentials",
    "flag": "Flags",
}


def render_diff_markdown(diff: AuditDiff, title: str | None = None) -> str:
    out = [f"## {title or f'Boundary diff: {diff.a} → {diff.b}'}", ""]
    if not diff.changes:
        return "\n".join([*out, "No difference in reachability or credentials."]) + "\n"
    out.append(f"{len(diff.changes)} difference(s).")
    for area, heading in AREAS.items():
        rows = [c for c in diff.changes if c.area == area]
        if not rows:
            continue
        out += ["", f"### {heading}", ""]
        out += md_table(
            ["subject", "what", diff.a, diff.b],
            ([code(c.subject), c.what, c.a, c.b] for c in rows),
        )
    return "\n".join(out) + "\n"
