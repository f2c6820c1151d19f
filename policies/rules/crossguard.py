"""Wiring the pure rules into CrossGuard policies (the engine-facing half of the pack).

Kept out of `rules/__init__` so the offline check never pays for importing grpc.
Properties stay the engine's unknown-checking proxies: a rule that reads a value
unknown during preview raises, and pulumi_policy turns that into an advisory
"can't run policy ... during preview" diagnostic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from . import ALL_RULES, run_resource_rule, run_stack_rule
from .inventory import Inventory
from .model import (
    DEFAULT_ALLOWED_EGRESS_CIDRS,
    DEFAULT_MIN_CIDR_PREFIX,
    Resource,
    Rule,
    Settings,
    Violation,
)

PACK_NAME = "agent-perimeter"


def settings_from(config: Mapping[str, Any]) -> Settings:
    cidrs = config.get("allowedEgressCidrs") or DEFAULT_ALLOWED_EGRESS_CIDRS
    prefix = config.get("minCidrPrefix") or {}
    return Settings(
        allowed_egress_cidrs=tuple(str(c) for c in cidrs),
        declared_only=config.get("declaredOnly") is True,
        min_cidr_prefix=(
            int(prefix.get("ipv4", DEFAULT_MIN_CIDR_PREFIX[0])),
            int(prefix.get("ipv6", DEFAULT_MIN_CIDR_PREFIX[1])),
        ),
    )


def message(violation: Violation) -> str:
    return f"{violation.resource}: {violation.message}\nRemediation: {violation.hint}"


def _resource_validation(rule: Rule) -> Any:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        resource = Resource(args.resource_type, args.name, args.props, args.urn)
        settings = settings_from(args.get_config())
        # The level reported is the engine's; the one passed here is informational.
        for violation in run_resource_rule(rule, resource, settings, ""):
            report(message(violation), args.urn)

    return validate


def _stack_validation(rule: Rule) -> Any:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        inventory = Inventory(
            Resource(r.resource_type, r.name, r.props, r.urn) for r in args.resources
        )
        for violation in run_stack_rule(rule, inventory, settings_from(args.get_config()), ""):
            report(message(violation), violation.urn)

    return validate


def to_policy(rule: Rule, tier: str = "dev") -> Policy:
    level = EnforcementLevel(rule.level(tier))
    schema = PolicyConfigSchema(dict(rule.config_schema)) if rule.config_schema else None
    if rule.scope == "stack":
        return StackValidationPolicy(
            name=rule.id,
            description=rule.description,
            validate=_stack_validation(rule),
            enforcement_level=level,
            config_schema=schema,
            remediation_steps=rule.hint,
        )
    return ResourceValidationPolicy(
        name=rule.id,
        description=rule.description,
        validate=_resource_validation(rule),
        enforcement_level=level,
        config_schema=schema,
        remediation_steps=rule.hint,
    )


def policies(tier: str = "dev") -> list[Policy]:
    """Every rule as a policy, at its default level for `tier` (config overrides it per stack)."""
    return [to_policy(rule, tier) for rule in ALL_RULES]
