"""Kubernetes label selectors: matching, and describing them the way kubectl writes them.

NetworkPolicy peers and Service selectors are label selectors; the audit must
read them exactly as the API server does (matchLabels AND matchExpressions)
or every conclusion built on them is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.contract.manifests import expression_matches, selector_expression_refused
from infra.contract.names import NAMESPACE_NAME_LABEL
from infra.offline.manifests import ManifestError


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return expression_matches(self.key, self.operator, self.values, labels)

    def describe(self) -> str:
        if self.operator == "In":
            if len(self.values) == 1:
                return f"{self.key}={self.values[0]}"
            return f"{self.key} in ({', '.join(self.values)})"
        if self.operator == "NotIn":
            return f"{self.key} notin ({', '.join(self.values)})"
        return self.key if self.operator == "Exists" else f"!{self.key}"


@dataclass(frozen=True)
class Selector:
    """A parsed LabelSelector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, where: str = "selector") -> Selector:
        if not raw:
            return cls()
        if not isinstance(raw, Mapping):
            raise ManifestError(f"{where}: a label selector must be a mapping")
        reqs = [
            Requirement(str(k), "In", (str(v),))
            for k, v in sorted((raw.get("matchLabels") or {}).items())
        ]
        for expr in raw.get("matchExpressions") or []:
            op = expr.get("operator")
            values = tuple(sorted(str(v) for v in expr.get("values") or []))
            refused = selector_expression_refused(op, values)
            if refused is not None:
                raise ManifestError(f"{where}: matchExpressions {refused}")
            reqs.append(Requirement(str(expr.get("key", "")), op, values))
        return cls(tuple(reqs))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Selector:
        """A Service's `spec.selector` (plain map) as a selector."""
        return cls(tuple(Requirement(k, "In", (v,)) for k, v in sorted(labels.items())))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def describe(self) -> str:
        return ", ".join(r.describe() for r in self.requirements)

    def pinned(self, key: str) -> frozenset[str] | None:
        """The only values `key` may take for a match, or None when the selector leaves it open."""
        allowed: frozenset[str] | None = None
        for r in self.requirements:
            if r.key == key and r.operator == "In":
                values = frozenset(r.values)
                allowed = values if allowed is None else allowed & values
        return allowed

    def unconstrained(self) -> bool:
        """True when any namespace, whatever its labels, could match (only exclusions)."""
        for r in self.requirements:
            if r.operator == "In":
                return False
            if r.operator == "Exists" and r.key != NAMESPACE_NAME_LABEL:
                return False
        return True
