"""Small helpers the audit tests share."""

from __future__ import annotations

import json
from pathlib import Path

from infra.offline.audit import Audit, audit_manifests
from infra.offline.manifests import Manifest, load_dir

FIXTURES = Path(__file__).parent / "fixtures"
NETWORK = FIXTURES / "network"
LIVE = FIXTURES / "live"
LIVE_NS = "agent-perimeter-live"
LIVE_FILES = {
    "NetworkPolicy": "networkpolicies",
    "Secret": "secrets",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "Ingress": "ingresses",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Namespace": "namespace",
}


def scenario(name: str) -> Audit:
    """Audit one trap fixture under tests/audit/fixtures/network."""
    return audit_manifests(load_dir(NETWORK / f"{name}.yaml"), label=name, policies=False)


def recorded() -> dict[str, dict]:
    return {kind: json.loads((LIVE / f"{f}.json").read_text()) for kind, f in LIVE_FILES.items()}


def peers(audit: Audit, ref: str, direction: str) -> dict[str, str]:
    """peer description -> ports text, for one workload and direction."""
    net = audit.network.workloads[ref]
    d = net.ingress if direction == "ingress" else net.egress
    return {a.peer.describe(): a.ports.text() for a in d.allowances}


def flows(audit: Audit) -> dict[tuple[str, str], str]:
    return {(f.source, f.target): f.ports.text() for f in audit.network.flows}


def flag_codes(audit: Audit, subject: str | None = None) -> set[str]:
    return {f.code for f in audit.flags if subject is None or f.subject == subject}


def by_name(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)
