"""The policy pack's rules, run on the same manifests the audit reads.

`policies.rules` is imported lazily so the audit still reports the network and
credential matrices when the rules are unavailable (and says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.offline.manifests import Manifest


@dataclass(frozen=True)
class PolicyFinding:
    rule_id: str
    resource: str
    message: str
    hint: str
    enforcement: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PolicyResults:
    available: bool
    note: str = ""
    violations: list[PolicyFinding] = field(default_factory=list)

    @property
    def mandatory(self) -> list[PolicyFinding]:
        return [v for v in self.violations if v.enforcement == "mandatory"]


def evaluate_policies(
    manifests: Sequence[Manifest], tier: str, allowed_egress_cidrs: Sequence[str] | None = None
) -> PolicyResults:
    """What `python -m infra check` reports for the same objects, tier and egress allowance."""
    try:
        from policies.rules import Resource, evaluate
    except ImportError as exc:
        return PolicyResults(False, f"policy rules are not available ({exc})")
    resources = [Resource.from_manifest(m) for m in manifests]
    found = evaluate(
        resources,
        tier=tier,
        allowed_egress_cidrs=allowed_egress_cidrs,
        declared_only=allowed_egress_cidrs is not None,  # the environment's whole declaration
    )
    violations = [
        PolicyFinding(v.rule_id, str(v.resource), v.message, v.hint, v.enforcement) for v in found
    ]
    violations.sort(key=lambda v: (v.enforcement != "mandatory", v.rule_id, v.resource))
    return PolicyResults(True, f"tier {tier}", violations)
