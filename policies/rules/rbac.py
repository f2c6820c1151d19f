"""RBAC judged by what a binding effectively grants, not by the name of the role it names.

A binding's roleRef is resolved by kind (a namespaced Role called `admin` is not the
built-in ClusterRole `admin`), through aggregation, to the rules it grants; those are
what the checks look at.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .inventory import Inventory
from .k8s import selector_matches
from .model import Resource, Settings, Target, as_list, as_map, stack_rule

PolicyRule = Mapping[str, Any]

_ALL: PolicyRule = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
_READ_SECRETS: PolicyRule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}
_IMPERSONATE_SA: PolicyRule = {
    "apiGroups": [""],
    "resources": ["serviceaccounts"],
    "verbs": ["impersonate"],
}
# What the built-in ClusterRoles grant, where it matters here (the cluster defines them,
# so they are never in the checked set). `view` grants nothing flagged.
BUILT_IN_CLUSTER_ROLES: Mapping[str, tuple[PolicyRule, ...]] = {
    "cluster-admin": (_ALL,),
    "admin": (_READ_SECRETS, _IMPERSONATE_SA),
    "edit": (_READ_SECRETS, _IMPERSONATE_SA),
    "view": (),
}
AGGREGATE_LABEL = "rbac.authorization.k8s.io/aggregate-to-{}"
PRIVILEGED_GROUPS = frozenset(
    {
        "system:masters",
        "system:authenticated",
        "system:unauthenticated",
        "system:serviceaccounts",
        "system:nodes",
    }
)
PRIVILEGED_USERS = frozenset({"system:anonymous"})
_READ_VERBS = frozenset({"get", "list", "watch", "*"})


def _strings(rule: PolicyRule, field: str) -> set[str]:
    return {str(v) for v in as_list(rule.get(field))}


def rule_problems(rule: PolicyRule) -> Iterator[str]:
    """What one PolicyRule grants that nothing in the perimeter may hold."""
    verbs = _strings(rule, "verbs")
    resources = _strings(rule, "resources")
    groups = _strings(rule, "apiGroups")
    if (
        "*" in verbs
        or "*" in resources
        or "*" in groups
        or "*" in _strings(rule, "nonResourceURLs")
    ):
        yield "a wildcard (*) in verbs, resources or API groups"
    core = bool(groups & {"", "*"})
    if core and resources & {"secrets", "*"} and verbs & _READ_VERBS:
        yield "reading Secrets"
    for verb in ("escalate", "bind", "impersonate"):
        if verb in verbs:
            yield f"the {verb} verb"
    if core and "serviceaccounts/token" in resources and verbs & {"create", "*"}:
        yield "minting service account tokens"


class _Roles:
    """Roles and ClusterRoles of the set, resolved (aggregation included) on demand."""

    def __init__(self, inventory: Inventory):
        self.cluster_roles = {r.object_name: r for r in inventory.kind("ClusterRole")}
        self.roles = {(r.effective_namespace, r.object_name): r for r in inventory.kind("Role")}

    def aggregated_into(self, name: str) -> list[Resource]:
        label = AGGREGATE_LABEL.format(name)
        return [r for r in self.cluster_roles.values() if str(r.labels.get(label)) == "true"]

    def cluster_role_rules(self, name: str, seen: frozenset[str] = frozenset()) -> list[PolicyRule]:
        if name in seen:
            return []
        seen = seen | {name}
        rules: list[PolicyRule] = []
        role = self.cluster_roles.get(name)
        if role is None:
            rules += BUILT_IN_CLUSTER_ROLES.get(name, ())
            sources = self.aggregated_into(name) if name in BUILT_IN_CLUSTER_ROLES else []
        else:
            rules += [as_map(r) for r in as_list(role.props.get("rules"))]
            selectors = as_list(
                as_map(role.props.get("aggregationRule")).get("clusterRoleSelectors")
            )
            sources = [
                other
                for other in self.cluster_roles.values()
                if other is not role and any(selector_matches(s, other.labels) for s in selectors)
            ]
        for source in sources:
            rules += self.cluster_role_rules(source.object_name, seen)
        return rules

    def resolve(self, binding: Resource) -> tuple[str, Sequence[PolicyRule] | None]:
        """(description of the role, its rules); rules None when the role cannot be found."""
        ref = as_map(binding.props.get("roleRef"))
        kind, name = str(ref.get("kind") or "ClusterRole"), str(ref.get("name"))
        if kind == "Role":
            role = self.roles.get((binding.effective_namespace, name))
            rules = None if role is None else [as_map(r) for r in as_list(role.props.get("rules"))]
            return f"Role {name}", rules
        known = name in self.cluster_roles or name in BUILT_IN_CLUSTER_ROLES
        return f"ClusterRole {name}", self.cluster_role_rules(name) if known else None


@stack_rule(
    "no-privileged-role-binding",
    "No binding grants, through the Role or ClusterRole it resolves to (aggregation included), "
    "wildcards, reading Secrets, escalate, bind or impersonate; and none binds a privileged "
    "or everyone-group.",
    "Bind a Role listing only the verbs and resources the subject needs (our workloads need "
    "none), and bind named service accounts, never system:masters, system:authenticated, "
    "system:unauthenticated or system:serviceaccounts.",
)
def no_privileged_role_binding(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    roles = _Roles(inventory)
    for binding in inventory.kind("RoleBinding", "ClusterRoleBinding"):
        for subject in as_list(binding.props.get("subjects")):
            subject = as_map(subject)
            name = str(subject.get("name"))
            if (subject.get("kind") == "Group" and name in PRIVILEGED_GROUPS) or (
                subject.get("kind") == "User" and name in PRIVILEGED_USERS
            ):
                yield binding, f"binds the {subject.get('kind', '').lower()} {name}"
        described, rules = roles.resolve(binding)
        if rules is None:
            yield (
                binding,
                f"references {described}, which is not in the set: what it grants is unknown",
            )
            continue
        problems = sorted({p for rule in rules for p in rule_problems(rule)})
        if problems:
            yield binding, f"{described} grants {', '.join(problems)}"
    for name in BUILT_IN_CLUSTER_ROLES:
        for role in roles.aggregated_into(name):
            problems = sorted(
                {
                    p
                    for rule in as_list(role.props.get("rules"))
                    for p in rule_problems(as_map(rule))
                }
            )
            if problems:
                yield (
                    role,
                    (
                        f"is aggregated into the built-in ClusterRole {name}, adding "
                        f"{', '.join(problems)} to every binding of {name}"
                    ),
                )


RULES = (no_privileged_role_binding,)
