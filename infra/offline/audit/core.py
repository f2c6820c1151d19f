"""One audit of one set of manifests: the network and credential matrices and the policy results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.contract.names import NAMESPACE_NAME_LABEL
from infra.offline.audit.credentials import CredentialMatrix, build_credentials
from infra.offline.audit.findings import Flag, not_reported_by
from infra.offline.audit.inventory import Inventory, build_inventory
from infra.offline.audit.network import NetworkMatrix, build_network
from infra.offline.audit.policy import PolicyResults, evaluate_policies
from infra.offline.manifests import Manifest, redact


@dataclass(frozen=True)
class AdmissionGuard:
    """A ValidatingAdmissionPolicy and where a binding enforces it."""

    policy: str
    rule_id: str
    actions: tuple[str, ...]
    namespaces: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "rule": self.rule_id,
            "actions": list(self.actions),
            "namespaces": list(self.namespaces),
        }


def admission_guards(manifests: Sequence[Manifest]) -> list[AdmissionGuard]:
    bindings: dict[str, list[Manifest]] = {}
    for m in manifests:
        if m.get("kind") == "ValidatingAdmissionPolicyBinding":
            bindings.setdefault(str((m.get("spec") or {}).get("policyName")), []).append(m)
    guards = []
    for m in manifests:
        if m.get("kind") != "ValidatingAdmissionPolicy":
            continue
        meta = m.get("metadata") or {}
        name = str(meta.get("name"))
        actions: set[str] = set()
        namespaces: set[str] = set()
        for b in bindings.get(name, []):
            spec = b.get("spec") or {}
            actions.update(spec.get("validationActions") or [])
            selector = (spec.get("matchResources") or {}).get("namespaceSelector") or {}
            bound = (selector.get("matchLabels") or {}).get(NAMESPACE_NAME_LABEL)
            namespaces.add(bound or "every namespace the selector matches")
        rule = (meta.get("labels") or {}).get("agent-perimeter.io/rule", "")
        guards.append(AdmissionGuard(name, rule, tuple(sorted(actions)), tuple(sorted(namespaces))))
    return sorted(guards, key=lambda g: g.rule_id)


@dataclass
class Audit:
    label: str
    tier: str
    inventory: Inventory
    network: NetworkMatrix
    credentials: CredentialMatrix
    policy: PolicyResults
    admission: list[AdmissionGuard]
    # From the stack config (empty for a bare manifest folder): the platform half.
    vault_credentials: list[dict[str, Any]] = field(default_factory=list)
    platform_flags: list[Flag] = field(default_factory=list)
    # External address range -> what it is ("platform API", "database support").
    destinations: dict[str, str] = field(default_factory=dict)

    @property
    def flags(self) -> list[Flag]:
        """The audit's own findings, less those the pack already reported under its rule id."""
        found = self.network.flags + self.credentials.flags + self.platform_flags
        fired = {v.rule_id for v in self.policy.violations} if self.policy.available else set()
        return sorted(not_reported_by(found, fired))

    @property
    def namespaces(self) -> list[str]:
        """Namespaces that hold the bundle's objects (not merely ones a selector names)."""
        used = {w.namespace for w in self.inventory.workloads.values()}
        used |= {ns for ns, _ in self.inventory.secrets}
        return sorted(used)


def audit_manifests(
    manifests: Iterable[Manifest],
    *,
    label: str = "manifests",
    tier: str = "dev",
    default_namespace: str = "default",
    policies: bool = True,
    allowed_egress_cidrs: Sequence[str] | None = None,
) -> Audit:
    """Audit manifests as `kubectl get -o yaml` or `helm template` give them.

    `default_namespace` is where objects without `metadata.namespace` land
    (`helm template` output); `policies=False` skips the policy pack (diff, live);
    `allowed_egress_cidrs` is the environment's egress allowance for the pack.
    """
    objects = [redact(m) for m in manifests]
    inv = build_inventory(objects, default_namespace)
    results = (
        evaluate_policies(objects, tier, allowed_egress_cidrs)
        if policies
        else PolicyResults(False, "not evaluated")
    )
    return Audit(
        label,
        tier,
        inv,
        build_network(inv),
        build_credentials(inv),
        results,
        admission_guards(objects),
    )
