"""The perimeter's policy rules: pure functions over plain resources.

The same rules run in `pulumi preview --policy-pack policies`, in the offline
`python -m infra check`, in the tests and in the audit. Imports inside this package
are relative so it loads both as `policies.rules` and as `rules` (the way the
engine runs `policies/__main__.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from . import admission, credentials, crosslayer, flows, namespaces, network, pods, rbac, sandbox
from .inventory import Inventory
from .model import (
    ADVISORY,
    DEFAULT_ALLOWED_EGRESS_CIDRS,
    DEFAULT_MIN_CIDR_PREFIX,
    DISABLED,
    LEVELS,
    MANDATORY,
    TIERS,
    Resource,
    Rule,
    Settings,
    Target,
    Violation,
)

ALL_RULES: tuple[Rule, ...] = (
    network.RULES
    + flows.RULES
    + credentials.RULES
    + rbac.RULES
    + pods.RULES
    + namespaces.RULES
    + crosslayer.RULES
    + admission.RULES
    + sandbox.RULES
)
RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in ALL_RULES}

__all__ = [
    "ADVISORY",
    "ALL_RULES",
    "DEFAULT_ALLOWED_EGRESS_CIDRS",
    "DISABLED",
    "LEVELS",
    "MANDATORY",
    "RULES_BY_ID",
    "TIERS",
    "Inventory",
    "Resource",
    "Rule",
    "Settings",
    "Violation",
    "evaluate",
    "pack_config",
    "run_resource_rule",
    "run_stack_rule",
]


def _violation(rule: Rule, target: Target, message: str, level: str) -> Violation:
    if isinstance(target, Resource):
        return Violation(rule.id, target.ref, message, rule.hint, level, target.urn)
    return Violation(rule.id, target, message, rule.hint, level)


def run_resource_rule(
    rule: Rule, resource: Resource, settings: Settings, level: str
) -> list[Violation]:
    if not rule.applies_to(resource):
        return []
    messages = dict.fromkeys(rule.check(resource, settings))  # one finding per problem, in order
    return [_violation(rule, resource, m, level) for m in messages]


def run_stack_rule(
    rule: Rule, inventory: Inventory, settings: Settings, level: str
) -> list[Violation]:
    found = [_violation(rule, t, m, level) for t, m in rule.check(inventory, settings)]
    return list(dict.fromkeys(found))  # the same finding twice (two equal peers, say) is one


def expand_lists(resources: Iterable[Resource]) -> Iterator[Resource]:
    """Resources, with every `*List` object (at any depth) replaced by its items."""
    for resource in resources:
        items = resource.props.get("items") if resource.kind.endswith("List") else None
        if isinstance(items, Sequence) and not isinstance(items, str):
            yield from expand_lists(
                Resource.from_manifest(i) for i in items if isinstance(i, Mapping)
            )
        else:
            yield resource


def evaluate(
    resources: Iterable[Resource],
    *,
    tier: str = "dev",
    overrides: Mapping[str, str] | None = None,
    allowed_egress_cidrs: Sequence[str] | None = None,
    declared_only: bool = False,
    min_cidr_prefix: tuple[int, int] = DEFAULT_MIN_CIDR_PREFIX,
    only: Iterable[str] | None = None,
) -> list[Violation]:
    """Every violation of the rules in `resources`, in rule order.

    `tier` picks each rule's default level (digest pinning is mandatory only in prod);
    `overrides` maps rule id -> mandatory|advisory|disabled; `allowed_egress_cidrs`
    replaces the platform defaults (`declared_only`: it is the environment's whole
    declaration, see Settings); `only` restricts the run to some rule ids.
    """
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    for rule_id, level in (overrides or {}).items():
        if rule_id not in RULES_BY_ID or level not in LEVELS:
            raise ValueError(f"bad override {rule_id}={level}")
    selected = set(only) if only is not None else None
    settings = Settings(
        tier=tier,
        allowed_egress_cidrs=tuple(allowed_egress_cidrs or DEFAULT_ALLOWED_EGRESS_CIDRS),
        declared_only=declared_only,
        min_cidr_prefix=min_cidr_prefix,
    )
    items = [r for r in expand_lists(resources) if r.is_kubernetes]
    inventory = Inventory(items)
    found: list[Violation] = []
    for rule in ALL_RULES:
        level = rule.level(tier, overrides)
        if level == DISABLED or (selected is not None and rule.id not in selected):
            continue
        if rule.scope == "stack":
            found += run_stack_rule(rule, inventory, settings, level)
        else:
            for resource in items:
                found += run_resource_rule(rule, resource, settings, level)
    return found


def pack_config(
    tier: str,
    allowed_egress_cidrs: Sequence[str] | None = None,
    min_cidr_prefix: tuple[int, int] = DEFAULT_MIN_CIDR_PREFIX,
) -> dict[str, object]:
    """The `--policy-pack-config` document of one tier: every rule's level, plus the
    environment's declared egress (given: its whole declaration) and breadth limit."""
    config: dict[str, object] = {}
    for rule in ALL_RULES:
        level = rule.level(tier)
        if rule.config_schema:
            config[rule.id] = {
                "enforcementLevel": level,
                "allowedEgressCidrs": list(allowed_egress_cidrs or DEFAULT_ALLOWED_EGRESS_CIDRS),
                "declaredOnly": allowed_egress_cidrs is not None,
                "minCidrPrefix": {"ipv4": min_cidr_prefix[0], "ipv6": min_cidr_prefix[1]},
            }
        else:
            config[rule.id] = level
    return config
